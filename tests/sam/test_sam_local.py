"""The functions in SAM's Lambda containers, against a local DynamoDB, driven by template.yaml:
every events/ fixture invoked through `sam local start-lambda` (one SAM process for them all),
`sam local invoke` itself for a registration and login and for bodies that are not UTF-8, and
`sam local start-api` end to end."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid

import pytest
import requests
from conftest import REPO, SAM_TABLE, local_stack

TEMPLATE = local_stack.load_template()
FUNCTIONS = local_stack.template_functions(TEMPLATE)
ROUTES = local_stack.template_routes(TEMPLATE)
# The routes that serve a path (all but the `$default` route, which answers what none matches).
SERVED = local_stack.served_routes(TEMPLATE)
BINARY_TO_ID = {binary: logical_id for logical_id, binary in FUNCTIONS.items()}
AUTH_FLOW = ("register", "login", "me", "logout")
PASSWORD = "Fog-Compute-2024"
TIMEOUT = 120


def fixture(binary: str) -> dict:
    return json.loads((REPO / "events" / f"{binary}.json").read_text())


def fixture_user() -> dict:
    return json.loads(fixture("register")["body"])


def invocation_order() -> list[str]:
    """register, then login (its token goes into every fixture with an Authorization header),
    then the rest in template order, logout last so that the token stays valid until then."""
    rest = [binary for binary in FUNCTIONS.values() if binary not in ("register", "login", "logout")]
    return ["register", "login", *rest, "logout"]


@pytest.fixture(scope="session")
def invocations(sam_stack) -> dict[str, dict | Exception]:
    """Every function invoked once with its fixture, through `sam local start-lambda`;
    binary -> response (or the error)."""
    server = sam_stack.sam.start_lambda(local_stack.free_port(), log=sam_stack.workdir / "start-lambda.log")
    try:
        return invoke_every_fixture(server)
    finally:
        server.stop()


def invoke_every_fixture(server) -> dict[str, dict | Exception]:
    results: dict[str, dict | Exception] = {}
    token = refresh_token = None
    for binary in invocation_order():
        if not (REPO / "events" / f"{binary}.json").exists():
            results[binary] = FileNotFoundError(f"events/{binary}.json is missing")
            continue
        event = fixture(binary)
        if token and "authorization" in event["headers"]:
            event["headers"]["authorization"] = f"Bearer {token}"
        if refresh_token and binary == "refresh":
            event["body"] = json.dumps({"refresh_token": refresh_token})
            event["headers"]["content-length"] = str(len(event["body"]))
        try:
            results[binary] = server.invoke(BINARY_TO_ID[binary], event)
        except Exception as error:  # reported by the function's own test
            results[binary] = error
            continue
        if binary == "login" and results[binary].get("statusCode") == 200:
            login = json.loads(results[binary]["body"])
            token, refresh_token = login["access_token"], login["refresh_token"]
    return results


def response_of(invocations, binary: str) -> tuple[int, dict | str, dict]:
    """The status, the body (JSON, but the docs page's HTML) and the headers of an invocation."""
    result = invocations[binary]
    if isinstance(result, Exception):
        raise result
    headers = {name.lower(): value for name, value in result.get("headers", {}).items()}
    if binary == "docs":
        return result["statusCode"], result["body"], headers
    assert headers.get("content-type") in ("application/json", "application/problem+json"), result
    return result["statusCode"], json.loads(result["body"]), headers


def check_root(status, body, _headers):
    assert status == 200
    assert set(body["endpoints"]) == {f"{method} {path}" for method, path, _ in SERVED}


def check_health(status, body, _headers):
    assert status == 200 and body["status"] == "healthy"


def check_register(status, body, _headers):
    assert status == 201, body
    user = fixture_user()
    assert (body["username"], body["email"]) == (user["username"], user["email"])
    assert body["is_active"] is True and body["is_admin"] is False


def check_login(status, body, _headers):
    assert status == 200, body
    assert body["token_type"] == "bearer" and body["access_token"].count(".") == 2
    assert body["refresh_token"].startswith("fog_rt_") and body["refresh_expires_in"] == 7 * 24 * 3600


def check_refresh(status, body, _headers):
    """Given the refresh token login answered: the rotation."""
    check_login(status, body, _headers)


def check_revoke(status, body, _headers):
    assert status == 200 and body["success"] is True, body


def check_list_sessions(status, body, _headers):
    assert status == 200, body
    assert [session["current"] for session in body["sessions"]] == [True], body


def check_reauthenticate(status, body, _headers):
    """Before change-password (template order): the fixture's password is the fixture user's."""
    assert status == 200, body
    assert body["token_type"] == "bearer" and body["access_token"].count(".") == 2
    assert set(body) == {"access_token", "token_type", "expires_in"}, body


def check_change_password(status, body, _headers):
    """The fixture's old password is the fixture user's; the session goes on (logout is last)."""
    assert status == 200 and body["success"] is True, body


def check_me(status, body, _headers):
    assert status == 200, body
    assert body["username"] == fixture_user()["username"]


def check_logout(status, body, _headers):
    assert status == 200 and body["success"] is True


def check_openapi(status, body, _headers):
    assert status == 200 and body["openapi"] == "3.1.0"


def check_docs(status, page, headers):
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8", page
    assert '<div id="swagger-ui">' in page and headers["cache-control"] == "no-cache"
    assert headers["content-security-policy"].startswith("default-src 'none'; script-src 'self';")


def check_submit_job(status, body, _headers):
    assert status == 201, body
    assert body["success"] is True and body["status"] == "pending" and body["jobId"]


def check_list_jobs(status, body, _headers):
    assert status == 200, body
    assert [job["name"] for job in body["jobs"]] == [json.loads(fixture("submit-job")["body"])["name"]]


def check_register_device(status, body, _headers):
    assert status == 201, body
    assert body["deviceId"] == json.loads(fixture("register-device")["body"])["device_id"]


def check_list_devices(status, body, _headers):
    assert status == 200, body
    assert [device["id"] for device in body["devices"]] == [json.loads(fixture("register-device")["body"])["device_id"]]


def check_balance(status, body, _headers):
    assert status == 200, body
    assert (body["balance"], body["staked"], body["total"]) == ("0", "0", "0")


def check_list_proposals(status, body, _headers):
    assert status == 200 and isinstance(body["proposals"], list), body


def check_create_api_key(status, body, _headers):
    assert status == 201, body
    requested = json.loads(fixture("create-api-key")["body"])
    assert body["name"] == requested["name"] and body["scopes"] == sorted(requested["scopes"])
    assert body["secret_key"].startswith("fog_sk_") and body["prefix"] == body["secret_key"][:12]


def check_list_api_keys(status, body, _headers):
    assert status == 200, body
    assert [key["name"] for key in body["keys"]] == [json.loads(fixture("create-api-key")["body"])["name"]]
    assert "secret_key" not in body["keys"][0]


def check_mfa_status(status, body, _headers):
    assert status == 200, body
    assert (body["mfa_enabled"], body["mfa_verified"], body["backup_codes_remaining"]) == (False, False, 0), body


def check_mfa_setup(status, body, _headers):
    """Not enabled until verified: the fixture's code cannot be this secret's (but by chance)."""
    assert status == 200, body
    assert body["provisioning_uri"].startswith("otpauth://totp/FogCompute:") and len(body["backup_codes"]) == 10


def check_password_reset_request(status, body, _headers):
    assert status == 200, body
    assert body["message"] == "If an account exists with that email, a password reset link has been sent."


def check_verify_email_resend(status, body, _headers):
    assert status == 202, body


def check_problem(expected):
    """The fixture names something the signed-in fixture user may not touch, or that does not
    exist: the function must say so in the problem shape."""
    def check(status, body, headers):
        assert status == expected, body
        assert headers["content-type"] == "application/problem+json" and body["status"] == status
    return check


def check_not_found(status, body, headers):
    """The fixture: a browser's GET of the login route, which takes POST."""
    assert status == 405, body
    assert headers["content-type"] == "application/problem+json" and body["status"] == 405
    assert headers["allow"] == "POST"


CHECKS = {
    "not-found": check_not_found,
    "openapi": check_openapi,
    "docs": check_docs,
    "submit-job": check_submit_job,
    "list-jobs": check_list_jobs,
    "get-job": check_problem(404),
    "cancel-job": check_problem(404),
    "register-device": check_register_device,
    "list-devices": check_list_devices,
    "balance": check_balance,
    # The fixture wallets are not the fixture user's (its address is random per registration).
    "transfer": check_problem(403),
    "stake": check_problem(403),
    "unstake": check_problem(403),
    "create-proposal": check_problem(403),
    "vote": check_problem(403),
    "mint": check_problem(403),
    "list-proposals": check_list_proposals,
    "create-api-key": check_create_api_key,
    "list-api-keys": check_list_api_keys,
    # The fixture's key id names no key of the fixture user.
    "get-api-key": check_problem(404),
    "revoke-api-key": check_problem(404),
    "root": check_root,
    "health": check_health,
    "register": check_register,
    "login": check_login,
    "me": check_me,
    "logout": check_logout,
    "refresh": check_refresh,
    # The fixture's token is a placeholder that names no session: no error (RFC 7009).
    "revoke": check_revoke,
    "list-sessions": check_list_sessions,
    # The fixture's session id is no session of the fixture user.
    "delete-session": check_problem(404),
    "reauthenticate": check_reauthenticate,
    # The fixture's temp token was never issued.
    "login-mfa": check_problem(401),
    "mfa-status": check_mfa_status,
    "mfa-setup": check_mfa_setup,
    # After mfa-setup: the fixture's code is not the new secret's.
    "mfa-verify": check_problem(401),
    # The fixture user's second factor was never verified, so never enabled.
    "mfa-validate": check_problem(409),
    "mfa-disable": check_problem(409),
    "mfa-regenerate-backup-codes": check_problem(409),
    "change-password": check_change_password,
    "password-reset-request": check_password_reset_request,
    # The fixtures' tokens were never mailed.
    "password-reset-confirm": check_problem(400),
    "verify-email": check_problem(400),
    "verify-email-resend": check_verify_email_resend,
    # The fixture user is no administrator.
    "admin-list-users": check_problem(403),
    "admin-user-action": check_problem(403),
    "admin-audit": check_problem(403),
}


@pytest.mark.parametrize("binary", invocation_order())
def test_every_function_answers_its_fixture_in_sam(invocations, binary):
    CHECKS[binary](*response_of(invocations, binary))


def test_the_invoked_functions_wrote_to_the_local_table(sam_stack, invocations):
    response_of(invocations, "register")
    username = fixture_user()["username"]
    item = sam_stack.dynamodb.client().get_item(
        TableName=SAM_TABLE, Key={"PK": {"S": f"USERNAME#{username}"}, "SK": {"S": "CREDENTIAL"}}
    )
    assert "Item" in item


def test_the_invoked_functions_sent_their_mail_through_ses(sam_stack, invocations):
    """Registration's verification mail, the resent one and the reset mail, each through SES v2
    at the local server, each with its link."""
    for binary in ("register", "verify-email-resend", "password-reset-request"):
        response_of(invocations, binary)
    mail = [message for message in sam_stack.dynamodb.sent_mail()
            if message["destinations"]["ToAddresses"] == [fixture_user()["email"]]]
    links = [local_stack.mail_link(str(message["body"])) for message in mail]
    pages = sorted(link.split("?")[0].rsplit("/", 1)[1] for link in links)
    assert pages == ["reset-password", "verify-email", "verify-email"], mail


# ---------------------------------------------------------------------------------------------
# Bodies that are not UTF-8: API Gateway hands them to the function base64-encoded.


def latin1(text: str) -> bytes:
    """A body as a client that does not write UTF-8 sends it (`é` as the one byte 0xE9)."""
    return text.encode("latin-1")


def base64_event(binary: str, body: bytes, token: str | None = None) -> dict:
    """The function's fixture with `body` as API Gateway passes a body that is not UTF-8."""
    event = fixture(binary)
    event["body"] = base64.b64encode(body).decode("ascii")
    event["isBase64Encoded"] = True
    event["headers"]["content-length"] = str(len(body))
    if token and "authorization" in event["headers"]:
        event["headers"]["authorization"] = f"Bearer {token}"
    return event


@pytest.fixture(scope="module")
def invoke_token(sam_stack) -> str:
    """A token of a user registered and logged in through `sam local invoke`."""
    username = "sam" + uuid.uuid4().hex[:10]
    body = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
    event = fixture("register") | {"body": json.dumps(body)}
    assert sam_stack.sam.invoke("RegisterFunction", event)["statusCode"] == 201
    event = fixture("login") | {"body": json.dumps({"username": username, "password": PASSWORD})}
    login = sam_stack.sam.invoke("LoginFunction", event)
    assert login["statusCode"] == 200, login
    return json.loads(login["body"])["access_token"]


def test_sam_local_invoke_answers_400_to_a_registration_in_latin1(sam_stack):
    username = "sam" + uuid.uuid4().hex[:10]
    body = latin1(json.dumps({"username": username, "email": f"{username}@example.com", "password": PASSWORD + "é"},
                             ensure_ascii=False))
    result = sam_stack.sam.invoke("RegisterFunction", base64_event("register", body))
    status, problem, headers = response_of({"register": result}, "register")
    assert (status, headers["content-type"], problem["status"]) == (400, "application/problem+json", 400), result
    assert "not UTF-8" in problem["detail"], problem
    item = sam_stack.dynamodb.client().get_item(
        TableName=SAM_TABLE, Key={"PK": {"S": f"USERNAME#{username}"}, "SK": {"S": "CREDENTIAL"}}
    )
    assert "Item" not in item, "nobody registered"


def test_sam_local_invoke_answers_400_to_a_transfer_that_is_not_utf8(sam_stack, invoke_token):
    body = json.loads(fixture("transfer")["body"]) | {"memo": "café"}
    event = base64_event("transfer", latin1(json.dumps(body, ensure_ascii=False)), invoke_token)
    result = sam_stack.sam.invoke("TransferFunction", event)
    # Read as UTF-8 the body would have reached the ownership check: 403 (see CHECKS).
    status, problem, headers = response_of({"transfer": result}, "transfer")
    assert (status, headers["content-type"], problem["status"]) == (400, "application/problem+json", 400), result
    assert "not UTF-8" in problem["detail"], problem
# ---------------------------------------------------------------------------------------------
# sam local start-api


@pytest.fixture(scope="module")
def sam_api(sam_stack):
    server = sam_stack.sam.start_api(local_stack.free_port(), log=sam_stack.workdir / "start-api.log")
    try:
        yield server.url
    finally:
        server.stop()


def register_and_login(url: str) -> tuple[str, str]:
    username = "sam" + uuid.uuid4().hex[:10]
    registered = requests.post(f"{url}/api/auth/register", timeout=TIMEOUT,
                               json={"username": username, "email": f"{username}@example.com", "password": PASSWORD})
    assert registered.status_code == 201, registered.text
    login = requests.post(f"{url}/api/auth/login", json={"username": username, "password": PASSWORD}, timeout=TIMEOUT)
    assert login.status_code == 200, login.text
    return username, login.json()["access_token"]


def test_start_api_register_login_me_logout_me(sam_api):
    api = sam_api
    username, token = register_and_login(api)
    auth = {"Authorization": f"Bearer {token}"}
    me = requests.get(f"{api}/api/auth/me", headers=auth, timeout=TIMEOUT)
    assert me.status_code == 200, me.text
    assert me.json()["username"] == username
    logout = requests.post(f"{api}/api/auth/logout", headers=auth, timeout=TIMEOUT)
    assert logout.status_code == 200 and logout.json()["success"] is True
    after = requests.get(f"{api}/api/auth/me", headers=auth, timeout=TIMEOUT)
    assert after.status_code == 401, after.text
    assert after.headers["Content-Type"] == "application/problem+json"
    assert after.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


OTHER_ROUTES = sorted((method, path, binary) for method, path, binary in SERVED if binary not in AUTH_FLOW)


def test_start_api_sends_what_no_route_matches_to_the_default_route(sam_api):
    """`sam local start-api` has the `$default` route too: a path no route has is the function's
    404 in the problem shape."""
    response = requests.get(f"{sam_api}/api/schedulr/jobs", timeout=TIMEOUT)
    assert response.status_code == 404, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == "No route matches this path; GET / lists every route"


@pytest.fixture(scope="module")
def sam_token(sam_api) -> str:
    return register_and_login(sam_api)[1]


@pytest.mark.parametrize("method,path,binary", OTHER_ROUTES, ids=[f"{m} {p}" for m, p, _ in OTHER_ROUTES])
def test_start_api_answers_every_other_route(sam_api, sam_token, method, path, binary):
    """One call of each route outside the auth flow, as a signed-in user, with the body of the
    function's fixture; path parameters get a well-formed id that names nothing."""
    token = sam_token
    url = sam_api + re.sub(r"\{[^/]+?\}", str(uuid.uuid4()), path)
    event = fixture(binary) if (REPO / "events" / f"{binary}.json").exists() else {}
    headers = {"Authorization": f"Bearer {token}"}
    body = event.get("body") if method not in ("GET", "HEAD") else None
    if body is not None:
        headers["Content-Type"] = "application/json"
    response = requests.request(method, url, headers=headers, data=body, timeout=TIMEOUT)
    assert response.status_code < 500, response.text
    if path == "/docs":
        check_docs_assets(sam_api, response)
        return
    assert response.headers["Content-Type"] in ("application/json", "application/problem+json")
    if path == "/":
        check_root(response.status_code, response.json(), response.headers)
    elif path == "/health":
        check_health(response.status_code, response.json(), response.headers)


def check_docs_assets(url: str, page: requests.Response) -> None:
    """The page, and each asset it names with its type and its bytes intact (the icon's come
    base64-encoded from the function, as from API Gateway)."""
    check_docs(page.status_code, page.text, {name.lower(): value for name, value in page.headers.items()})
    types = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8", "png": "image/png"}
    for name in re.findall(r'(?:src|href)="docs/([^"]+)"', page.text):
        asset = requests.get(f"{url}/docs/{name}", timeout=TIMEOUT)
        _, digest, extension = name.rsplit(".", 2)
        assert asset.status_code == 200 and asset.headers["Content-Type"] == types[extension], name
        assert hashlib.sha256(asset.content).hexdigest()[:16] == digest, name


def test_start_api_does_not_pass_on_a_body_that_is_not_utf8(sam_api):
    """Unlike API Gateway, `sam local start-api` builds the event by decoding the body as UTF-8
    and answers 502 itself when that fails; the function never runs (hence the `sam local
    invoke` tests above). docs/local-development.md says so; this fails when a SAM release changes it."""
    response = requests.post(f"{sam_api}/api/auth/register", data=latin1('{"username":"café"}'),
                             headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
    assert response.status_code == 502 and response.json() == {"message": "Internal server error"}, response.text
