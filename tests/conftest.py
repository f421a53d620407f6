"""End-to-end harness: a local DynamoDB and every function binary behind cargo-lambda's
Lambda Runtime API emulator, on free ports, for the whole test session.

And the SAM-local harness (tests/sam/): the image (infra/sam_image.py), a host build laid out as
`sam build` does, a local DynamoDB the containers reach, and a generated env.json. Without a
Docker engine those tests are skipped with the reason; under CI=true that is a failure."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import struct
import re
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
# Every e2e request comes from 127.0.0.1; limits this high leave the limiter to its own tests.
UNLIMITED = {f"RATE_LIMIT_{category}_PER_MIN": "100000" for category in ("AUTH", "WRITE", "READ", "ADMIN")}
STRONG_PASSWORD = "Fog-Compute-2024"
# The docs page's answers' Content-Security-Policy (every other answer's: default-src 'none').
DOCS_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# The browser features every JSON answer turns off, and the docs page's (its copy buttons write to
# the clipboard).
JSON_PERMISSIONS = (
    "accelerometer=(), autoplay=(), camera=(), clipboard-read=(), clipboard-write=(), display-capture=(), "
    "encrypted-media=(), fullscreen=(), geolocation=(), gyroscope=(), hid=(), idle-detection=(), magnetometer=(), "
    "microphone=(), midi=(), payment=(), picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), "
    "serial=(), sync-xhr=(), usb=(), web-share=(), xr-spatial-tracking=()"
)
DOCS_PAGE_PERMISSIONS = JSON_PERMISSIONS.replace("clipboard-write=()", "clipboard-write=(self)")
TIMEOUT = 60


class Api:
    """Request helpers against the running stack."""

    def __init__(self, url: str, dynamodb: local_stack.DynamoDb, table: str, env: dict[str, str]):
        self.url = url
        self.dynamodb = dynamodb
        self.table = table
        self.env = env

    def request(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        kwargs.setdefault("timeout", TIMEOUT)
        return requests.request(method, self.url + path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

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

    def wallet(self, token: str) -> str:
        """The address of the token's user's wallet."""
        return self.get("/api/auth/me", token=token).json()["wallet_address"]

    def new_admin(self) -> str:
        """A fresh administrator's access token."""
        username, token = self.new_user()
        result = self.fogctl("promote", username)
        assert result.returncode == 0, result.stderr
        return token

    def mailed_token(self, address: str, page: str) -> str:
        """The token of the newest link to `page` (`reset-password`, `verify-email`) mailed to
        `address`, read from the local server, which keeps what the functions sent (issue 25)."""
        bodies = [str(message["body"]) for message in self.dynamodb.sent_mail()
                  if address in message["destinations"]["ToAddresses"] and f"/{page}?token=" in str(message["body"])]
        assert bodies, f"no {page} mail to {address}"
        return re.search(rf"/{page}\?token=([A-Za-z0-9_-]+)", bodies[-1]).group(1)

    def fogctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["cargo", "run", "-q", "-p", "fogctl", "--", "--table", self.table,
             "--endpoint", self.dynamodb.endpoint, *args],
            cwd=REPO, capture_output=True, text=True, timeout=300,
        )


def totp(secret: str, at: float) -> str:
    """The RFC 6238 code of a base32 `secret` at `at` (epoch s), as an authenticator app shows it:
    HMAC-SHA-1 of the 30-second step, 6 digits, with the standard library alone."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{number % 1_000_000:06d}"


def unique_username() -> str:
    return "u" + uuid.uuid4().hex[:12]


def assert_problem(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def invalid_fields(response: requests.Response) -> set[str]:
    """The fields a 422 lists."""
    return {error["field"] for error in assert_problem(response, 422)["errors"]}


@pytest.fixture(scope="session")
def admin(api) -> str:
    """An administrator's access token, for minting."""
    return api.new_admin()


@pytest.fixture(scope="session")
def dynamodb() -> local_stack.DynamoDb:
    server = local_stack.DynamoDb(local_stack.free_port())
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def running_stack(dynamodb: local_stack.DynamoDb, table: str, log: Path | None = None, **settings: str):
    """The functions on a free port against their own table of the shared DynamoDB server;
    their output goes to `log` when given."""
    dynamodb.create_table(table)
    env = local_stack.function_env(dynamodb, table, **settings)
    functions = local_stack.Functions(local_stack.free_port(), env, log=log)
    try:
        yield Api(functions.url, dynamodb, table, env)
    finally:
        functions.stop()


@pytest.fixture(scope="session")
def api(dynamodb) -> Api:
    with running_stack(dynamodb, TABLE, **UNLIMITED) as stack:
        yield stack


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
