"""The rate limiter through the real binaries, with the limits the environment sets."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import assert_problem, running_stack, unique_username

AUTH_LIMIT = 10


@pytest.fixture(scope="module")
def limited(dynamodb):
    settings = {"RATE_LIMIT_AUTH_PER_MIN": str(AUTH_LIMIT), "RATE_LIMIT_READ_PER_MIN": "100000"}
    with running_stack(dynamodb, "fog-compute-e2e-limited", **settings) as stack:
        yield stack


def start_of_a_window():
    elapsed = time.time() % 60
    if elapsed > 40:
        time.sleep(60 - elapsed + 0.2)


def test_concurrent_auth_requests_admit_exactly_the_limit_and_say_so(limited):
    start_of_a_window()
    def attempt(_):
        return limited.post("/api/auth/login", json={"username": unique_username(), "password": "Wrong-Password-1"})

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(attempt, range(25)))
    statuses = [response.status_code for response in responses]
    assert sorted(statuses) == [401] * AUTH_LIMIT + [429] * (25 - AUTH_LIMIT), statuses
    for response in responses:
        assert response.headers["X-RateLimit-Limit"] == str(AUTH_LIMIT)
        assert int(response.headers["X-RateLimit-Remaining"]) >= 0
        assert "X-RateLimit-Reset" in response.headers
    refused = [response for response in responses if response.status_code == 429]
    body = assert_problem(refused[0], 429)
    assert body["error"] == "Rate limit exceeded"
    assert body["retry_after"] >= 1
    assert refused[0].headers["Retry-After"] == str(body["retry_after"])


def test_health_is_exempt(limited):
    for _ in range(3):
        response = limited.get("/health")
        assert response.status_code == 200
        assert "X-RateLimit-Limit" not in response.headers


@pytest.fixture(scope="module")
def default_auth_limit(dynamodb):
    """A stack of its own (own counters) with the default auth limit."""
    with running_stack(dynamodb, "fog-compute-e2e-old-backend", RATE_LIMIT_AUTH_PER_MIN=str(AUTH_LIMIT)) as stack:
        yield stack


def test_the_old_backends_security_script_passes(default_auth_limit):
    """The old backend's own security test script, in one minute from one IP: each auth route
    has a bucket of its own, so the brute force on login leaves registration's answers alone."""
    api = default_auth_limit
    start_of_a_window()
    username = unique_username()
    assert api.register(username).status_code == 201
    assert api.login(username).status_code == 200
    failed = [api.login(username, "Wrong-Password-1") for _ in range(15)]
    statuses = [response.status_code for response in failed]
    # Five wrong passwords, then the username's lockout (423), until the IP's limit (429).
    assert statuses[:5] == [401] * 5, statuses
    assert 429 in statuses[:11], statuses
    first_429 = statuses.index(429)
    assert statuses[5:first_429] == [423] * (first_429 - 5), statuses
    assert statuses[first_429:] == [429] * (15 - first_429), statuses
    locked = assert_problem(failed[5], 423)
    assert locked["detail"] == "Account locked due to too many failed attempts. Try again in 15 minutes."
    assert failed[5].headers["Retry-After"] == str(locked["retry_after"])
    for weak in ("weak", "password"):
        assert_problem(api.register(password=weak), 422)
    duplicate = assert_problem(api.register(username), 400)
    assert duplicate["detail"] == "Username already registered"

