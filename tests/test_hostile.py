"""Hostile input to every endpoint: a clear 4xx in the one error shape, never a 5xx, nothing
stored; and the security headers on every answer."""

import base64
import json
import re
from urllib.parse import urlsplit

import pytest
import yaml

from conftest import DOCS_PAGE_PERMISSIONS, DOCS_PAGE_POLICY, JSON_PERMISSIONS, REPO, assert_problem, local_stack

# Every field any endpoint reads; a hostile body sets them all, so each route meets its own.
FIELDS = [
    "username", "email", "password", "name", "sla_tier", "cpu_required", "memory_required",
    "gpu_required", "duration_estimate", "data_size_mb", "device_id", "device_type", "cpu_cores",
    "memory_mb", "battery_percent", "is_charging", "from_address", "to_address", "amount",
    "address", "title", "description", "proposer", "voting_period_hours", "proposal_id", "voter", "vote",
    "refresh_token", "old_password", "new_password",
    "expires_in_days", "rate_limit", "scopes",
]
HOSTILE_VALUES = {
    "1e309": "1e309",
    "negative zero": "-0",
    "1e-400": "1e-400",
    "2^64": "18446744073709551616",
    "NUL": '"a\\u0000b"',
    "RTL mark": '"\\u202eadmin"',
    "zero-width": '"ad\\u200bmin"',
    "object": "{}",
    "array": "[]",
    "boolean": "true",
}
HOSTILE_BODIES = {
    "malformed": "{\"username\": ",
    "array": "[]",
    "string": '"text"',
    "null": "null",
    "duplicate keys": '{"amount": "1", "amount": "1000"}',
    "lone surrogate": '{"name": "\\ud800"}',
    "nesting 10,000 deep": "[" * 10_000 + "]" * 10_000,
    "field nested 10,000 deep": '{"name": ' + "[" * 10_000 + "]" * 10_000 + "}",
    "1 MB of text": '{"description": "' + "x" * 1_000_000 + '"}',
    **{f"every field {label}": "{" + ", ".join(f'"{field}": {value}' for field in FIELDS) + "}"
       for label, value in HOSTILE_VALUES.items()},
}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": JSON_PERMISSIONS,
}
CORRELATION_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Routes that answer without reading a body.
BODILESS = {"GET", "DELETE"}
# POST routes that read no body: the admin API's actions (`POST .../{id}/deactivate`), the
# second factor's setup, and a verification mail's resend.
POSTS_WITHOUT_BODY = {"/api/admin/users/{id}/{action}", "/api/auth/mfa/setup", "/api/auth/verify-email/resend"}
# POST routes that read no body and write whatever it is: the second factor's setup (a pending
# factor of the caller's, replaced by the next; tests/test_mfa.py).
SETS_UP_WHATEVER_THE_BODY = {"/api/auth/mfa/setup"}
PUBLIC = {"/", "/health", "/openapi.json", "/docs", "/docs/{file}", "/api/auth/register", "/api/auth/login",
          "/api/auth/logout", "/api/auth/refresh", "/api/auth/revoke", "/api/auth/login/mfa",
          "/api/auth/password-reset/request", "/api/auth/password-reset/confirm", "/api/auth/verify-email"}
# Routes that answer 200 to whatever they are given: logout (any token or none) and revoke (any
# string as a refresh token, RFC 7009); a body revoke cannot read at all is still a 4xx.
ALWAYS_SUCCEED = {"/api/auth/logout", "/api/auth/revoke"}
# Routes that take any string as a guess of the caller's own password (reauthenticate): refused
# 401, and recorded as a failed login must be (`recorded_guess`).
GUESSES_RECORDED = {"/api/auth/reauthenticate"}


def routes():
    for method, path, _ in sorted(local_stack.served_routes(local_stack.load_template())):
        yield method, path, re.sub(r"\{[^}]+\}", "0190b1c5-0000-7000-8000-000000000000", path)


def expected_security_headers(response) -> dict[str, str]:
    """The docs page's answers have a policy of their own, and caching: the page until it is
    checked again, an asset for good, anything else never."""
    path = urlsplit(response.url).path
    if path != "/docs" and not path.startswith("/docs/"):
        return SECURITY_HEADERS
    if response.status_code != 200:
        caching = "no-store"
    else:
        caching = "no-cache" if path == "/docs" else "public, max-age=31536000, immutable"
    return {**SECURITY_HEADERS, "Content-Security-Policy": DOCS_PAGE_POLICY, "Permissions-Policy": DOCS_PAGE_PERMISSIONS,
            "Cache-Control": caching}


def assert_security_headers(response):
    for name, value in expected_security_headers(response).items():
        assert response.headers.get(name) == value, (response.request.method, response.url, name)
    assert response.headers.get("Strict-Transport-Security", "").startswith("max-age=")
    assert CORRELATION_ID.match(response.headers.get("X-Correlation-ID", "")), (response.request.method, response.url)


def stored_items(api) -> list:
    """Every item but the rate limiter's counters (which count hostile requests too)."""
    items, start = [], {}
    client = api.dynamodb.client()
    while True:
        page = client.scan(TableName=api.table, **start)
        items += [item for item in page["Items"] if not item["PK"]["S"].startswith("RATE#")]
        if "LastEvaluatedKey" not in page:
            return sorted(items, key=lambda item: (item["PK"]["S"], item["SK"]["S"]))
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def recorded_guess(item, username: str) -> bool:
    """What a wrong password of `username` writes, as it must: the username's failed logins and
    the `login.failed` event of each (`via: reauthenticate`)."""
    if item["PK"]["S"] == f"LOGINFAIL#{username}":
        return True
    detail = item.get("detail", {}).get("M", {})
    return item.get("type", {}).get("S") == "login.failed" and detail.get("via", {}).get("S") == "reauthenticate"


@pytest.fixture(scope="module")
def token(api):
    """An administrator's, so that the admin-only route reaches its body checks too; with a
    verified address, so that a verification mail's resend (which reads no body) stores nothing."""
    username, _ = api.new_user()
    assert api.fogctl("promote", username).returncode == 0
    verification = api.mailed_token(f"{username}@example.com", "verify-email")
    assert api.post("/api/auth/verify-email", json={"token": verification}).status_code == 200
    return api.login(username).json()["access_token"]


def test_hostile_bodies_get_a_clear_4xx_and_store_nothing(api, token):
    before = stored_items(api)
    for method, template_path, path in routes():
        # Setup reads no body: whatever is sent, it stores a new pending factor, by design.
        if template_path in SETS_UP_WHATEVER_THE_BODY:
            continue
        for label, body in HOSTILE_BODIES.items():
            auth = None if template_path == "/api/auth/logout" else token
            response = api.request(method, path, token=auth, data=body.encode(),
                                   headers={"Content-Type": "application/json"})
            assert response.status_code < 500, (method, path, label, response.text[:300])
            assert_security_headers(response)
            if method in BODILESS or template_path in POSTS_WITHOUT_BODY | {"/api/auth/logout"}:
                continue
            if template_path in ALWAYS_SUCCEED and response.status_code == 200:
                continue
            assert 400 <= response.status_code < 500, (method, path, label, response.text[:300])
            body = assert_problem(response, response.status_code)
            if template_path in GUESSES_RECORDED and response.status_code == 401:
                assert body["detail"] == "Incorrect password", (path, label)
    username = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==="))["username"]
    kept = [item for item in stored_items(api) if not recorded_guess(item, username)]
    assert kept == [item for item in before if not recorded_guess(item, username)]


def test_a_missing_or_wrong_content_type_gets_415(api, token):
    for method, template_path, path in routes():
        if method in BODILESS or template_path in POSTS_WITHOUT_BODY | {"/api/auth/logout"}:
            continue
        for content_type in [None, "text/html", "application/x-www-form-urlencoded"]:
            headers = {"Content-Type": content_type} if content_type else {}
            response = api.request(method, path, token=token, data=b'{"name": "x"}', headers=headers)
            assert_problem(response, 415)


def test_bad_authorization_headers_get_401_everywhere_it_is_required(api):
    for method, template_path, path in routes():
        if template_path in PUBLIC:
            continue
        for header in ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt", "Token abc"]:
            response = api.request(method, path, headers={"Authorization": header, "Content-Type": "application/json"},
                                   data=b"{}")
            assert_problem(response, 401)
            # A bearer token that does not verify is `invalid_token`; no token at all, no error.
            challenge = 'Bearer error="invalid_token"' if header == "Bearer not.a.jwt" else "Bearer"
            assert response.headers["WWW-Authenticate"] == challenge, (method, path, header)
            assert_security_headers(response)


# The client removes dot segments before sending (RFC 3986, urllib3): an id of `..` requests the
# parent path, which is a route of its own only above the docs assets (`/docs/..` is `GET /`).
PARENT_IS_A_ROUTE = {"/docs/{file}"}


def test_hostile_path_ids_get_4xx(api, token):
    for method, template_path, _ in routes():
        if "{" not in template_path:
            continue
        for hostile_id in ["x" * 10_240, "..%2F..%2Fetc%2Fpasswd", "%00", "a%00b", "..", "%2e%2e"]:
            if hostile_id == ".." and template_path in PARENT_IS_A_ROUTE:
                continue
            path = re.sub(r"\{[^}]+\}", hostile_id, template_path)
            response = api.request(method, path, token=token)
            assert 400 <= response.status_code < 500, (method, path[:80], response.text[:200])


HOSTILE_QUERIES = {
    "/api/scheduler/jobs": ["limit=5&limit=50", "status=pending&status=running", "limit=1e309", "limit=-0.5",
                            "limit=18446744073709551616", "limit=0", "limit=101", "cursor=" + "A" * 10_000,
                            "cursor=%00", "status=%00"],
    "/api/tokenomics/proposals": ["limit=5&limit=50", "limit=1e309", "limit=-0", "cursor=../../x", "cursor=%00"],
    "/api/tokenomics/balance": ["address=%00", "address=0x&address=0x", "address=" + "0" * 10_000],
}


def test_repeated_and_hostile_query_parameters_get_4xx(api, token):
    for path, queries in HOSTILE_QUERIES.items():
        for query in queries:
            response = api.get(f"{path}?{query}", token=token)
            assert 400 <= response.status_code < 500, (path, query[:80], response.text[:200])
            assert_problem(response, response.status_code)


def test_html_in_names_titles_and_descriptions_comes_back_escaped(api, token):
    script = '<script>alert("x")</script>'
    job = api.post("/api/scheduler/jobs", token=token, json={
        "name": script, "sla_tier": "gold", "cpu_required": 1, "memory_required": 1})
    assert job.status_code == 201, job.text
    fetched = api.get(f"/api/scheduler/jobs/{job.json()['jobId']}", token=token).json()
    assert "<script>" not in fetched["name"] and "&lt;script&gt;" in fetched["name"]
    wallet = api.get("/api/auth/me", token=token).json()["wallet_address"]
    proposal = api.post("/api/tokenomics/proposals", token=token, json={
        "title": f"{script} title", "description": f"{script} " + "d" * 60, "proposer": wallet})
    assert proposal.status_code == 201, proposal.text
    listed = api.get("/api/tokenomics/proposals", token=token).json()["proposals"]
    mine = next(item for item in listed if item["id"] == proposal.json()["proposalId"])
    for field in ("title", "description"):
        assert "<script>" not in mine[field] and "&lt;script&gt;" in mine[field]


def test_hidden_characters_in_free_text_are_refused_and_nothing_is_stored(api, token):
    wallet = api.get("/api/auth/me", token=token).json()["wallet_address"]
    valid = {
        "/api/scheduler/jobs": {"name": "render", "sla_tier": "gold", "cpu_required": 1, "memory_required": 1},
        "/api/tokenomics/proposals": {"title": "A fair title", "description": "d" * 60, "proposer": wallet},
        "/api/idle-compute/devices": {"device_id": "device-1", "device_type": "laptop", "cpu_cores": 4,
                                      "memory_mb": 8192},
    }
    free_text = {"/api/scheduler/jobs": ["name"], "/api/tokenomics/proposals": ["title", "description"],
                 "/api/idle-compute/devices": ["device_id"]}
    before = stored_items(api)
    for path, fields in free_text.items():
        for field in fields:
            for hostile in ["a\u0000b", "\u202eadmin", "ad\u200bmin", "x" * 1_000_000]:
                body = {**valid[path], field: valid[path][field] + hostile}
                response = api.post(path, token=token, json=body)
                assert response.status_code in (413, 422), (path, field, repr(hostile[:10]), response.text[:200])
                assert_problem(response, response.status_code)
    assert stored_items(api) == before


# X-API-Key values no key this API issued can have: refused from their form or checksum alone.
HOSTILE_KEYS = [
    "", "fog_sk_", "fog_sk_" + "A" * 97, "fog_sk_" + "A" * 96 + "!", "x" * 10_240, "Bearer fog_sk_x",
    "fog_sk_" + "\u00e9" * 97, "fog_sk_../../etc/passwd", "fog_sk_%00",
]


def key_policy(method: str, path: str) -> str:
    """What openapi.yaml says an operation does with an API key: `accepted` (the ApiKey scheme
    is listed), `refused` (credentials, but not a key), or `ignored` (a public operation)."""
    operation = OPENAPI["paths"][path][method.lower()]
    if "security" not in operation:
        return "ignored"
    return "accepted" if any("ApiKey" in requirement for requirement in operation["security"]) else "refused"


OPENAPI = yaml.safe_load((REPO / "openapi.yaml").read_text())


def test_hostile_api_keys_are_refused_and_store_nothing(api, token):
    before = stored_items(api)
    for method, template_path, path in routes():
        policy = key_policy(method, template_path)
        for hostile in HOSTILE_KEYS:
            headers = {"X-API-Key": hostile.encode("utf-8").decode("latin-1"), "Content-Type": "application/json"}
            response = api.request(method, path, headers=headers, data=b"{}")
            assert response.status_code < 500, (method, path, hostile[:20], response.text[:200])
            assert_security_headers(response)
            if policy == "accepted":
                assert_problem(response, 401)
                assert response.headers["WWW-Authenticate"] == "ApiKey", (method, path)
                assert "X-RateLimit-Limit" not in response.headers, "refused before counting"
            elif policy == "refused":
                assert_problem(response, 403)
            else:
                assert response.status_code not in (401, 403), (method, path, response.text[:200])
    assert stored_items(api) == before
