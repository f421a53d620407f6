"""API keys end to end (issue 14), through the real binaries and fogctl: create, use, list, get,
revoke; the secret shown once; expired, tampered, unknown and other users' keys; scopes;
admin and account routes refusing keys; a deactivated owner; the per-key hourly limit; creating a
key only within minutes of a sign-in (second security review, item 6)."""

import base64
import hashlib
import hmac
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import STRONG_PASSWORD, assert_problem, invalid_fields

KEYS = "/api/keys"
JOBS = "/api/scheduler/jobs"
SECRET = re.compile(r"^fog_sk_[A-Za-z0-9_-]{97}$")


def create(api, token, **body) -> dict:
    response = api.post(KEYS, token=token, json={"name": "agent", **body})
    assert response.status_code == 201, response.text
    return response.json()


def with_key(api, method, path, secret, **kwargs):
    headers = {"X-API-Key": secret, **kwargs.pop("headers", {})}
    return api.request(method, path, headers=headers, **kwargs)


def assert_invalid_key(response):
    body = assert_problem(response, 401)
    assert body["detail"] == "Invalid API key"
    assert response.headers["WWW-Authenticate"] == "ApiKey"


def key_item(api, key_id) -> dict:
    return api.dynamodb.client().get_item(
        TableName=api.table, Key={"PK": {"S": f"APIKEY#{key_id}"}, "SK": {"S": "APIKEY"}}, ConsistentRead=True,
    )["Item"]


def test_create_use_list_get_revoke(api):
    _, token = api.new_user()
    created = create(api, token, name="deploy bot", expires_in_days=7, rate_limit=100, scopes=["jobs:write", "jobs:read"])
    secret = created.pop("secret_key")
    assert SECRET.match(secret)
    assert created["prefix"] == secret[:12]
    assert created["scopes"] == ["jobs:read", "jobs:write"] and created["rate_limit"] == 100
    assert created["is_active"] is True and created["last_used"] is None and created["expires_at"]
    assert set(created) == {"id", "name", "prefix", "scopes", "rate_limit", "is_active", "created_at", "last_used", "expires_at"}
    key_id = created["id"]
    assert key_item(api, key_id)["secret_hash"]["S"] == hashlib.sha256(secret.encode()).hexdigest()

    submitted = with_key(api, "POST", JOBS, secret, json={"name": "render", "sla_tier": "gold", "cpu_required": 1, "memory_required": 1})
    assert submitted.status_code == 201, submitted.text
    listed_jobs = with_key(api, "GET", JOBS, secret)
    assert listed_jobs.status_code == 200
    assert [job["id"] for job in listed_jobs.json()["jobs"]] == [submitted.json()["jobId"]]
    assert listed_jobs.headers["X-RateLimit-Limit"] == "100"
    assert int(listed_jobs.headers["X-RateLimit-Remaining"]) == 98

    listed = api.get(KEYS, token=token)
    fetched = api.get(f"{KEYS}/{key_id}", token=token)
    for answer in (listed, fetched):
        assert answer.status_code == 200
        assert secret[7:] not in answer.text and "secret" not in answer.text
    assert listed.json()["total"] == 1
    assert fetched.json()["id"] == key_id and fetched.json()["last_used"] is not None

    revoked = api.delete(f"{KEYS}/{key_id}", token=token)
    assert revoked.status_code == 200
    assert revoked.json()["success"] is True and revoked.json()["key_id"] == key_id
    assert_invalid_key(with_key(api, "GET", JOBS, secret))
    assert api.get(KEYS, token=token).json() == {"keys": [], "total": 0}
    inactive = api.get(KEYS, token=token, params={"include_inactive": "true"}).json()
    assert [key["is_active"] for key in inactive["keys"]] == [False]


def test_bad_fields_are_listed_and_store_nothing(api):
    _, token = api.new_user()
    body = {"name": " ", "expires_in_days": 3651, "rate_limit": 0, "scopes": ["jobs:read", "root"]}
    assert invalid_fields(api.post(KEYS, token=token, json=body)) == {"name", "expires_in_days", "rate_limit", "scopes"}
    assert invalid_fields(api.post(KEYS, token=token, json={"name": "x", "scopes": []})) == {"scopes"}
    assert api.get(KEYS, token=token, params={"include_inactive": "true"}).json()["total"] == 0
    assert_problem(api.get(f"{KEYS}/not-an-id", token=token), 400)
    assert_problem(api.delete(f"{KEYS}/not-an-id", token=token), 400)


def test_keys_of_other_users_unknown_tampered_and_expired_keys(api):
    _, owner = api.new_user()
    _, other = api.new_user()
    key = create(api, owner, scopes=["jobs:read"])
    secret = key["secret_key"]
    assert_problem(api.get(f"{KEYS}/{key['id']}", token=other), 404)
    assert_problem(api.delete(f"{KEYS}/{key['id']}", token=other), 404)
    assert with_key(api, "GET", JOBS, secret).status_code == 200

    flipped = "A" if secret[-1] != "A" else "B"
    for bad in [secret[:-1] + flipped, secret[:50] + secret[51:], "fog_sk_" + "A" * 97, "garbage"]:
        assert_invalid_key(with_key(api, "GET", JOBS, bad))
    other_secret = create(api, other, scopes=["jobs:read"])["secret_key"]
    own_job = api.post(JOBS, token=owner, json={"name": "mine", "sla_tier": "gold", "cpu_required": 1, "memory_required": 1}).json()["jobId"]
    assert_problem(with_key(api, "GET", f"{JOBS}/{own_job}", other_secret), 404)

    # An expiry forced into the past: the key stops working.
    short = create(api, owner, expires_in_days=1, scopes=["jobs:read"])
    assert with_key(api, "GET", JOBS, short["secret_key"]).status_code == 200
    api.dynamodb.client().update_item(
        TableName=api.table, Key={"PK": {"S": f"APIKEY#{short['id']}"}, "SK": {"S": "APIKEY"}},
        UpdateExpression="SET valid_until = :past", ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    assert_invalid_key(with_key(api, "GET", JOBS, short["secret_key"]))
    assert api.get(f"{KEYS}/{short['id']}", token=owner).json()["is_active"] is False


def test_scopes_and_routes_that_refuse_keys(api):
    _, token = api.new_user()
    wallet = api.wallet(token)
    reader = create(api, token, scopes=["jobs:read"])["secret_key"]
    refused = with_key(api, "POST", JOBS, reader, json={"name": "r", "sla_tier": "gold", "cpu_required": 1, "memory_required": 1})
    assert assert_problem(refused, 403)["detail"] == "This API key lacks the scope jobs:write"
    assert assert_problem(with_key(api, "GET", "/api/tokenomics/balance", reader), 403)["detail"].endswith("tokens:read")
    assert with_key(api, "GET", "/api/auth/me", reader).json()["wallet_address"] == wallet
    assert with_key(api, "GET", "/api/tokenomics/proposals", reader).status_code == 200
    everything = create(api, token)["secret_key"]
    for method, path, body in [
        ("POST", "/api/tokenomics/mint", {"address": wallet, "amount": "1"}),
        ("POST", "/api/auth/logout", None),
        ("POST", KEYS, {"name": "child"}),
        ("GET", KEYS, None),
    ]:
        response = with_key(api, method, path, everything, json=body)
        assert assert_problem(response, 403)["detail"] == "API keys are not accepted on this route; use a bearer token"
    both = with_key(api, "GET", JOBS, everything, headers={"Authorization": f"Bearer {token}"})
    assert assert_problem(both, 400)["detail"] == "Send either a bearer token or an API key, not both"
    assert api.get(KEYS, token=token).json()["total"] == 2


def test_fogctl_deactivate_lists_and_revokes_keys(api):
    username, token = api.new_user()
    key = create(api, token, name="operator view", scopes=["jobs:read"])
    secret = key["secret_key"]
    assert api.fogctl("deactivate", username).returncode == 0
    assert_invalid_key(with_key(api, "GET", JOBS, secret))
    assert api.fogctl("activate", username).returncode == 0
    assert with_key(api, "GET", JOBS, secret).status_code == 200

    listed = api.fogctl("keys", "list", username.upper())
    assert listed.returncode == 0, listed.stderr
    assert key["id"] in listed.stdout and key["prefix"] in listed.stdout and "active" in listed.stdout
    assert "operator view" in listed.stdout and "jobs:read" in listed.stdout
    assert secret[12:] not in listed.stdout + listed.stderr
    revoked = api.fogctl("keys", "revoke", username, key["id"])
    assert revoked.returncode == 0, revoked.stderr
    assert_invalid_key(with_key(api, "GET", JOBS, secret))
    assert "revoked" in api.fogctl("keys", "list", username).stdout
    _, other = api.new_user()
    others = create(api, other)
    refused = api.fogctl("keys", "revoke", username, others["id"])
    assert refused.returncode != 0 and "has no API key" in refused.stderr
    assert with_key(api, "GET", JOBS, others["secret_key"]).status_code == 200
    assert api.fogctl("keys", "list", "nobody" + username).returncode != 0


def test_the_26th_active_key_is_409(api):
    _, token = api.new_user()
    for n in range(25):
        create(api, token, name=f"k{n}")
    assert_problem(api.post(KEYS, token=token, json={"name": "k25"}), 409)
    assert api.get(KEYS, token=token).json()["total"] == 25


def test_the_key_budget_admits_exactly_its_limit_under_concurrency(api):
    """The route limits of the session's stack are high: only the key's own budget binds."""
    _, token = api.new_user()
    secret = create(api, token, rate_limit=10, scopes=["jobs:read", "devices:read"])["secret_key"]
    if time.time() % 3600 > 3600 - 40:
        time.sleep(3600 - time.time() % 3600 + 1)
    paths = [JOBS, "/api/idle-compute/devices", "/api/auth/me"]
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda n: with_key(api, "GET", paths[n % 3], secret), range(50)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 10 + [429] * 40, statuses
    refused = next(response for response in responses if response.status_code == 429)
    body = assert_problem(refused, 429)
    assert body["error"] == "Rate limit exceeded" and int(refused.headers["Retry-After"]) == body["retry_after"]
    assert all(response.headers["X-RateLimit-Limit"] == "10" for response in responses)


def resigned(api, access_token: str, **claims) -> str:
    """The token with `claims` changed, signed with the functions' own key: what the token would
    be had it been issued with them (here: an older sign-in)."""
    header, payload, _ = access_token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    encode = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()  # noqa: E731
    payload = encode(json.dumps({**decoded, **claims}).encode())
    signature = hmac.new(api.env["JWT_SECRET"].encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{encode(signature.digest())}"


def test_creating_a_key_needs_a_recent_sign_in_which_reauthenticate_renews(api):
    """Second security review, item 6: a stolen access token alone no longer makes itself a key."""
    _, token = api.new_user()
    signed_in = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==="))["auth_time"]
    stale = resigned(api, token, auth_time=signed_in - 11 * 60)
    assert api.get("/api/auth/me", token=stale).status_code == 200, "a valid token"
    refused = api.post(KEYS, token=stale, json={"name": "agent"})
    body = assert_problem(refused, 403)
    assert refused.headers["WWW-Authenticate"] == 'Bearer error="insufficient_user_authentication", max_age=600'
    assert "POST /api/auth/reauthenticate" in body["detail"]

    wrong = api.post("/api/auth/reauthenticate", token=stale, json={"password": "Not-The-Password-1"})
    assert assert_problem(wrong, 401)["detail"] == "Incorrect password"
    answer = api.post("/api/auth/reauthenticate", token=stale, json={"password": STRONG_PASSWORD})
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"access_token", "token_type", "expires_in"}
    fresh = answer.json()["access_token"]
    claims = json.loads(base64.urlsafe_b64decode(fresh.split(".")[1] + "==="))
    stale_claims = json.loads(base64.urlsafe_b64decode(stale.split(".")[1] + "==="))
    assert claims["sid"] == stale_claims["sid"] and claims["auth_time"] >= signed_in
    assert api.post(KEYS, token=fresh, json={"name": "agent"}).status_code == 201
    # A key cannot reauthenticate, nor make another key.
    secret = create(api, fresh)["secret_key"]
    as_key = with_key(api, "POST", "/api/auth/reauthenticate", secret, json={"password": STRONG_PASSWORD})
    assert_problem(as_key, 403)
