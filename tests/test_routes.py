"""The routes template.yaml declares, the local stack serves and the API lists are the same."""

import tomllib

from conftest import REPO, local_stack


def local_stack_routes() -> set[tuple[str, str, str]]:
    router = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["metadata"]["lambda"]["watch"]["router"]
    return {(entry["method"], path, entry["function"]) for path, entries in router.items() for entry in entries}


def test_template_and_local_stack_route_the_same():
    assert local_stack.template_routes(local_stack.load_template()) == local_stack_routes()


def test_every_function_package_is_deployed_and_routed():
    packages = {path.name for path in (REPO / "functions").iterdir() if (path / "Cargo.toml").exists()}
    assert packages == {binary for _, _, binary in local_stack_routes()}


def test_the_api_lists_exactly_the_template_routes(api):
    listed = set(api.get("/").json()["endpoints"])
    declared = {f"{method} {path}" for method, path, _ in local_stack.template_routes(local_stack.load_template())}
    assert listed == declared
