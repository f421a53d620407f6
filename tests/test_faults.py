"""DynamoDB failing under the real binaries: every endpoint answers 503 with Retry-After well
within the function's 10-second timeout, and the same warm processes recover when it returns."""

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import UNLIMITED, assert_problem, local_stack, running_stack
from fault_proxy import FaultProxy

# Within the 10 s function timeout: two sequential SDK operations give up after 3 s each.
ANSWER_WITHIN_SECONDS = 9.5
# These answer from the function alone: the rate limiter fails open for the first two, and the
# docs page is not rate limited at all (its asset route gets a name it does not have: 404).
NO_DYNAMODB = {("GET", "/"): 200, ("GET", "/openapi.json"): 200, ("GET", "/docs"): 200, ("GET", "/docs/x"): 404}


@pytest.fixture(scope="module")
def proxy(dynamodb):
    fault_proxy = FaultProxy(dynamodb.port)
    yield fault_proxy
    fault_proxy.close()


@pytest.fixture(scope="module")
def faulty(dynamodb, proxy):
    with running_stack(dynamodb, "fog-compute-e2e-faults", DYNAMODB_ENDPOINT=proxy.url, **UNLIMITED) as stack:
        yield stack


def every_route():
    for method, path, _ in sorted(local_stack.served_routes(local_stack.load_template())):
        yield method, re.sub(r"\{[^}]+\}", "x", path)


def call(api, method, path, token):
    return api.request(method, path, token=token, json={}, timeout=ANSWER_WITHIN_SECONDS)


def assert_unavailable(response, method, path):
    if (method, path) in NO_DYNAMODB:
        assert response.status_code == NO_DYNAMODB[method, path], (method, path, response.text)
        return
    assert_problem(response, 503)
    assert int(response.headers["Retry-After"]) >= 1, (method, path)


def test_every_endpoint_answers_503_while_dynamodb_is_down_and_recovers(faulty, proxy):
    _, token = faulty.new_user()
    # Start every function first: the emulator starts a function on its first request, which
    # is no part of what the answer time bounds.
    for method, path in every_route():
        faulty.request(method, path, token=None if path == "/api/auth/logout" else token, json={})
    proxy.refuse()
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            calls = {route: pool.submit(call, faulty, *route, token) for route in every_route()}
            for (method, path), answer in calls.items():
                assert_unavailable(answer.result(), method, path)
    finally:
        proxy.up()
    assert faulty.get("/api/auth/me", token=token).status_code == 200
    assert faulty.get("/health").status_code == 200


def test_a_hanging_dynamodb_times_out_into_503_and_recovers(faulty, proxy):
    _, token = faulty.new_user()
    routes = [("GET", "/api/auth/me"), ("GET", "/api/scheduler/jobs"), ("POST", "/api/auth/login")]
    for method, path in routes:
        faulty.request(method, path, token=token, json={})
    proxy.hang()
    try:
        for method, path in routes:
            assert_unavailable(call(faulty, method, path, token), method, path)
    finally:
        proxy.up()
    assert faulty.get("/api/auth/me", token=token).status_code == 200
