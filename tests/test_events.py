"""events/ fixtures and env.template.json against template.yaml (no Docker needed).

Every function the template declares has one API Gateway HTTP API (payload 2.0) event in
events/<binary>.json, for one of its routes; `python infra/sam_local.py event BINARY` prints a
starting point for a new one."""

import json
import re
import subprocess

import pytest

from conftest import REPO, local_stack

TEMPLATE = local_stack.load_template()
FUNCTIONS = local_stack.template_functions(TEMPLATE)
ROUTES = local_stack.template_routes(TEMPLATE)


def fixture(binary: str) -> dict:
    return json.loads((REPO / "events" / f"{binary}.json").read_text())


def test_every_function_has_an_event_fixture_and_every_fixture_a_function():
    fixtures = {path.stem for path in (REPO / "events").glob("*.json")}
    missing = sorted(f"events/{binary}.json ({logical_id})" for logical_id, binary in FUNCTIONS.items()
                     if binary not in fixtures)
    assert not missing, f"functions without an event fixture: {missing}"
    assert fixtures <= set(FUNCTIONS.values()), f"fixtures of no function: {sorted(fixtures - set(FUNCTIONS.values()))}"


@pytest.mark.parametrize("binary", sorted(set(FUNCTIONS.values())))
def test_fixture_is_a_realistic_http_api_event_of_its_function(binary):
    if not (REPO / "events" / f"{binary}.json").exists():
        pytest.skip("no fixture (reported by the test above)")
    event = fixture(binary)
    assert event["version"] == "2.0" and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["routeKey"] == event["routeKey"] and context["stage"] == "$default"
    assert context["http"]["path"] == event["rawPath"]
    if event["routeKey"] == local_stack.DEFAULT_ROUTE:
        # API Gateway's `$default` route: a request no other route matches.
        assert binary == local_stack.default_route_function(TEMPLATE)
        method = context["http"]["method"]
        assert not any(route_method == method and local_stack.route_pattern(path).fullmatch(event["rawPath"])
                       for route_method, path, _ in ROUTES if path != local_stack.DEFAULT_ROUTE), event["rawPath"]
        assert "pathParameters" not in event
    else:
        method, _, route_path = event["routeKey"].partition(" ")
        assert (method, route_path, binary) in ROUTES, f"{event['routeKey']} is not a route of {binary}"
        assert context["http"]["method"] == method
        path_pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(route_path))
        assert re.fullmatch(path_pattern, event["rawPath"]), (route_path, event["rawPath"])
        parameters = re.findall(r"\{([^/}]+?)\+?\}", route_path)
        if parameters:
            assert sorted(event["pathParameters"]) == sorted(parameters), "pathParameters of the route"
    source_ip = context["http"]["sourceIp"]
    assert re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", source_ip) and source_ip != "127.0.0.1"
    for key in ("accountId", "apiId", "domainName", "requestId", "time", "timeEpoch"):
        assert context[key], key
    headers = event["headers"]
    assert all(name == name.lower() for name in headers), "HTTP API lower-cases header names"
    assert headers["host"] == context["domainName"]
    assert headers["x-forwarded-for"].split(",")[-1].strip() == source_ip
    assert headers["user-agent"] == context["http"]["userAgent"]
    if "body" in event:
        assert isinstance(event["body"], str)
        json.loads(event["body"])
        assert headers["content-type"] == "application/json"
        assert int(headers["content-length"]) == len(event["body"].encode())


def test_env_template_sets_only_declared_variables():
    """`sam local --env-vars` silently ignores a variable the template does not declare."""
    declared = set(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"])
    document = json.loads((REPO / "env.template.json").read_text())
    for section, variables in document.items():
        if section == "Parameters":
            undeclared = set(variables) - declared
        else:
            assert section in FUNCTIONS, f"env.template.json: {section} is no function of the template"
            own = TEMPLATE["Resources"][section]["Properties"].get("Environment", {}).get("Variables", {})
            undeclared = set(variables) - declared - set(own)
        assert not undeclared, f"env.template.json sets undeclared variables: {sorted(undeclared)}"
    assert {"TABLE_NAME", "DYNAMODB_ENDPOINT", "JWT_SECRET"} <= set(document["Parameters"])
    assert document["Parameters"]["JWT_SECRET"] == "${JWT_SECRET}", "the JWT secret is generated per run"


def test_generated_env_json_is_not_committed():
    ignored = subprocess.run(["git", "check-ignore", "-q", "env.json"], cwd=REPO, check=False)
    assert ignored.returncode == 0, "env.json (holds a generated JWT secret) must be git-ignored"
