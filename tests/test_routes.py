"""The routes template.yaml declares, the local stack serves and the API lists are the same; and
what answers a request none of them matches (the template's `$default` route), locally as in AWS."""

import re
import tomllib

import yaml

from conftest import REPO, local_stack


def local_stack_routes() -> set[tuple[str, str, str]]:
    router = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["metadata"]["lambda"]["watch"]["router"]
    return {(entry["method"], path, entry["function"]) for path, entries in router.items() for entry in entries}


def served_routes() -> set[tuple[str, str, str]]:
    return local_stack.served_routes(local_stack.load_template())


def test_template_and_local_stack_route_the_same():
    """cargo-lambda's router has no fallback: the local stack's `Router` sends it what the
    `$default` route would get."""
    template = local_stack.template_routes(local_stack.load_template())
    assert template - served_routes() == {("ANY", local_stack.DEFAULT_ROUTE, "not-found")}
    assert served_routes() == local_stack_routes()


def test_every_function_package_is_deployed_and_routed():
    packages = {path.name for path in (REPO / "functions").iterdir() if (path / "Cargo.toml").exists()}
    default = local_stack.default_route_function(local_stack.load_template())
    assert packages == {binary for _, _, binary in local_stack_routes()} | {default}
    assert default not in {binary for _, _, binary in local_stack_routes()}


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
    for method, path, binary in served_routes():
        declared_method, paths = template.get(binary, (method, frozenset()))
        assert declared_method == method, f"{binary}: one function, one method"
        template[binary] = (method, paths | {path})
    assert {function for function, _, _ in declared.values()} == set(template)
    for package, (method, paths) in template.items():
        main = (REPO / "functions" / package / "src" / "main.rs").read_text()
        served = re.search(r"run\(&shared::handlers::(\w+)\)", main)
        assert served, f"{package}: main does not run an endpoint"
        assert declared[served.group(1)] == (package, method, paths), f"{package} serves {served.group(1)}"
    default = local_stack.default_route_function(local_stack.load_template())
    main = (REPO / "functions" / default / "src" / "main.rs").read_text()
    assert re.search(r"run\(&shared::handlers::UNMATCHED\)", main), f"{default} does not answer unmatched requests"


def test_the_api_lists_exactly_the_template_routes(api):
    listed = set(api.get("/").json()["endpoints"])
    declared = {f"{method} {path}" for method, path, _ in served_routes()}
    assert listed == declared


def openapi_routes() -> set[tuple[str, str]]:
    document = yaml.safe_load((REPO / "openapi.yaml").read_text())
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item if method in methods}


def test_template_local_stack_and_openapi_document_the_same_routes():
    template = {(method, path) for method, path, _ in served_routes()}
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


# A request no route matches, and what answers it: 405 with the path's methods, or 404.
UNMATCHED = [
    ("GET", "/api/auth/login", "POST"),
    ("PUT", "/api/scheduler/jobs", "GET, POST"),
    ("DELETE", "/health", "GET"),
    ("HEAD", "/health", "GET"),
    ("OPTIONS", "/api/auth/me", "GET"),
    ("PROPFIND", "/", "GET"),
    ("GET", "/api/auth/login/", None),
    ("POST", "/api/auth/login/", None),
    ("GET", "/api/schedulr/jobs", None),
    ("GET", "/api/scheduler/jobs/", None),
    ("GET", "/floor", None),
    ("GET", "/lambda-url/floor/", None),
    ("GET", "/lambda-url/not-found/x", None),
]


def test_unmatched_requests_get_the_problem_shape_not_the_emulators_404(api):
    """Issue 23, item 6: a trailing slash, a wrong method or a typo got cargo-lambda's own 404
    listing internal binaries (`floor`, `bench`, `fogctl`); the local stack now answers as API
    Gateway's `$default` route does, through the same function."""
    for method, path, allowed in UNMATCHED:
        response = api.request(method, path, headers={"X-Correlation-ID": "unmatched-1"})
        status = 405 if allowed else 404
        assert response.status_code == status, (method, path, response.text)
        assert response.headers["Content-Type"] == "application/problem+json", (method, path)
        assert response.headers.get("Allow") == allowed, (method, path)
        assert response.headers["X-Correlation-ID"] == "unmatched-1"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "X-RateLimit-Limit" in response.headers, "rate limited, as any route"
        if method != "HEAD":
            body = response.json()
            assert body["status"] == status and body["type"] == "about:blank"
            for binary in ("floor", "bench", "fogctl"):
                assert f'"{binary}"' not in response.text, (method, path)
    # Query strings ride along; bodies too.
    assert api.get("/api/schedulr/jobs?status=pending").status_code == 404
    assert api.post("/api/auth/me", json={"x": 1}).headers["Allow"] == "GET"
    # The routes themselves are untouched by the router.
    assert api.get("/health").status_code == 200
