"""openapi.yaml's examples and rate-limit lines (issue 16).

Static, without the stack: every operation has named examples for its request body, its
parameters and every response with a body; each example is valid against its schema (OpenAPI 3.1
schemas are JSON Schema 2020-12; formats checked); and each operation's description ends with the
rate limit its route has in the route table (`shared/src/handlers/mod.rs`), with the default
figures of `shared/src/config.rs`, which the template's parameters must repeat.

Live, against the local stack: every operation's request examples, sent as real requests, pass
the API's own validation."""

from __future__ import annotations

import json
import re
import urllib.parse

import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from conftest import REPO, local_stack, unique_username

DOCUMENT = yaml.safe_load((REPO / "openapi.yaml").read_text())
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
URI = "urn:fog-compute:openapi.yaml"
REGISTRY = Registry().with_resource(URI, Resource.from_contents(DOCUMENT, default_specification=DRAFT202012))
FORMATS = Draft202012Validator.FORMAT_CHECKER


def pointer(*parts: str) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def resolve(node: dict) -> tuple[dict, str | None]:
    """An OpenAPI object and the JSON pointer it is at, following a `$ref` to a component."""
    if "$ref" not in node:
        return node, None
    ref = node["$ref"]
    assert ref.startswith("#/"), ref
    target = DOCUMENT
    for part in ref[2:].split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return target, ref[1:]


def operations() -> list[tuple[str, str, dict]]:
    return [(path, method, item[method]) for path, item in DOCUMENT["paths"].items()
            for method in METHODS if method in item]


def parameters(path: str, method: str) -> list[tuple[dict, str]]:
    """An operation's parameters (its path item's too), resolved, with the pointer of each."""
    found = []
    for where in (("paths", path), ("paths", path, method)):
        node = DOCUMENT
        for part in where:
            node = node[part]
        for index, parameter in enumerate(node.get("parameters", [])):
            resolved, at = resolve(parameter)
            found.append((resolved, at or pointer(*where, "parameters", index)))
    return found


def media_types(path: str, method: str, operation: dict):
    """(what, media type object, its pointer) for the request body and every response."""
    body = operation.get("requestBody")
    if body:
        resolved, at = resolve(body)
        at = at or pointer("paths", path, method, "requestBody")
        for media, content in resolved.get("content", {}).items():
            yield "request body", content, at + pointer("content", media)
    for status, response in operation["responses"].items():
        resolved, at = resolve(response)
        at = at or pointer("paths", path, method, "responses", status)
        for media, content in resolved.get("content", {}).items():
            yield f"{status} {media}", content, at + pointer("content", media)


# The bodies a schema describes and an example shows; a page or a script has neither.
JSON = {"application/json", "application/problem+json"}


def everything_with_examples():
    """(name, the object holding `examples`, its pointer) for every parameter and JSON body."""
    for path, method, operation in operations():
        for parameter, at in parameters(path, method):
            yield f"{method.upper()} {path} {parameter['in']} {parameter['name']}", parameter, at
        for what, content, at in media_types(path, method, operation):
            if what.rsplit(" ", 1)[-1] in JSON or what == "request body":
                yield f"{method.upper()} {path} {what}", content, at


def validator(schema_at: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": URI + "#" + urllib.parse.quote(schema_at, safe="/~")},
                                registry=REGISTRY, format_checker=FORMATS)


def every_example():
    """(id, the schema's pointer, the example's value) for every named example, once each."""
    seen = set()
    for name, holder, at in everything_with_examples():
        if at in seen:
            continue
        seen.add(at)
        for example_name, example in holder.get("examples", {}).items():
            example, _ = resolve(example)
            yield pytest.param(at + pointer("schema"), example["value"], id=f"{name} {example_name}")


def test_the_formats_of_the_schemas_are_checked():
    """`format` is only an annotation unless its checker is installed (rfc3339-validator for
    date-time): without them the examples' ids, times and emails would go unchecked."""
    assert {"date-time", "email", "uuid"} <= set(FORMATS.checkers)
    assert list(validator(pointer("components", "schemas", "User", "properties", "created_at"))
                .iter_errors("30 November 2026")), "date-time is checked"


def test_every_parameter_request_body_and_response_body_has_named_examples():
    missing = [name for name, holder, _ in everything_with_examples() if not holder.get("examples")]
    assert not missing, f"without examples: {missing}"
    singular = [name for name, holder, _ in everything_with_examples() if "example" in holder]
    assert not singular, f"`example` where the document uses named `examples`: {singular}"


def test_every_json_response_is_covered():
    """The check above sees every response: each has a body, and a JSON one but for pages."""
    uncovered = [(path, method, status) for path, method, operation in operations()
                 for status, response in operation["responses"].items()
                 if not JSON & set(resolve(response)[0].get("content", {})) and not status.startswith("2")]
    assert uncovered == []


@pytest.mark.parametrize("schema_at,value", list(every_example()))
def test_every_example_is_valid_against_its_schema(schema_at, value):
    errors = [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator(schema_at).iter_errors(value)]
    assert not errors, errors


def problem_examples():
    for path, method, operation in operations():
        for status, response in operation["responses"].items():
            content = resolve(response)[0].get("content", {}).get("application/problem+json")
            for example_name, example in (content or {}).get("examples", {}).items():
                yield pytest.param(int(status), resolve(example)[0]["value"], id=f"{method.upper()} {path} {status} {example_name}")


@pytest.mark.parametrize("status,problem", list(problem_examples()))
def test_problem_examples_are_answers_of_their_status(status, problem):
    """As `http::response::problem` writes them: `about:blank`, the response's status, the
    status's reason phrase as the title, and a 422's detail naming the fields it lists."""
    titles = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
              409: "Conflict", 413: "Payload Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Entity",
              423: "Locked", 429: "Too Many Requests", 503: "Service Unavailable"}
    assert (problem["type"], problem["status"], problem["title"]) == ("about:blank", status, titles[status])
    if status == 422:
        assert problem["detail"] == "Invalid fields: " + ", ".join(error["field"] for error in problem["errors"])
    if status == 429:
        assert problem["error"] == "Rate limit exceeded"
    if status == 423:
        minutes = -(-problem["retry_after"] // 60)
        assert problem["detail"] == f"Account locked due to too many failed attempts. Try again in {minutes} minutes."


def test_example_amounts_are_decimal_strings():
    """Requests may give an amount as a JSON number too, but the examples show money as the API
    answers it: exact decimal strings."""
    for name, holder, _ in everything_with_examples():
        for example in holder.get("examples", {}).values():
            value = resolve(example)[0]["value"]
            if isinstance(value, dict) and "amount" in value:
                assert isinstance(value["amount"], str), name


# ---- the rate-limit line ----

ROUTE = re.compile(r'(\w+): "([\w-]+)", "(\w+)" ("[^"]+"(?:\s*\|\s*"[^"]+")*), (\w+),\s*keys\(([^)]*)\)')


def route_table() -> dict[tuple[str, str], tuple[str, str]]:
    """(METHOD, path) -> (rate-limit category, what API keys may do), from the `endpoints!` table."""
    table = (REPO / "shared/src/handlers/mod.rs").read_text()
    routes = {(method, path): (category, keys)
              for _, _, method, paths, category, keys in ROUTE.findall(table)
              for path in re.findall(r'"([^"]+)"', paths)}
    # Every entry test_routes.py finds (one per path of each), and no other.
    entries = re.findall(r'(\w+): "([\w-]+)", "(\w+)" ("[^"]+"(?:\s*\|\s*"[^"]+")*),', table)
    assert len(routes) == sum(len(re.findall(r'"([^"]+)"', paths)) for *_, paths in entries) > 0
    return routes


def default_limits() -> dict[str, int]:
    """The default requests per minute of each category, from `RateLimits::DEFAULT`, checked
    against the defaults of the template's parameters (what a deployment gets)."""
    config = (REPO / "shared/src/config.rs").read_text()
    block = re.search(r"const DEFAULT: Self = Self \{(.*?)\};", config, re.S).group(1)
    limits = {category: int(limit) for category, limit in re.findall(r"(\w+): (\d+),", block)}
    assert set(limits) == {"auth", "write", "read", "admin"}
    parameters = local_stack.load_template()["Parameters"]
    assert {category: parameters[f"RateLimit{category.title()}PerMin"]["Default"] for category in limits} == limits
    return limits


def rate_limit_line(category: str, keys: str, limits: dict[str, int]) -> str:
    """What an operation's description ends with: its category and default limit, and whom it
    counts: auth routes the source IP; the others a verified token's user (administrators in
    `admin`), the source IP on public routes without one, an API key its own hourly budget where
    the route takes keys (docs/rate-limiting.md)."""
    if category == "Exempt":
        return "Rate limit: none (exempt, like /health)."
    category = category.lower()
    admin, key = f"administrators: {limits['admin']}", "API keys: the key's hourly limit"
    if category == "auth":
        identity = f"source IP ({key})" if keys == "any" else "source IP"
    elif keys == "ignored":
        identity = f"source IP, or per user with a valid bearer token ({admin})"
    elif keys == "refused":
        identity = f"user ({admin})"
    else:
        identity = f"user ({admin}; {key})"
    return f"Rate limit: `{category}`, {limits[category]} requests per minute per {identity}."


def test_every_operation_ends_its_description_with_its_rate_limit():
    routes, limits = route_table(), default_limits()
    documented = {(method.upper(), path): operation for path, method, operation in operations()}
    assert set(documented) == set(routes)
    wrong = {}
    for route, (category, keys) in routes.items():
        expected = rate_limit_line(category, keys, limits)
        last_line = documented[route].get("description", "").rstrip("\n").split("\n")[-1]
        if last_line != expected:
            wrong[" ".join(route)] = (last_line, expected)
    assert not wrong, wrong


def test_the_rate_limit_lines_follow_the_route_table():
    """The line is derived, not copied: another category or figure gives another line."""
    limits = default_limits()
    assert rate_limit_line("Write", "refused", limits) != rate_limit_line("Read", "refused", limits)
    assert rate_limit_line("Write", "refused", {**limits, "write": 31}) != rate_limit_line("Write", "refused", limits)
    assert rate_limit_line("Write", "jobs:write", limits) == (
        f"Rate limit: `write`, {limits['write']} requests per minute per user (administrators: "
        f"{limits['admin']}; API keys: the key's hourly limit).")


# ---- live: the request examples pass the API's own validation ----

def first_examples(holder: dict) -> list:
    return [resolve(example)[0]["value"] for example in holder["examples"].values()]


def example_requests(path: str, method: str, operation: dict) -> list[dict]:
    """Every named example sent at least once: request i takes the i-th example of each
    parameter and of the body (the first one again where there are fewer)."""
    params = parameters(path, method)
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    variants = [first_examples(parameter) for parameter, _ in params] + ([first_examples(body)] if body else [])
    requests = []
    for i in range(max([len(values) for values in variants] or [1])):
        request = {"path": path, "params": {}, "headers": {}}
        for parameter, _ in params:
            values = first_examples(parameter)
            value = values[i % len(values)]
            if parameter["in"] == "path":
                request["path"] = request["path"].replace("{" + parameter["name"] + "}", str(value))
            elif parameter["in"] == "query":
                # As a URL writes it: `true`, not Python's `True`.
                request["params"][parameter["name"]] = json.dumps(value) if isinstance(value, bool) else value
            else:
                assert parameter["in"] == "header", parameter
                request["headers"][parameter["name"]] = value
        if body:
            values = first_examples(body)
            request["json"] = dict(values[i % len(values)])
        requests.append(request)
    return requests


WALLET_NOT_YOURS = (403, "The wallet is not yours")
# What an example answers other than its operation's success, and why that still shows it passed
# validation: each of these refusals is only reached once every field (body, query and the
# Idempotency-Key header) has been read and found valid, or names an id the example could not
# know on this stack.
REFUSED_AFTER_VALIDATION = {
    # The examples' wallets are alice's and bob's on the stack that answered them; the handlers
    # check that a wallet is the caller's after validating every field.
    ("GET", "/api/tokenomics/balance"): WALLET_NOT_YOURS,
    ("POST", "/api/tokenomics/transfer"): WALLET_NOT_YOURS,
    ("POST", "/api/tokenomics/stake"): WALLET_NOT_YOURS,
    ("POST", "/api/tokenomics/unstake"): WALLET_NOT_YOURS,
    ("POST", "/api/tokenomics/proposals"): WALLET_NOT_YOURS,
    ("POST", "/api/tokenomics/vote"): WALLET_NOT_YOURS,
    # An administrator may mint to any wallet; alice's is not on this stack.
    ("POST", "/api/tokenomics/mint"): (404, "Wallet {address} not found"),
    # The example ids name a session, a job and a key of the stack that answered them.
    ("DELETE", "/api/auth/sessions/{id}"): (404, "Session not found"),
    ("GET", "/api/scheduler/jobs/{id}"): (404, "Job not found"),
    ("DELETE", "/api/scheduler/jobs/{id}"): (404, "Job not found"),
    ("GET", "/api/keys/{id}"): (404, "API key not found"),
    ("DELETE", "/api/keys/{id}"): (404, "API key not found"),
    # The example user id is bob's on the stack that answered it. The handler reads the user
    # only once the action is one of the five (another is 404 with its own detail) and the id
    # a UUID (else 422), so `User not found` shows that both passed.
    ("POST", "/api/admin/users/{id}/{action}"): (404, "User not found"),
    # The example's temp token is well-formed and names no login; the example user has no
    # second factor, so the codes are checked against none.
    ("POST", "/api/auth/login/mfa"): (401, "Invalid or expired MFA token; log in again"),
    ("POST", "/api/auth/mfa/verify"): (409, "MFA setup not initiated. Call /api/auth/mfa/setup first."),
    ("POST", "/api/auth/mfa/validate"): (409, "MFA is not enabled for this account."),
    ("POST", "/api/auth/mfa/disable"): (409, "MFA is not enabled for this account."),
    ("POST", "/api/auth/mfa/regenerate-backup-codes"): (409, "MFA is not enabled for this account."),
}
# The device id belongs to whoever registered it first: on a stack where the conformance run
# (Schemathesis sends the examples too) got there first, another user gets 409.
ALSO_ACCEPTED = {("POST", "/api/idle-compute/devices"): (409, "Device id is registered to another user")}


def substitute(api, method: str, path: str, request: dict) -> str | None:
    """The minimal changes an example needs to be sent on this stack; returns the token to send.
    Everything not changed here is sent as the document has it."""
    body = request.get("json")
    if (method, path) == ("POST", "/api/auth/register"):
        # A username and an email are registered once: a fresh pair, the example's password.
        username = unique_username()
        body.update(username=username, email=f"{username}@example.com")
        return None
    if (method, path) == ("POST", "/api/auth/login"):
        # The example's user, with the example's password, under a fresh name.
        username = unique_username()
        assert api.register(username, password=body["password"]).status_code == 201
        body["username"] = username
        return None
    if path in ("/api/auth/refresh", "/api/auth/revoke"):
        # A refresh token is only ever the one a login answered.
        _, _, refresh_token = user(api)
        body["refresh_token"] = refresh_token
        return None
    if (method, path) == ("POST", "/api/auth/change-password"):
        # The caller's password is the example's old password.
        _, token, _ = user(api, password=body["old_password"])
        return token
    if path in ("/api/auth/password-reset/confirm", "/api/auth/verify-email"):
        # A token is only ever one a mail carried: a fresh user's, read from the local server.
        email = f"{user(api)[0]}@example.com"
        if path.endswith("/confirm"):
            assert api.post("/api/auth/password-reset/request", json={"email": email}).status_code == 200
        body["token"] = api.mailed_token(email, "reset-password" if path.endswith("/confirm") else "verify-email")
        return None
    if (method, path) == ("POST", "/api/tokenomics/mint") or path.startswith("/api/admin/"):
        # Administrators only: anyone else is refused (403) before the request is read.
        return api.new_admin()
    operation = DOCUMENT["paths"][path][method.lower()]
    if any("bearerAuth" in requirement for requirement in operation.get("security", [])):
        return user(api)[1]
    return None


def user(api, password: str | None = None) -> tuple[str, str, str]:
    """A fresh user's name, access token and refresh token."""
    username = unique_username()
    assert api.register(username, **({"password": password} if password else {})).status_code == 201
    login = api.login(username, **({"password": password} if password else {}))
    assert login.status_code == 200, login.text
    return username, login.json()["access_token"], login.json()["refresh_token"]


@pytest.mark.parametrize("method,path", [(method.upper(), path) for path, method, _ in operations()])
def test_every_request_example_passes_the_apis_validation(api, method, path):
    operation = DOCUMENT["paths"][path][method.lower()]
    successes = {int(status) for status in operation["responses"] if status.startswith("2")}
    for request in example_requests(path, method.lower(), operation):
        token = substitute(api, method, path, request)
        answer = api.request(method, request["path"], token=token, params=request["params"] or None,
                             headers=dict(request["headers"]), **({"json": request["json"]} if "json" in request else {}))
        sent = f"{method} {request['path']} {request['params']} {request['headers']} {request.get('json')}"
        assert answer.status_code not in (400, 413, 415, 422) and answer.status_code < 500, (sent, answer.text)
        if answer.status_code not in successes:
            refusal = REFUSED_AFTER_VALIDATION.get((method, path)) or ALSO_ACCEPTED.get((method, path))
            assert refusal, (sent, answer.status_code, answer.text)
            status, detail = refusal
            assert (answer.status_code, answer.json()["detail"]) == (status, detail.format(**request.get("json", {}))), sent
        documented = operation["responses"][str(answer.status_code)]
        resolved, at = resolve(documented)
        at = at or pointer("paths", path, method.lower(), "responses", str(answer.status_code))
        media = answer.headers["Content-Type"].split(";")[0].strip()
        assert media in resolved["content"], (sent, media)
        if media.endswith("json"):
            errors = list(validator(at + pointer("content", media, "schema")).iter_errors(answer.json()))
            assert not errors, (sent, answer.text, errors[0].message)
