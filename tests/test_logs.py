"""Log hygiene: one structured line per request, and no secret in any line of a full scenario,
a failed login and a 500 forced by fault injection included."""

import hashlib
import json

import pytest

from conftest import UNLIMITED, STRONG_PASSWORD, running_stack, unique_username
from fault_proxy import FaultProxy


@pytest.fixture(scope="module")
def logged(dynamodb, tmp_path_factory):
    log = tmp_path_factory.mktemp("logs") / "functions.log"
    proxy = FaultProxy(dynamodb.port)
    try:
        with running_stack(dynamodb, "fog-compute-e2e-logs", log=log, DYNAMODB_ENDPOINT=proxy.url, **UNLIMITED) as api:
            yield api, proxy, log
    finally:
        proxy.close()


def request_lines(log_text: str) -> list[dict]:
    lines = []
    for line in log_text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("fields", {}).get("message") == "request":
            lines.append(record["fields"])
    return lines


def test_a_full_scenario_logs_no_secret(logged):
    api, proxy, log = logged
    admin, _ = api.new_user()
    assert api.fogctl("promote", admin).returncode == 0
    admin_token = api.login(admin).json()["access_token"]
    username = unique_username()
    assert api.register(username).status_code == 201
    token = api.login(username).json()["access_token"]
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
        "token signature": token.split(".")[2],
        "admin token": admin_token,
        "password hash": hash_item["password_hash"]["S"],
        "JWT secret": api.env["JWT_SECRET"],
        "API key": api_key,
        "API key body": api_key[12:],
        "tampered API key": tampered[12:],
        "API key hash": hashlib.sha256(api_key.encode()).hexdigest(),
    }
    for name, secret in secrets.items():
        assert secret not in text, f"the {name} appears in the logs"
    assert '"status":500' in text.replace(" ", ""), "the forced 500 was logged"
    key_lines = [line for line in request_lines(text) if line.get("api_key_id")]
    assert key_lines and all(line["api_key_id"] == key.json()["id"] for line in key_lines)


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
