"""The routes template.yaml declares, the local stack serves and the API lists are the same."""

import re
import tomllib

import yaml

from conftest import REPO, local_stack


def local_stack_routes() -> set[tuple[str, str, str]]:
    router = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["metadata"]["lambda"]["watch"]["router"]
    return {(entry["method"], path, entry["function"]) for path, entries in router.items() for entry in entries}


def test_template_and_local_stack_route_the_same():
    assert local_stack.template_routes(local_stack.load_template()) == local_stack_routes()


def test_every_function_package_is_deployed_and_routed():
    packages = {path.name for path in (REPO / "functions").iterdir() if (path / "Cargo.toml").exists()}
    assert packages == {binary for _, _, binary in local_stack_routes()}


def test_every_function_serves_the_route_it_declares():
    """Each binary's `main` runs its endpoint of the route table (`shared/src/handlers/mod.rs`),
    which decides its rate-limit category and bucket: the endpoint of that function, with the
    template's method and paths (one path, or several: `"/docs" | "/docs/{file}"`)."""
    table = (REPO / "shared/src/handlers/mod.rs").read_text()
    declared = {
        name: (function, method, frozenset(re.findall(r'"([^"]+)"', paths)))
        for name, function, method, paths in re.findall(
            r'(\w+): "([\w-]+)", "(\w+)" ("[^"]+"(?:\s*\|\s*"[^"]+")*),', table)
    }
    template: dict[str, tuple[str, frozenset[str]]] = {}
    for method, path, binary in local_stack.template_routes(local_stack.load_template()):
        declared_method, paths = template.get(binary, (method, frozenset()))
        assert declared_method == method, f"{binary}: one function, one method"
        template[binary] = (method, paths | {path})
    assert {function for function, _, _ in declared.values()} == set(template)
    for package, (method, paths) in template.items():
        main = (REPO / "functions" / package / "src" / "main.rs").read_text()
        served = re.search(r"run\(&shared::handlers::(\w+)\)", main)
        assert served, f"{package}: main does not run an endpoint"
        assert declared[served.group(1)] == (package, method, paths), f"{package} serves {served.group(1)}"


def test_the_api_lists_exactly_the_template_routes(api):
    listed = set(api.get("/").json()["endpoints"])
    declared = {f"{method} {path}" for method, path, _ in local_stack.template_routes(local_stack.load_template())}
    assert listed == declared


def openapi_routes() -> set[tuple[str, str]]:
    document = yaml.safe_load((REPO / "openapi.yaml").read_text())
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item if method in methods}


def test_template_local_stack_and_openapi_document_the_same_routes():
    template = {(method, path) for method, path, _ in local_stack.template_routes(local_stack.load_template())}
    local = {(method, path) for method, path, _ in local_stack_routes()}
    assert template == local == openapi_routes(), {
        "only in template": template - openapi_routes(),
        "only in openapi": openapi_routes() - template,
        "only in local stack": local ^ template,
    }


def test_the_api_serves_its_openapi_document(api):
    served = api.get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == yaml.safe_load((REPO / "openapi.yaml").read_text())
