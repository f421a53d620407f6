"""Schemathesis against the running stack with openapi.yaml: no 5xx, no undocumented status
code, no response that breaks its schema. Rate limits are raised for the run (conftest)."""

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def run_schemathesis(api, token: str, *selection: str) -> subprocess.CompletedProcess:
    # One worker: with two, Hypothesis describing a filter lambda of a query or path parameter
    # runs ast.parse in both threads at once, which CPython 3.11.7 can fail with "SystemError: AST
    # constructor recursion depth mismatch" (gh-106905). The local stack's two cores serve the
    # requests about as fast either way.
    return subprocess.run(
        [str(SCHEMATHESIS), "--config-file", str(REPO / "tests" / "schemathesis.toml"), "run",
         str(REPO / "openapi.yaml"), "--url", api.url, "--header", f"Authorization: Bearer {token}",
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
