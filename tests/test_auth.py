"""The auth endpoints end to end, over HTTP, through the real function binaries."""

import base64
import hashlib
import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import assert_problem, invalid_fields, local_stack, unique_username


def test_register_login_me_logout_flow(api):
    username = unique_username()
    registered = api.register(username.upper(), f"{username}@Example.com")
    assert registered.status_code == 201, registered.text
    user = registered.json()
    assert set(user) == {"id", "username", "email", "is_active", "is_admin", "created_at", "last_login", "wallet_address", "email_verified"}
    assert (user["username"], user["email"]) == (username, f"{username}@example.com")
    assert user["is_active"] is True and user["is_admin"] is False and user["last_login"] is None
    assert len(user["wallet_address"]) == 66 and user["wallet_address"].startswith("0x")

    login = api.login(username.upper())
    assert login.status_code == 200, login.text
    body = login.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 1800
    token = body["access_token"]

    me = api.get("/api/auth/me", token=token)
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]
    assert me.json()["last_login"] is not None

    logout = api.post("/api/auth/logout", token=token)
    assert logout.status_code == 200
    assert logout.json()["success"] is True

    after = api.get("/api/auth/me", token=token)
    assert_problem(after, 401)
    assert after.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_logout_succeeds_without_a_token(api):
    response = api.post("/api/auth/logout")
    assert response.status_code == 200
    assert response.json()["success"] is True


def test_each_login_token_is_revoked_on_its_own(api):
    username, first = api.new_user()
    second = api.login(username).json()["access_token"]
    assert api.post("/api/auth/logout", token=first).status_code == 200
    assert api.get("/api/auth/me", token=first).status_code == 401
    assert api.get("/api/auth/me", token=second).status_code == 200


def test_usernames_take_the_old_backends_alphabet(api):
    """Letters, digits, `_` and `-`, 3-50 characters, compared in any case (issue 23): the old
    backend's suites register names such as `refresh_user_1700000000`."""
    username = f"Refresh_User-{unique_username()}"
    registered = api.register(username)
    assert registered.status_code == 201, registered.text
    assert registered.json()["username"] == username.lower()
    assert api.login(username.upper()).status_code == 200
    assert api.register(username.lower(), f"other-{username}@example.com").status_code == 400
    for bad in ("ab", "a" * 51, "dot.ted", "plus+sign", "space d", "caf\u00e9"):
        assert invalid_fields(api.register(bad, f"{unique_username()}@example.com")) == {"username"}, bad


def test_duplicate_username_in_any_case_and_duplicate_email(api):
    username = unique_username()
    assert api.register(username).status_code == 201
    again = api.register(username.upper(), f"other-{username}@example.com")
    assert assert_problem(again, 400)["detail"] == "Username already registered"
    email_taken = api.register(unique_username(), f"{username.upper()}@EXAMPLE.com")
    assert assert_problem(email_taken, 400)["detail"] == "Email already registered"


def test_a_failed_registration_reserves_nothing(api):
    username, email = unique_username(), f"{unique_username()}@example.com"
    assert api.register(username).status_code == 201
    assert api.register(username, email).status_code == 400
    # The email of the refused registration is still free.
    assert api.register(unique_username(), email).status_code == 201


def test_concurrent_registrations_of_one_username_admit_exactly_one(api):
    username = unique_username()
    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(lambda i: api.register(username, f"{username}{i}@example.com"), range(10)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [400] * 9, [response.text for response in responses]


def test_weak_and_common_passwords_are_refused(api):
    for password, reason in [
        ("Short1", "characters"),
        ("alllowercase1", "upper-case"),
        ("ALLUPPERCASE1", "lower-case"),
        ("NoDigitsHere", "digit"),
        ("Passw0rd", "common"),
        ("Password1", "common"),
    ]:
        body = assert_problem(api.register(password=password), 422)
        messages = {error["field"]: error["message"] for error in body["errors"]}
        assert reason in messages["password"], (password, messages)


def test_a_64_character_password_is_kept_whole(api):
    username = unique_username()
    password = "Aa1" + "x" * 61
    assert api.register(username, password=password).status_code == 201
    assert api.login(username, password).status_code == 200
    assert api.login(username, password[:-1]).status_code == 401


def test_every_failing_field_is_listed(api):
    body = assert_problem(api.post("/api/auth/register", json={"username": "a!", "email": "nope", "password": 5}), 422)
    assert {error["field"] for error in body["errors"]} == {"username", "email", "password"}
    missing = assert_problem(api.post("/api/auth/register", json={}), 422)
    assert {error["field"] for error in missing["errors"]} == {"username", "email", "password"}


def test_unknown_user_and_wrong_password_answer_alike(api):
    username, _ = api.new_user()
    wrong_password = api.login(username, "Wrong-Password-1")
    unknown_user = api.login(unique_username(), "Wrong-Password-1")
    for response in (wrong_password, unknown_user):
        assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert wrong_password.json() == unknown_user.json()
    assert wrong_password.json()["detail"] == "Incorrect username or password"


def test_admin_flag_in_the_body_is_ignored(api):
    response = api.register(is_admin=True, is_active=False, id="chosen-id", role="admin")
    assert response.status_code == 201
    user = response.json()
    assert user["is_admin"] is False and user["is_active"] is True and user["id"] != "chosen-id"
    assert "role" not in user


def test_deactivated_user_is_refused_and_its_tokens_stop_working(api):
    username, token = api.new_user()
    result = api.fogctl("deactivate", username)
    assert result.returncode == 0, result.stderr
    assert_problem(api.login(username), 403)["detail"] == "Account is disabled"
    assert api.login(username, "Wrong-Password-1").status_code == 401
    assert_problem(api.get("/api/auth/me", token=token), 401)
    assert api.fogctl("activate", username).returncode == 0
    assert api.login(username).status_code == 200


def test_fogctl_promotes_and_reports_unknown_users(api):
    username, token = api.new_user()
    assert api.fogctl("promote", username.upper()).returncode == 0
    assert api.get("/api/auth/me", token=token).json()["is_admin"] is True
    assert api.fogctl("demote", username).returncode == 0
    assert api.get("/api/auth/me", token=token).json()["is_admin"] is False
    unknown = api.fogctl("promote", unique_username())
    assert unknown.returncode != 0 and "no user named" in unknown.stderr


INVALID_TOKEN = 'Bearer error="invalid_token"'
EXPIRED_TOKEN = 'Bearer error="invalid_token", error_description="The access token expired"'


def test_bad_tokens_get_401(api):
    username, token = api.new_user()
    header, payload, signature = token.split(".")
    for bad in ["garbage", f"{header}.{payload}.{signature[::-1]}", f"{header}.{payload}."]:
        response = api.get("/api/auth/me", headers={"Authorization": f"Bearer {bad}"})
        assert assert_problem(response, 401)["detail"] == "Could not validate credentials"
        assert response.headers["WWW-Authenticate"] == INVALID_TOKEN
    # RFC 6750, section 3.1: a request without a bearer token gets no error code.
    for without in [{"Authorization": "Bearer "}, {}, {"Authorization": f"Basic {token}"}]:
        response = api.get("/api/auth/me", headers=without)
        assert assert_problem(response, 401)["detail"] == "Not authenticated"
        assert response.headers["WWW-Authenticate"] == "Bearer"


def hs256(claims: dict, secret: str) -> str:
    def encode(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = encode(b'{"alg":"HS256","typ":"JWT"}') + "." + encode(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + encode(signature)


def test_an_expired_token_is_told_so(api):
    """Issue 23, item 4: a client can tell an expired token (refresh it) from a bad one."""
    _, token = api.new_user()
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] = int(time.time()) - 60
    claims["iat"] = claims["exp"] - 1800
    expired = hs256(claims, api.env["JWT_SECRET"])
    response = api.get("/api/auth/me", token=expired)
    assert assert_problem(response, 401)["detail"] == "Token has expired"
    assert response.headers["WWW-Authenticate"] == EXPIRED_TOKEN
    # The same claims under another key are no token of this API's: not said to have expired.
    forged = api.get("/api/auth/me", token=hs256(claims, "another-secret-of-at-least-32-bytes!!"))
    assert assert_problem(forged, 401)["detail"] == "Could not validate credentials"
    assert forged.headers["WWW-Authenticate"] == INVALID_TOKEN
    assert api.get("/api/auth/me", token=token).status_code == 200


def test_malformed_wrong_type_and_oversize_bodies_get_4xx(api):
    headers = {"Content-Type": "application/json"}
    assert_problem(api.post("/api/auth/register", data="{not json", headers=headers), 400)
    assert_problem(api.post("/api/auth/login", data="[1, 2]", headers=headers), 422)
    assert_problem(api.post("/api/auth/login", data="null", headers=headers), 422)
    assert_problem(api.post("/api/auth/register", data="{}", headers={"Content-Type": "text/html"}), 415)
    assert_problem(api.post("/api/auth/login", data=b'{"username": "a"}'), 415)
    huge = '{"username": "%s"}' % ("a" * 70_000)
    assert_problem(api.post("/api/auth/register", data=huge, headers=headers), 413)


def test_health_and_root(api):
    health = api.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "healthy"
    root = api.get("/")
    assert root.status_code == 200
    assert "POST /api/auth/register" in root.json()["endpoints"]



def test_cors_answers_only_the_configured_origin(api):
    allowed = api.get("/health", headers={"Origin": local_stack.DEVELOPMENT_ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == local_stack.DEVELOPMENT_ORIGIN
    assert "Origin" in allowed.headers["Vary"]
    for origin in ["https://evil.example", "null", local_stack.DEVELOPMENT_ORIGIN + ".evil.example"]:
        refused = api.get("/health", headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in refused.headers, origin
        assert refused.headers["Vary"] == "Origin", origin  # a shared cache must not reuse it
        assert "Access-Control-Allow-Credentials" not in refused.headers
