"""End-to-end harness: a local DynamoDB and every function binary behind cargo-lambda's
Lambda Runtime API emulator, on free ports, for the whole test session.

And the SAM-local harness (tests/sam/): the image (infra/sam_image.py), a host build laid out as
`sam build` does, a local DynamoDB the containers reach, and a generated env.json. Without a
Docker engine those tests are skipped with the reason; under CI=true that is a failure."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "infra"))

import local_stack  # noqa: E402
import sam_image  # noqa: E402
import sam_local  # noqa: E402

TABLE = "fog-compute-e2e"
STRONG_PASSWORD = "Fog-Compute-2024"
TIMEOUT = 60


class Api:
    """Request helpers against the running stack."""

    def __init__(self, url: str, dynamodb: local_stack.DynamoDb):
        self.url = url
        self.dynamodb = dynamodb
        self.http = requests.Session()

    def request(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, self.url + path, headers=headers, timeout=TIMEOUT, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def register(self, username: str | None = None, email: str | None = None,
                 password: str = STRONG_PASSWORD, **extra) -> requests.Response:
        username = username or unique_username()
        email = email or f"{username}@example.com"
        return self.post("/api/auth/register", json={"username": username, "email": email, "password": password, **extra})

    def login(self, username: str, password: str = STRONG_PASSWORD) -> requests.Response:
        return self.post("/api/auth/login", json={"username": username, "password": password})

    def new_user(self) -> tuple[str, str]:
        """A registered user's name and a fresh access token."""
        username = unique_username()
        assert self.register(username).status_code == 201
        response = self.login(username)
        assert response.status_code == 200, response.text
        return username, response.json()["access_token"]

    def fogctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["cargo", "run", "-q", "-p", "fogctl", "--", "--table", TABLE,
             "--endpoint", self.dynamodb.endpoint, *args],
            cwd=REPO, capture_output=True, text=True, timeout=300,
        )


def unique_username() -> str:
    return "u" + uuid.uuid4().hex[:12]


def assert_problem(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    return body


@pytest.fixture(scope="session")
def api() -> Api:
    dynamodb = local_stack.DynamoDb(local_stack.free_port())
    functions = None
    try:
        dynamodb.create_table(TABLE)
        functions = local_stack.Functions(local_stack.free_port(), local_stack.function_env(dynamodb, TABLE))
        yield Api(functions.url, dynamodb)
    finally:
        if functions:
            functions.stop()
        dynamodb.stop()


SAM_TABLE = "fog-compute-sam"


class SamStack:
    def __init__(self, sam: sam_local.Sam, dynamodb: local_stack.DynamoDb, workdir: Path):
        self.sam, self.dynamodb, self.workdir = sam, dynamodb, workdir


@pytest.fixture(scope="session")
def sam_stack(tmp_path_factory) -> SamStack:
    reason = sam_local.docker_check()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"SAM-local tests need a Docker engine under CI=true: {reason}", pytrace=False)
        pytest.skip(f"SAM-local tests skipped: {reason}")
    workdir = tmp_path_factory.mktemp("sam")
    started = time.monotonic()
    sam_image.make_image(sam_image.lambda_architecture())
    template = sam_local.build(workdir / "build")
    print(f"\nSAM image and build ready in {time.monotonic() - started:.1f}s", file=sys.stderr)
    with sam_local.dynamodb_for_containers(SAM_TABLE) as (dynamodb, endpoint):
        env_vars = sam_local.env_json(workdir / "env.json", endpoint, SAM_TABLE)
        yield SamStack(sam_local.Sam(template, env_vars, dynamodb.endpoint), dynamodb, workdir)
