"""Schemathesis against the running stack with openapi.yaml: no 5xx, no undocumented status
code, no response that breaks its schema. Rate limits are raised for the run (conftest)."""

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO, UNLIMITED, running_stack

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def run_schemathesis(api, token: str, *selection: str, credential: str | None = None) -> subprocess.CompletedProcess:
    # One worker: with two, Hypothesis describing a filter lambda of a query or path parameter
    # runs ast.parse in both threads at once, which CPython 3.11.7 can fail with "SystemError: AST
    # constructor recursion depth mismatch" (gh-106905). The local stack's two cores serve the
    # requests about as fast either way.
    return subprocess.run(
        [str(SCHEMATHESIS), "--config-file", str(REPO / "tests" / "schemathesis.toml"), "run",
         str(REPO / "openapi.yaml"), "--url", api.url, "--header", credential or f"Authorization: Bearer {token}",
         "--workers", "1", "--seed", "1", *selection],
        capture_output=True, text=True, timeout=900, cwd=REPO / "tests",
        env={**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks", "PYTHONPATH": str(REPO / "tests")},
    )


def test_every_operation_conforms(api):
    _, token = api.new_user()
    # Logout would revoke the run's token; it has a run of its own below.
    result = run_schemathesis(api, token, "--exclude-path", "/api/auth/logout")
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout or " passed" in result.stdout


def test_logout_conforms(api):
    _, token = api.new_user()
    result = run_schemathesis(api, token, "--include-path", "/api/auth/logout")
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-2000:]


# The operations that take an API key (openapi.yaml lists the `ApiKey` scheme on them).
KEY_OPERATIONS = r"^/api/(auth/me|scheduler/.*|idle-compute/.*|tokenomics/(balance|transfer|stake|unstake|proposals|vote))$"


def test_every_operation_that_takes_a_key_conforms_with_one(api):
    """The same checks, authenticated by an API key holding every scope instead of a token."""
    _, token = api.new_user()
    key = api.post("/api/keys", token=token, json={"name": "schemathesis", "rate_limit": 100000})
    assert key.status_code == 201, key.text
    result = run_schemathesis(api, token, "--include-path-regex", KEY_OPERATIONS, "--max-examples", "10",
                              credential=f"X-API-Key: {key.json()['secret_key']}")
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout or " passed" in result.stdout
    assert re.search(r"Operations:\s+14 selected", result.stdout), result.stdout[:3000]
    used = api.get(f"/api/keys/{key.json()['id']}", token=token).json()
    assert used["last_used"] is not None, "the run was authenticated by the key"



def test_the_admin_operations_conform_as_an_administrator(dynamodb):
    """The run above meets the admin operations as a non-administrator (403); here they answer
    an administrator: pages of users, unknown users (404), bad ids and queries (422), and the
    stateful phase acting on the users the list answers. On a table of its own, whose only user
    is the run's administrator (whom it cannot deactivate or demote: 409), so that it acts on
    no other test's users."""
    with running_stack(dynamodb, "fog-compute-e2e-admin-conformance", **UNLIMITED) as api:
        token = api.new_admin()
        result = run_schemathesis(api, token, "--include-path-regex", "^/api/admin/")
        assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-2000:]
        assert re.search(r"Operations:\s+3 selected", result.stdout), result.stdout[:3000]
        listed = api.get("/api/admin/users", token=token).json()["users"]
        assert [(user["is_active"], user["is_admin"]) for user in listed] == [(True, True)]
