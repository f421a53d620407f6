"""The second factor end to end (issue 24), over HTTP through the real function binaries: setup,
verification, a login's two steps, a replayed code, backup codes, reauthentication with a code,
disabling, and administrators held to a second factor when ADMIN_MFA_REQUIRED is true. Codes are
computed from the setup's secret with the standard library (RFC 6238: HMAC-SHA-1, 30-second
steps, 6 digits), as an authenticator app would. Tests that need time to pass (the hourly limit,
the temp token's expiry) run in-process with a moved clock (shared/tests/handlers/mfa.rs)."""

from __future__ import annotations

import base64
import json
import time

import pytest

from conftest import STRONG_PASSWORD, UNLIMITED, assert_problem, running_stack, totp, unique_username

def claims(access_token: str) -> dict:
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def login(api, username: str, password: str = STRONG_PASSWORD) -> dict:
    response = api.login(username, password)
    assert response.status_code == 200, response.text
    return response.json()


def enabled_user(api) -> tuple[str, dict, str, list[str], float]:
    """A new user with a verified factor: name, the verifying session's pair, secret, backup
    codes, and when the verification's code was computed (its step is spent)."""
    username = unique_username()
    assert api.register(username).status_code == 201
    pair = login(api, username)
    setup = api.post("/api/auth/mfa/setup", token=pair["access_token"])
    assert setup.status_code == 200, setup.text
    body = setup.json()
    assert set(body) == {"secret", "provisioning_uri", "qr_svg", "backup_codes", "message"}
    secret = body["secret"]
    assert body["provisioning_uri"] == f"otpauth://totp/FogCompute:{username}?secret={secret}&issuer=FogCompute"
    at = time.time()
    verified = api.post("/api/auth/mfa/verify", token=pair["access_token"], json={"code": totp(secret, at)})
    assert verified.status_code == 200, verified.text
    assert verified.json()["verified"] is True
    return username, pair, secret, body["backup_codes"], at


def test_setup_verify_and_a_login_in_two_steps(api):
    username, pair, _, codes, _ = enabled_user(api)
    status = api.get("/api/auth/mfa/status", token=pair["access_token"]).json()
    assert status["mfa_enabled"] is True and status["mfa_verified"] is True
    assert status["backup_codes_remaining"] == 10

    first = login(api, username)
    assert set(first) == {"mfa_required", "temp_token", "message", "expires_in"}
    assert first["mfa_required"] is True and first["expires_in"] == 300
    # A backup code, since the current step's TOTP code was spent by the verification.
    second = api.post("/api/auth/login/mfa", json={"temp_token": first["temp_token"], "mfa_code": codes[0]})
    assert second.status_code == 200, second.text
    tokens = second.json()
    assert "9 remain" in tokens["warning"]
    assert claims(tokens["access_token"])["amr"] == ["pwd", "otp"]
    assert claims(tokens["access_token"])["aal"] == "aal2"
    refreshed = api.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert claims(refreshed.json()["access_token"])["aal"] == "aal2"
    # The temp token was spent.
    again = api.post("/api/auth/login/mfa", json={"temp_token": first["temp_token"], "mfa_code": codes[1]})
    assert_problem(again, 401)


def test_a_code_is_accepted_once(api):
    _, pair, secret, codes, verified_at = enabled_user(api)
    replay = api.post("/api/auth/mfa/validate", token=pair["access_token"], json={"code": totp(secret, verified_at)})
    body = assert_problem(replay, 401)
    assert body["detail"] == "Invalid MFA code."
    used = api.post("/api/auth/mfa/validate", token=pair["access_token"], json={"code": codes[0]})
    assert used.status_code == 200, used.text
    assert used.json()["backup_codes_remaining"] == 9
    assert_problem(api.post("/api/auth/mfa/validate", token=pair["access_token"], json={"code": codes[0]}), 401)


def test_reauthentication_and_disabling_need_a_code(api):
    username, pair, _, codes, _ = enabled_user(api)
    alone = api.post("/api/auth/reauthenticate", token=pair["access_token"], json={"password": STRONG_PASSWORD})
    assert_problem(alone, 422)
    both = api.post(
        "/api/auth/reauthenticate", token=pair["access_token"], json={"password": STRONG_PASSWORD, "code": codes[0]}
    )
    assert both.status_code == 200, both.text
    disabled = api.post(
        "/api/auth/mfa/disable", token=pair["access_token"], json={"password": STRONG_PASSWORD, "code": codes[1]}
    )
    assert disabled.status_code == 200, disabled.text
    assert "access_token" in login(api, username)


def test_no_secret_or_code_is_stored_in_the_clear(api):
    _, _, secret, codes, _ = enabled_user(api)
    client = api.dynamodb.client()
    items, start = [], {}
    while True:
        page = client.scan(TableName=api.table, ConsistentRead=True, **start)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    text = json.dumps(items)
    assert secret not in text
    for code in codes:
        assert code not in text and code.replace("-", "") not in text


@pytest.fixture(scope="module")
def strict(dynamodb):
    with running_stack(dynamodb, "fog-compute-mfa-strict", ADMIN_MFA_REQUIRED="true", **UNLIMITED) as stack:
        yield stack


def test_administrators_need_the_second_factor_when_required(strict):
    username = unique_username()
    assert strict.register(username).status_code == 201
    pair = login(strict, username)
    promoted = strict.fogctl("promote", username)
    assert promoted.returncode == 0, promoted.stderr
    refused = strict.get("/api/admin/users", token=pair["access_token"])
    assert "second factor" in assert_problem(refused, 403)["detail"]
    setup = strict.post("/api/auth/mfa/setup", token=pair["access_token"]).json()
    code = totp(setup["secret"], time.time())
    assert strict.post("/api/auth/mfa/verify", token=pair["access_token"], json={"code": code}).status_code == 200
    raised = strict.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]}).json()
    assert strict.get("/api/admin/users", token=raised["access_token"]).status_code == 200
