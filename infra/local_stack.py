"""The local stack: a DynamoDB-compatible server and every function binary behind
cargo-lambda's Lambda Runtime API emulator, routed as template.yaml routes them.

    python infra/local_stack.py run                # what `make run` does
    python infra/local_stack.py with-dynamodb CMD  # CMD runs with TABLE_NAME/DYNAMODB_ENDPOINT set

Tests import `DynamoDb` and `Functions` to start their own stack on free ports.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import boto3
import yaml

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
# A local server needs credentials in the request signature, never real ones.
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
# The browser origin the local stack answers CORS for (a frontend's dev server).
DEVELOPMENT_ORIGIN = "http://localhost:5173"
# Passed through to the functions when set in the caller's environment.
PASSTHROUGH_ENV = (
    "ACCESS_TOKEN_EXPIRE_MINUTES",
    "CORS_ALLOWED_ORIGINS",
    "RATE_LIMIT_AUTH_PER_MIN",
    "RATE_LIMIT_WRITE_PER_MIN",
    "RATE_LIMIT_READ_PER_MIN",
    "RATE_LIMIT_ADMIN_PER_MIN",
    "AWS_LAMBDA_LOG_LEVEL",
)


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, ...) as plain values."""


def _cfn_tag(loader: yaml.Loader, _suffix: str, node: yaml.Node) -> object:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template() -> dict:
    return yaml.load((REPO / "template.yaml").read_text(), Loader=_CfnLoader)


def table_definition(template: dict) -> tuple[dict, str]:
    """CreateTable arguments and the TTL attribute, from the template's table resource."""
    properties = template["Resources"]["Table"]["Properties"]
    arguments = {
        "BillingMode": properties["BillingMode"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
    }
    if "GlobalSecondaryIndexes" in properties:
        arguments["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    return arguments, properties["TimeToLiveSpecification"]["AttributeName"]


def template_functions(template: dict) -> dict[str, str]:
    """Logical id -> binary name, for every function the template declares, in template order."""
    return {
        logical_id: resource["Metadata"]["BuildProperties"]["Binary"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def template_routes(template: dict) -> set[tuple[str, str, str]]:
    """(method, path, binary) for every HttpApi event in the template."""
    routes = set()
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        binary = resource["Metadata"]["BuildProperties"]["Binary"]
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                routes.add((event["Properties"]["Method"].upper(), event["Properties"]["Path"], binary))
    return routes


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _wait_for(url: str, timeout: float, accept=lambda status: True) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                if accept(response.status):
                    return
        except urllib.error.HTTPError as error:
            if accept(error.code):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")
        time.sleep(0.2)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class DynamoDb:
    """The single-threaded moto server, with the project's table.

    `host` is the address it listens on: loopback by default; the Docker bridge's gateway address
    when functions in containers must reach it (`sam local`)."""

    def __init__(self, port: int, host: str = "127.0.0.1", log: Path | None = None):
        self.host, self.port = host, port
        self.endpoint = f"http://{'127.0.0.1' if host in ('0.0.0.0', '127.0.0.1') else host}:{port}"
        self._log = open(log, "ab") if log else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "infra" / "dynamodb_server.py"), "--host", host, "--port", str(port)],
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )
        _wait_for(f"{self.endpoint}/moto-api/", timeout=30)

    def client(self):
        return boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name=LOCAL_AWS_ENV["AWS_REGION"],
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def create_table(self, name: str) -> None:
        arguments, ttl_attribute = table_definition(load_template())
        client = self.client()
        client.create_table(TableName=name, **arguments)
        client.get_waiter("table_exists").wait(TableName=name)
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute}
        )

    def stop(self) -> None:
        _stop(self.process)


class Functions:
    """`cargo lambda watch` serving every function binary on one port."""

    def __init__(self, port: int, env: dict[str, str], log: Path | None = None, reload: bool = False):
        self.url = f"http://127.0.0.1:{port}"
        self._env_dir = tempfile.TemporaryDirectory(prefix="fog-functions-")
        env_file = Path(self._env_dir.name) / "functions.env"
        env_file.touch(mode=0o600)
        env_file.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
        command = [
            "cargo", "lambda", "watch", "--quiet",
            "--invoke-address", "127.0.0.1", "--invoke-port", str(port),
            "--env-file", str(env_file), "--concurrency", "4",
            # The functions answer CORS themselves, for the configured origins only.
            "--disable-cors",
        ]
        if not reload:
            command.append("--ignore-changes")
        self._log = open(log, "ab") if log else None
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            env={**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"},
            stdout=self._log,
            stderr=subprocess.STDOUT if self._log else None,
            start_new_session=True,
        )
        # The first request of each function starts it; the root answers without DynamoDB.
        _wait_for(f"{self.url}/", timeout=600, accept=lambda status: status == 200)

    def stop(self) -> None:
        _stop(self.process)
        self._env_dir.cleanup()


def function_env(dynamodb: DynamoDb, table: str, **overrides: str) -> dict[str, str]:
    """The functions' environment: a fresh random JWT secret, the caller's settings from
    PASSTHROUGH_ENV, then `overrides`."""
    env = {
        "TABLE_NAME": table,
        "DYNAMODB_ENDPOINT": dynamodb.endpoint,
        "JWT_SECRET": secrets.token_urlsafe(48),
        "CORS_ALLOWED_ORIGINS": DEVELOPMENT_ORIGIN,
        **LOCAL_AWS_ENV,
    }
    env.update({name: os.environ[name] for name in PASSTHROUGH_ENV if os.environ.get(name)})
    env.update(overrides)
    return env


@contextlib.contextmanager
def _dynamodb(port: int, table: str) -> Iterator[DynamoDb]:
    dynamodb = DynamoDb(port)
    try:
        dynamodb.create_table(table)
        yield dynamodb
    finally:
        dynamodb.stop()


def run(args: argparse.Namespace) -> None:
    with _dynamodb(args.dynamodb_port, args.table) as dynamodb:
        print(f"Local DynamoDB on {dynamodb.endpoint}, table {args.table}", flush=True)
        print("Starting the functions (the first start compiles them)...", flush=True)
        functions = Functions(args.port, function_env(dynamodb, args.table), reload=True)
        try:
            print(
                f"\nFog Compute API on {functions.url}\n\n"
                f"  curl -s {functions.url}/health\n"
                f"  curl -s -X POST {functions.url}/api/auth/register -H 'Content-Type: application/json' \\\n"
                "       -d '{\"username\":\"alice\",\"email\":\"alice@example.com\",\"password\":\"Fog-Compute-2024\"}'\n\n"
                "Ctrl-C stops everything.",
                flush=True,
            )
            functions.process.wait()
        except KeyboardInterrupt:
            pass
        finally:
            functions.stop()


def with_dynamodb(args: argparse.Namespace) -> int:
    port = free_port()
    with _dynamodb(port, args.table) as dynamodb:
        env = {**os.environ, **LOCAL_AWS_ENV, "TABLE_NAME": args.table, "DYNAMODB_ENDPOINT": dynamodb.endpoint}
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        return subprocess.call(command, env=env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="action", required=True)
    run_parser = commands.add_parser("run", help="serve the API on --port until Ctrl-C")
    run_parser.add_argument("--port", type=int, default=3000)
    run_parser.add_argument("--dynamodb-port", type=int, default=8000)
    run_parser.add_argument("--table", default="fog-compute-local")
    with_parser = commands.add_parser("with-dynamodb", help="run a command against a fresh local table")
    with_parser.add_argument("--table", default="fog-compute-test")
    with_parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.action == "run":
        run(args)
        return 0
    return with_dynamodb(args)


if __name__ == "__main__":
    sys.exit(main())
