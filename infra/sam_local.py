"""SAM local: the functions in the Lambda containers SAM users run, against a local DynamoDB.

    python infra/sam_local.py start-api           # what `make sam-local` does: http://127.0.0.1:3000
    python infra/sam_local.py build [--build-dir DIR]
    python infra/sam_local.py env-json --endpoint URL [--table NAME] [--out env.json]
    python infra/sam_local.py event BINARY        # print a new events/ fixture for a function
    python infra/sam_local.py docker-check        # exit 0 when a Docker engine answers, else say why

Building. `sam build` runs `cargo lambda build --release` once per function: minutes per
function on a small machine. For local runs the same binaries come from one
`cargo build --workspace` for the host (debug by default, the build `make run` and the tests
already use; SAM_LOCAL_PROFILE=release for an optimised one), laid out as `sam build` lays out
its build directory: `<build dir>/<LogicalId>/bootstrap` and `<build dir>/template.yaml` with
each function's CodeUri pointing there. Every `sam local` command is then given
`--parameter-overrides Architecture=<host>`, so the host-built binaries run without CPU emulation,
while deploys keep the template's default (arm64).

The image SAM runs the functions in is made by infra/sam_image.py; `--skip-pull-image` keeps
SAM from asking a registry. The local DynamoDB listens on the Docker bridge's gateway address,
and the functions reach it as host.docker.internal (`--add-host host.docker.internal:host-gateway`).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import platform
import re
import secrets
import shutil
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))

import local_stack  # noqa: E402
import sam_image  # noqa: E402
from local_stack import LOCAL_AWS_ENV, REPO, VENV_BIN, DynamoDb  # noqa: E402

EVENTS = REPO / "events"
ENV_TEMPLATE = REPO / "env.template.json"
DEFAULT_BUILD_DIR = REPO / ".aws-sam" / "build"
CONTAINER_HOST = "host.docker.internal"
TOKEN_PLACEHOLDER = "Bearer REPLACE-WITH-AN-ACCESS-TOKEN"
# For `sam` itself: no telemetry, and local credentials and region, which SAM also passes on to
# the containers (botocore reads the region from AWS_DEFAULT_REGION, not AWS_REGION).
SAM_ENV = {"SAM_CLI_TELEMETRY": "0", **LOCAL_AWS_ENV, "AWS_DEFAULT_REGION": LOCAL_AWS_ENV["AWS_REGION"]}


def docker_check() -> str | None:
    """None when a Docker engine answers, else why not, in a few words."""
    if shutil.which("docker") is None:
        return "no docker command on PATH"
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        return "the Docker engine did not answer `docker info` within 30 s"
    if result.returncode != 0 or not result.stdout.strip():
        detail = (result.stderr.strip().splitlines() or ["no answer"])[-1]
        return f"no Docker engine answers `docker info`: {detail}"
    return None


def bridge_gateway() -> str:
    """The host's address on Docker's default bridge, where containers reach the host.

    On Linux that is where the local DynamoDB listens (not 0.0.0.0, which would expose it to the
    machine's network). Docker Desktop (macOS, Windows) forwards host.docker.internal to the
    host's loopback, so there loopback is enough."""
    if platform.system() != "Linux":
        return "127.0.0.1"
    inspected = subprocess.run(
        ["docker", "network", "inspect", "bridge", "--format", "{{json .IPAM.Config}}"],
        capture_output=True, text=True, check=True,
    )
    for config in json.loads(inspected.stdout) or []:
        if config.get("Gateway"):
            return config["Gateway"]
        if config.get("Subnet") and ":" not in config["Subnet"]:
            # Docker gives the bridge the subnet's first address when no gateway is configured.
            return str(next(ipaddress.ip_network(config["Subnet"]).hosts()))
    raise RuntimeError("cannot find the address of Docker's default bridge")


# ---------------------------------------------------------------------------------------------
# Build: one cargo build, laid out as `sam build` lays out its build directory.


def cargo_build(binaries: list[str], profile: str) -> Path:
    command = ["cargo", "build", "--quiet", "--workspace", "--profile", profile]
    for binary in binaries:
        command += ["--bin", binary]
    subprocess.run(command, cwd=REPO, check=True)
    return local_stack.binaries_dir(profile)


def _link_or_copy(source: Path, destination: Path) -> None:
    destination.unlink(missing_ok=True)
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def build(build_dir: Path = DEFAULT_BUILD_DIR, profile: str | None = None) -> Path:
    """Builds every function the template declares for the host; returns the build template."""
    from samcli.yamlhelper import yaml_dump, yaml_parse  # keeps !Ref, !Sub, ... as SAM reads them

    profile = profile or os.environ.get("SAM_LOCAL_PROFILE", "dev")
    functions = local_stack.template_functions(local_stack.load_template())
    binaries_dir = cargo_build(sorted(set(functions.values())), profile)
    template = yaml_parse((REPO / "template.yaml").read_text())
    build_dir.mkdir(parents=True, exist_ok=True)
    for stale in build_dir.iterdir():
        if stale.is_dir() and stale.name not in functions:
            shutil.rmtree(stale)
    for logical_id, binary in functions.items():
        (build_dir / logical_id).mkdir(exist_ok=True)
        _link_or_copy(binaries_dir / binary, build_dir / logical_id / "bootstrap")
        resource = template["Resources"][logical_id]
        resource["Properties"]["CodeUri"] = logical_id
        resource.setdefault("Metadata", {})["SamResourceId"] = logical_id
    built = build_dir / "template.yaml"
    built.write_text(yaml_dump(template))
    return built


# ---------------------------------------------------------------------------------------------
# env.json for `sam local ... --env-vars`: made from env.template.json at run time, with a fresh
# JWT secret and MFA key, never committed.


def env_json(path: Path, endpoint: str, table: str) -> Path:
    values = {
        "DYNAMODB_ENDPOINT": endpoint,
        "TABLE_NAME": table,
        "JWT_SECRET": secrets.token_urlsafe(48),
        "MFA_KEY": secrets.token_urlsafe(48),
    }
    document = json.loads(ENV_TEMPLATE.read_text())
    for variables in document.values():
        for name, value in variables.items():
            variables[name] = string.Template(value).substitute(values)
    for name in local_stack.PASSTHROUGH_ENV:
        if os.environ.get(name):
            document["Parameters"][name] = os.environ[name]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)  # it holds the secret
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


# ---------------------------------------------------------------------------------------------
# Running sam.


class Sam:
    """Runs `sam local` commands against a build template, an env.json and a local AWS endpoint.

    `aws_endpoint` receives every AWS API call SAM itself makes (AWS_ENDPOINT_URL): `sam local`
    asks STS for the caller's account before each run, which must not leave the machine; the
    local moto server answers it."""

    def __init__(self, template: Path, env_vars: Path, aws_endpoint: str):
        self.template, self.env_vars, self.aws_endpoint = template, env_vars, aws_endpoint

    def common_args(self, relative: bool = False) -> list[str]:
        template, env_vars = self.template, self.env_vars
        if relative:
            template, env_vars = template.relative_to(REPO), env_vars.relative_to(REPO)
        return [
            "--template", str(template),
            "--env-vars", str(env_vars),
            # One string: the template's parameters without defaults, and the host's architecture.
            "--parameter-overrides",
            f"Architecture={sam_image.lambda_architecture()} MailFrom={local_stack.MAIL_ENV['MAIL_FROM']} "
            f"AppBaseUrl={local_stack.MAIL_ENV['APP_BASE_URL']}",
            "--skip-pull-image",
            "--add-host", f"{CONTAINER_HOST}:host-gateway",
        ]

    def env(self) -> dict[str, str]:
        path = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
        return {**os.environ, **SAM_ENV, "AWS_ENDPOINT_URL": self.aws_endpoint, "PATH": path}

    def invoke(self, logical_id: str, event: dict, timeout: float = 300) -> dict:
        """`sam local invoke` of one function with one event; returns the function's response."""
        with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="fog-event-") as event_file:
            json.dump(event, event_file)
            event_file.flush()
            result = subprocess.run(
                [str(VENV_BIN / "sam"), "local", "invoke", logical_id, "--event", event_file.name,
                 *self.common_args()],
                capture_output=True, text=True, timeout=timeout, env=self.env(), cwd=REPO,
            )
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        if result.returncode != 0 or not lines:
            raise RuntimeError(f"sam local invoke {logical_id} failed ({result.returncode}):\n{result.stderr[-4000:]}")
        return json.loads(lines[-1])

    def start_api(self, port: int, log: Path | None = None, warm: str = "LAZY", timeout: float = 300) -> SamServer:
        command = [str(VENV_BIN / "sam"), "local", "start-api", "--host", "127.0.0.1", "--port", str(port),
                   *self.common_args()]
        if warm:
            command += ["--warm-containers", warm]
        # Up once the root route answers: its function runs in a container.
        return SamServer(command, self.env(), port, log, timeout, up=lambda status: status == 200)

    def start_lambda(self, port: int, log: Path | None = None, timeout: float = 300) -> SamServer:
        """`sam local start-lambda`: the Lambda Invoke API for every function of the template,
        each in its own container from its first invocation on (one SAM process for many
        invocations, where `invoke` starts SAM for each)."""
        command = [str(VENV_BIN / "sam"), "local", "start-lambda", "--host", "127.0.0.1", "--port", str(port),
                   *self.common_args(), "--warm-containers", "LAZY"]
        # Up once it answers at all: it has no route at /.
        return SamServer(command, self.env(), port, log, timeout, up=lambda status: True)


class SamServer:
    """A running `sam local start-api` or `start-lambda`, once `/` answers with a status `up`
    accepts."""

    def __init__(self, command: list[str], env: dict[str, str], port: int, log: Path | None, timeout: float,
                 up: Callable[[int], bool]):
        self.url = f"http://127.0.0.1:{port}"
        self._log = open(log, "ab") if log else None
        self.process = subprocess.Popen(
            command, cwd=REPO, env=env, start_new_session=True,
            stdout=self._log, stderr=subprocess.STDOUT if self._log else None,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{' '.join(command[1:3])} exited with {self.process.returncode}")
                try:
                    with urllib.request.urlopen(f"{self.url}/", timeout=timeout) as response:
                        status = response.status
                except urllib.error.HTTPError as error:
                    status = error.code
                except OSError:
                    status = None
                if status is not None and up(status):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{' '.join(command[1:3])} did not answer on {self.url} within {timeout:.0f}s")
                time.sleep(0.5)
        except BaseException:  # a signal too: SAM runs in a session of its own
            self.stop()
            raise

    def invoke(self, logical_id: str, event: dict, timeout: float = 300) -> dict:
        """One invocation through start-lambda's Invoke API; returns the function's response."""
        request = urllib.request.Request(
            f"{self.url}/2015-03-31/functions/{logical_id}/invocations",
            data=json.dumps(event).encode(), method="POST",
        )
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = answer.read()
            if answer.headers.get("X-Amz-Function-Error"):
                raise RuntimeError(f"{logical_id} failed in start-lambda: {body[-4000:]!r}")
        return json.loads(body)

    def stop(self) -> None:
        # SAM removes the containers it started when it gets SIGTERM.
        local_stack._stop(self.process)
        if self._log:
            self._log.close()


@contextlib.contextmanager
def dynamodb_for_containers(table: str, port: int | None = None) -> Iterator[tuple[DynamoDb, str]]:
    """A local DynamoDB with the project's table, and its endpoint as the containers see it."""
    host = bridge_gateway()
    dynamodb = DynamoDb(port or local_stack.free_port(host), host=host)
    try:
        dynamodb.create_table(table)
        yield dynamodb, f"http://{CONTAINER_HOST}:{dynamodb.port}"
    finally:
        dynamodb.stop()


def prepare(build_dir: Path = DEFAULT_BUILD_DIR) -> Path:
    """Everything `sam local` needs but the database: the image and the build directory."""
    reason = docker_check()
    if reason:
        sys.exit(f"sam_local: {reason}")
    sam_image.make_image(sam_image.lambda_architecture())
    return build(build_dir)


# ---------------------------------------------------------------------------------------------
# events/ fixtures


def new_event(binary: str) -> dict:
    """An API Gateway HTTP API (payload 2.0) event for the function's first route."""
    template = local_stack.load_template()
    routes = sorted((method, path) for method, path, name in local_stack.template_routes(template) if name == binary)
    if not routes:
        sys.exit(f"sam_local: template.yaml routes nothing to {binary}")
    method, route_path = routes[0]
    # Path parameters ({id}) get a sample value in the path and in pathParameters.
    parameters = {name: "3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b" for name in re.findall(r"\{([^/}]+)\}", route_path)}
    path = re.sub(r"\{([^/}]+)\}", lambda match: parameters[match.group(1)], route_path)
    body = None if method in ("GET", "DELETE") else json.dumps({})
    headers = {
        "accept": "application/json",
        "accept-encoding": "gzip, deflate, br",
        "host": "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com",
        "user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "x-amzn-trace-id": "Root=1-6745a0f0-3c1e5f2a9b8d7c6e5f4a3b2c",
        "x-forwarded-for": "203.0.113.42",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if body is not None:
        headers["content-type"] = "application/json"
        headers["content-length"] = str(len(body))
    return {
        "version": "2.0",
        "routeKey": f"{method} {route_path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": dict(sorted(headers.items())),
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "a1b2c3d4e5",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.42",
                "userAgent": headers["user-agent"],
            },
            "requestId": "Bx7kTj0sDoEEJ2w=",
            "routeKey": f"{method} {route_path}",
            "stage": "$default",
            "time": "27/Nov/2026:10:15:42 +0000",
            "timeEpoch": 1795774542000,
        },
        **({"pathParameters": parameters} if parameters else {}),
        **({"body": body} if body is not None else {}),
        "isBase64Encoded": False,
    }


# ---------------------------------------------------------------------------------------------


def start_api(args: argparse.Namespace) -> None:
    local_stack.stop_on_signals()  # SIGTERM and SIGHUP clean up as Ctrl-C does
    reason = docker_check()
    if reason:
        sys.exit(f"sam_local: {reason}")
    local_stack.check_ports_free([
        (args.port, "sam local start-api", "--port"),
        (args.dynamodb_port, "the local DynamoDB", "--dynamodb-port", bridge_gateway()),
    ])
    template = prepare()
    with (
        dynamodb_for_containers(args.table, args.dynamodb_port) as (dynamodb, endpoint),
        local_stack.stack_state(args.state_file, f"http://127.0.0.1:{args.port}", dynamodb, args.table),
    ):
        sam = Sam(template, env_json(REPO / "env.json", endpoint, args.table), dynamodb.endpoint)
        print(f"Local DynamoDB on {dynamodb.endpoint} (containers: {endpoint}), table {args.table}", flush=True)
        print(f"Starting sam local start-api on http://127.0.0.1:{args.port}", flush=True)
        api = sam.start_api(args.port)
        try:
            print(
                f"\nFog Compute API (SAM local) on {api.url}\n\n"
                f"  curl -s {api.url}/health\n"
                f"  AWS_ENDPOINT_URL={dynamodb.endpoint} AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 \\\n"
                f"    .venv/bin/sam local invoke HealthFunction -e events/health.json "
                f"{' '.join(sam.common_args(relative=True))}\n\n"
                "Ctrl-C (or SIGTERM, SIGHUP) stops everything.",
                flush=True,
            )
            api.process.wait()
        except KeyboardInterrupt:
            pass
        finally:
            api.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="action", required=True)
    start = commands.add_parser("start-api", help="sam local start-api with a local DynamoDB until Ctrl-C")
    start.add_argument("--port", type=int, default=3000)
    start.add_argument("--dynamodb-port", type=int, default=8000)
    start.add_argument("--table", default="fog-compute-local")
    start.add_argument("--state-file", type=Path, default=local_stack.STATE_FILE,
                       help="where the running stack says where it is, for fogctl (default: %(default)s)")
    build_parser = commands.add_parser("build", help="build the functions for the host into a SAM build dir")
    build_parser.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD_DIR)
    env_parser = commands.add_parser("env-json", help="write an env.json for --env-vars with a fresh JWT secret")
    env_parser.add_argument("--endpoint", required=True, help="the DynamoDB endpoint as the containers see it")
    env_parser.add_argument("--table", default="fog-compute-local")
    env_parser.add_argument("--out", type=Path, default=REPO / "env.json")
    event_parser = commands.add_parser("event", help="print an events/ fixture for a function binary")
    event_parser.add_argument("binary")
    commands.add_parser("docker-check", help="exit 0 when a Docker engine answers, else print why not")
    args = parser.parse_args()
    if args.action == "start-api":
        try:
            start_api(args)
        except local_stack.StackError as error:
            print(f"sam_local: {error}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:  # during start-up; whatever had started is stopped by now
            return 0
    elif args.action == "build":
        print(build(args.build_dir))
    elif args.action == "env-json":
        print(env_json(args.out, args.endpoint, args.table))
    elif args.action == "event":
        print(json.dumps(new_event(args.binary), indent=2))
    elif args.action == "docker-check":
        reason = docker_check()
        if reason:
            print(reason)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
