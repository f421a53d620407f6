"""Log hygiene: one structured line per request, every line of a request carrying its request id
and route, the level AWS_LAMBDA_LOG_LEVEL names, and no secret in any line of a full scenario, a
failed login and a 500 forced by fault injection included."""

import collections
import hashlib
import json
import time

import pytest

from conftest import UNLIMITED, STRONG_PASSWORD, running_stack, totp, unique_username
from fault_proxy import FaultProxy


@pytest.fixture(scope="module")
def logged(dynamodb, tmp_path_factory):
    """The stack at the default level, with the bench's cost lines."""
    log = tmp_path_factory.mktemp("logs") / "functions.log"
    proxy = FaultProxy(dynamodb.port)
    try:
        with running_stack(dynamodb, "fog-compute-e2e-logs", log=log, DYNAMODB_ENDPOINT=proxy.url,
                           FOG_LOG_COSTS="1", **UNLIMITED) as api:
            yield api, proxy, log
    finally:
        proxy.close()


# What lambda_runtime logs as a process starts, before any request: cargo-lambda's emulator sets
# AWS_LAMBDA_MAX_CONCURRENCY (Lambda itself only on managed instances).
STARTUP_MESSAGES = ("AWS_LAMBDA_MAX_CONCURRENCY is set",)


def records(log_text: str) -> list[dict]:
    """The lines the functions logged while serving requests (cargo-lambda's own lines are not
    JSON)."""
    lines = []
    for line in log_text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and not record["fields"]["message"].startswith(STARTUP_MESSAGES):
            lines.append(record)
    return lines


def request_lines(log_text: str) -> list[dict]:
    """Each request's closing line: its fields, with its span's request id and route."""
    return [
        {**record["fields"], "request_id": record["span"]["request_id"], "route": record["span"]["route"]}
        for record in records(log_text)
        if record["fields"]["message"] == "request"
    ]


def test_a_full_scenario_logs_no_secret(logged):
    api, proxy, log = logged
    admin, _ = api.new_user()
    assert api.fogctl("promote", admin).returncode == 0
    admin_token = api.login(admin).json()["access_token"]
    username = unique_username()
    assert api.register(username).status_code == 201
    first = api.login(username).json()
    refreshed = api.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    token = refreshed["access_token"]
    new_password = "Quiet-Harbour-Lantern-7"
    changed = api.post("/api/auth/change-password", token=token,
                       json={"old_password": STRONG_PASSWORD, "new_password": new_password})
    assert changed.status_code == 200, changed.text
    wrong_reauthentication = "Wrong-Reauthentication-7"
    assert api.post("/api/auth/reauthenticate", token=token,
                    json={"password": wrong_reauthentication}).status_code == 401
    reauthenticated = api.post("/api/auth/reauthenticate", token=token, json={"password": new_password})
    assert reauthenticated.status_code == 200, reauthenticated.text
    other = api.login(username, new_password).json()
    assert api.post("/api/auth/revoke", json={"refresh_token": other["refresh_token"]}).status_code == 200
    me = api.get("/api/auth/me", token=token).json()
    wallet = me["wallet_address"]
    admin_wallet = api.get("/api/auth/me", token=admin_token).json()["wallet_address"]
    assert api.post("/api/tokenomics/mint", token=admin_token, json={"address": wallet, "amount": "5"}).status_code == 200
    transfer = api.post("/api/tokenomics/transfer", token=token,
                        json={"from_address": wallet, "to_address": admin_wallet, "amount": "1.5"})
    assert transfer.status_code == 200, transfer.text
    key = api.post("/api/keys", token=token, json={"name": "logged", "scopes": ["jobs:read", "tokens:read"]})
    assert key.status_code == 201, key.text
    api_key = key.json()["secret_key"]
    assert api.get("/api/scheduler/jobs", headers={"X-API-Key": api_key}).status_code == 200
    assert api.get("/api/keys", token=token).status_code == 200
    tampered = api_key[:-1] + ("A" if api_key[-1] != "A" else "B")
    assert api.get("/api/scheduler/jobs", headers={"X-API-Key": tampered}).status_code == 401
    assert api.get("/api/tokenomics/balance", headers={"X-API-Key": api_key, "Authorization": f"Bearer {token}"}).status_code == 400
    wrong_password = "Wrong-Secret-Password-9"
    assert api.login(username, wrong_password).status_code == 401
    # A second factor: its secret, codes and temp token are logged nowhere.
    mfa_session = api.login(username, new_password).json()
    setup = api.post("/api/auth/mfa/setup", token=mfa_session["access_token"]).json()
    mfa_code = totp(setup["secret"], time.time())
    assert api.post("/api/auth/mfa/verify", token=mfa_session["access_token"], json={"code": mfa_code}).status_code == 200
    assert api.post("/api/auth/mfa/validate", token=mfa_session["access_token"], json={"code": "000000"}).status_code == 401
    temp_token = api.login(username, new_password).json()["temp_token"]
    backup_code = setup["backup_codes"][0]
    second_step = api.post("/api/auth/login/mfa", json={"temp_token": temp_token, "mfa_code": backup_code})
    assert second_step.status_code == 200, second_step.text
    factor = api.dynamodb.client().get_item(
        TableName=api.table, Key={"PK": {"S": f"USER#{me['id']}"}, "SK": {"S": "MFA"}})["Item"]
    proxy.garble()
    try:
        assert api.get("/api/auth/me", token=token).status_code == 500
    finally:
        proxy.up()
    assert api.post("/api/auth/logout", token=token).status_code == 200

    text = log.read_text(errors="replace")
    hash_item = api.dynamodb.client().get_item(
        TableName=api.table, Key={"PK": {"S": f"USERNAME#{username}"}, "SK": {"S": "CREDENTIAL"}})["Item"]
    secrets = {
        "password": STRONG_PASSWORD,
        "wrong password": wrong_password,
        "access token": token,
        "first access token": first["access_token"],
        "refresh token": first["refresh_token"],
        "rotated refresh token": refreshed["refresh_token"],
        "revoked refresh token": other["refresh_token"],
        "new password": new_password,
        "wrong reauthentication password": wrong_reauthentication,
        "reauthenticated access token": reauthenticated.json()["access_token"],
        "token signature": token.split(".")[2],
        "admin token": admin_token,
        "password hash": hash_item["password_hash"]["S"],
        "JWT secret": api.env["JWT_SECRET"],
        "API key": api_key,
        "API key body": api_key[12:],
        "tampered API key": tampered[12:],
        "API key hash": hashlib.sha256(api_key.encode()).hexdigest(),
        "TOTP secret": setup["secret"],
        "TOTP code": mfa_code,
        "backup code": backup_code,
        "backup code, unhyphenated": backup_code.replace("-", ""),
        "other backup code": setup["backup_codes"][1],
        "sealed TOTP secret": factor["sealed_secret"]["S"],
        "backup code hash": next(iter(factor["backup_codes"]["M"])),
        "temp token": temp_token,
        "MFA key": api.env["MFA_KEY"],
    }
    for name, secret in secrets.items():
        assert secret not in text, f"the {name} appears in the logs"
    assert '"status":500' in text.replace(" ", ""), "the forced 500 was logged"
    key_lines = [line for line in request_lines(text) if line.get("api_key_id")]
    assert key_lines and all(line["api_key_id"] == key.json()["id"] for line in key_lines)


def test_audit_events_are_answered_and_logged_as_written(logged):
    """The events an administrator reads are the ones the functions logged with the `audit`
    marker, each on a line of the request that wrote it, and no line names the username."""
    api, _, log = logged
    admin, _ = api.new_user()
    assert api.fogctl("promote", admin).returncode == 0
    admin_token = api.login(admin).json()["access_token"]
    username, token = api.new_user()
    assert api.login(username, "Wrong-Password-1").status_code == 401
    user_id = api.get("/api/auth/me", token=token).json()["id"]
    listed = api.get("/api/admin/audit", token=admin_token, params={"subject": user_id})
    assert listed.status_code == 200, listed.text
    events = listed.json()["events"]
    assert [event["type"] for event in events] == ["login.failed", "login.succeeded", "user.registered"]
    assert events[0]["detail"] == {"username": username, "reason": "bad_password"}
    assert all(event["source_ip"] and event["request_id"] for event in events)

    text = log.read_text(errors="replace")
    logged_events = {}
    for record in records(text):
        if record["fields"].get("audit") == 1:
            event = json.loads(record["fields"]["event"])
            logged_events[event["id"]] = (record["span"]["request_id"], event)
    for event in events:
        request_id, logged_event = logged_events[event["id"]]
        assert request_id == event["request_id"]
        assert logged_event["type"] == event["type"] and logged_event["subject"] == user_id
        assert "username" not in logged_event["detail"]
    assert username not in text


def test_every_request_logs_one_structured_line(logged):
    api, _, log = logged
    before = len(request_lines(log.read_text(errors="replace")))
    _, token = api.new_user()
    api.get("/api/auth/me", token=token)
    api.get("/health")
    lines = request_lines(log.read_text(errors="replace"))[before:]
    routes = [line["route"] for line in lines]
    assert routes.count("GET /api/auth/me") == 1 and routes.count("GET /health") == 1, routes
    for line in lines:
        assert line["request_id"] and isinstance(line["status"], int) and line["latency_ms"] >= 0
        assert line.get("user_id") or line.get("source_ip")
        assert line["rate_limit"] in {"admitted", "refused", "unlimited"}
    me = next(line for line in lines if line["route"] == "GET /api/auth/me")
    assert me["user_id"] and me["rate_limit"] == "admitted"


def test_authentication_failures_are_logged_without_the_username(logged):
    api, _, log = logged
    username = unique_username()
    api.login(username, "Wrong-Password-1")
    text = log.read_text(errors="replace")
    assert "login refused: bad credentials" in text
    assert username not in text


def test_every_line_a_request_logs_carries_its_request_id_and_route(logged):
    api, proxy, log = logged
    before = len(log.read_text(errors="replace"))
    username, token = api.new_user()
    assert api.login(username, "Wrong-Password-1").status_code == 401
    proxy.garble()
    try:
        assert api.get("/api/auth/me", token=token).status_code == 500
    finally:
        proxy.up()

    lines = records(log.read_text(errors="replace")[before:])
    by_request = collections.defaultdict(list)
    for line in lines:
        span = line.get("span", {})
        assert span.get("request_id") and span.get("route"), f"a line without its request: {line}"
        assert span.get("correlation_id") == span["request_id"], f"no client id was sent: {line}"
        by_request[span["request_id"]].append(line)
    closing = {}
    for request_id, request in by_request.items():
        [closing[request_id]] = [line for line in request if line["fields"]["message"] == "request"]
        assert {line["span"]["route"] for line in request} == {closing[request_id]["span"]["route"]}

    def messages(route: str, status: int) -> list[str]:
        [request_id] = [request_id for request_id, line in closing.items()
                        if line["span"]["route"] == route and line["fields"]["status"] == status]
        return [line["fields"]["message"] for line in by_request[request_id]]

    assert {"cost", "login refused: bad credentials"} <= set(messages("POST /api/auth/login", 401))
    assert "request failed" in messages("GET /api/auth/me", 500)
    costs = {line["fields"]["cost"] for line in lines if line["fields"]["message"] == "cost"}
    assert costs == {"dynamodb", "argon2id"}, "the cost lines of DynamoDB calls and of hashing on the blocking pool"


def test_the_correlation_id_is_the_clients_or_the_request_id_on_the_answer_and_every_line(logged):
    """Issue 23: `X-Correlation-ID` answered back when the client sent a well-formed one (at most 64
    characters of `[A-Za-z0-9._-]`), otherwise the Lambda request id; and on every line the request
    logs, beside `request_id`."""
    api, _, log = logged
    before = len(log.read_text(errors="replace"))
    username, _ = api.new_user()
    sent = {"checkout-42.retry_1": True, "x" * 65: False, "two words": False, '{"forged":1}': False}
    answered = {}
    for correlation_id in sent:
        response = api.post("/api/auth/login", json={"username": username, "password": "Wrong-Password-1"},
                            headers={"X-Correlation-ID": correlation_id})
        assert response.status_code == 401
        answered[correlation_id] = response.headers["X-Correlation-ID"]
    plain = api.get("/health")
    lines = records(log.read_text(errors="replace")[before:])
    by_correlation = collections.defaultdict(list)
    for line in lines:
        by_correlation[line["span"]["correlation_id"]].append(line)
    for correlation_id, repeated in sent.items():
        lines_of_request = by_correlation[answered[correlation_id]]
        assert lines_of_request, correlation_id
        assert {line["span"]["route"] for line in lines_of_request} == {"POST /api/auth/login"}
        assert {"login refused: bad credentials", "request"} <= {line["fields"]["message"] for line in lines_of_request}
        if repeated:
            assert answered[correlation_id] == correlation_id
            assert {line["span"]["request_id"] for line in lines_of_request} != {correlation_id}
        else:
            assert {line["span"]["request_id"] for line in lines_of_request} == {answered[correlation_id]}
    [health] = [line for line in lines if line["span"]["route"] == "GET /health" and line["fields"]["message"] == "request"]
    assert plain.headers["X-Correlation-ID"] == health["span"]["request_id"] == health["span"]["correlation_id"]


@pytest.fixture(scope="module")
def warn_logged(dynamodb, tmp_path_factory):
    """The stack at WARN, spelled as Lambda never does."""
    log = tmp_path_factory.mktemp("logs-warn") / "functions.log"
    proxy = FaultProxy(dynamodb.port)
    try:
        with running_stack(dynamodb, "fog-compute-e2e-logs-warn", log=log, DYNAMODB_ENDPOINT=proxy.url,
                           AWS_LAMBDA_LOG_LEVEL="warn", **UNLIMITED) as api:
            yield api, proxy, log
    finally:
        proxy.close()


def test_the_level_lambda_sets_is_honoured(warn_logged):
    api, proxy, log = warn_logged
    proxy.refuse()
    try:
        assert api.get("/").status_code == 200
    finally:
        proxy.up()
    lines = records(log.read_text(errors="replace"))
    assert [line["level"] for line in lines] == ["WARN"], lines
    assert lines[0]["fields"]["message"] == "rate limiter unavailable; failing open"
    assert lines[0]["span"]["route"] == "GET /" and lines[0]["span"]["request_id"]
