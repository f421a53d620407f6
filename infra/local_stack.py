"""The local stack: a DynamoDB-compatible server and every function binary behind
cargo-lambda's Lambda Runtime API emulator, routed as template.yaml routes them: the requests no
route matches go to the template's `$default` function, as API Gateway sends them.

    python infra/local_stack.py run                # what `make run` does
    python infra/local_stack.py with-dynamodb CMD  # CMD runs with TABLE_NAME/DYNAMODB_ENDPOINT set

While it serves, `run` keeps its address, its DynamoDB's and its table in .local/stack.json (the
state file), which fogctl reads when given no --endpoint.

Tests import `DynamoDb` and `Functions` to start their own stack on free ports.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import json
import http.client
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import boto3
import yaml

REPO = Path(__file__).resolve().parent.parent
# Where a running stack says where it is, for fogctl (infra/fogctl: the checkout's .local/stack.json).
STATE_FILE = REPO / ".local" / "stack.json"
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
# Mail (issue 25): the sender, verified on the local server at start, and the frontend whose
# pages the mailed links open (the same dev server).
MAIL_ENV = {"MAIL_FROM": "no-reply@fog-compute.local", "APP_BASE_URL": DEVELOPMENT_ORIGIN}
# Passed through to the functions when set in the caller's environment.
PASSTHROUGH_ENV = (
    "ACCESS_TOKEN_EXPIRE_MINUTES",
    "REFRESH_TOKEN_EXPIRE_DAYS",
    "REFRESH_REUSE_GRACE_SECONDS",
    "REAUTHENTICATION_MINUTES",
    "CORS_ALLOWED_ORIGINS",
    "RATE_LIMIT_AUTH_PER_MIN",
    "RATE_LIMIT_WRITE_PER_MIN",
    "RATE_LIMIT_READ_PER_MIN",
    "RATE_LIMIT_ADMIN_PER_MIN",
    "ADMIN_MFA_REQUIRED",
    "AWS_LAMBDA_LOG_LEVEL",
    "PASSWORD_RESET_TOKEN_MINUTES",
    "EMAIL_VERIFICATION_TOKEN_HOURS",
    "REQUIRE_VERIFIED_EMAIL",
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


# API Gateway's route of the requests no other route matches (an HttpApi event `Path: $default`).
DEFAULT_ROUTE = "$default"


def template_routes(template: dict) -> set[tuple[str, str, str]]:
    """(method, path, binary) for every HttpApi event in the template (the `$default` route's:
    ("ANY", "$default", binary))."""
    routes = set()
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        binary = resource["Metadata"]["BuildProperties"]["Binary"]
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                routes.add((event["Properties"]["Method"].upper(), event["Properties"]["Path"], binary))
    return routes


def served_routes(template: dict) -> set[tuple[str, str, str]]:
    """The template's routes that serve a path of their own: all but the `$default` one."""
    return {route for route in template_routes(template) if route[1] != DEFAULT_ROUTE}


def default_route_function(template: dict) -> str:
    """The binary of the template's `$default` route: what answers every unmatched request."""
    [binary] = [binary for _, path, binary in template_routes(template) if path == DEFAULT_ROUTE]
    return binary


def route_pattern(path: str) -> re.Pattern:
    """A route's path as API Gateway matches it: each segment as written, `{name}` any non-empty
    segment."""
    return re.compile("/".join(
        "[^/]+" if re.fullmatch(r"\{[^/}]+\}", segment) else re.escape(segment) for segment in path.split("/")
    ))


def binaries_dir(profile: str = "dev") -> Path:
    """Where cargo puts the workspace's binaries of `profile`: .cargo/config.toml names the host's
    target, so it is target/<host tuple>/<profile dir>."""
    host = next(line.split(": ", 1)[1] for line in subprocess.run(
        ["rustc", "-vV"], capture_output=True, text=True, check=True).stdout.splitlines() if line.startswith("host: "))
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / host / ("debug" if profile == "dev" else profile)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class StackError(Exception):
    """A failure the local stack reports in one line, without a traceback."""


def _wait_for(url: str, timeout: float, accept=lambda status: True, process: subprocess.Popen | None = None) -> None:
    """Until `url` answers with a status `accept`s; fails at once if `process` (the server that
    should answer) exits, since something else may be answering on its port."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise StackError(f"{_command_line(process.args)} exited with status {process.returncode}")
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


# ---------------------------------------------------------------------------------------------
# Stopping on signals, and ports already taken.

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopRequested(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the main thread is, so that it unwinds as Ctrl-C does."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def stop_on_signals() -> None:
    """Ctrl-C, SIGTERM and SIGHUP (a closed terminal, `kill`, a process manager) all unwind the
    stack, and every `finally` stops what it started. The servers run in sessions of their own,
    out of reach of the terminal's signals, so this is what stops them. After the first signal
    the others are ignored, so that the cleanup runs to its end (a server that does not stop
    within 10 s gets SIGKILL).

    Under make (`make run`), SIGTERM also comes when make dies: make passes a SIGTERM of its own
    on to its recipe, but not SIGHUP or SIGINT sent to make alone, and nothing when it is killed,
    which would otherwise leave the stack running without it."""

    def handler(signum: int, _frame) -> None:
        for each in STOP_SIGNALS:
            signal.signal(each, signal.SIG_IGN)
        raise KeyboardInterrupt if signum == signal.SIGINT else StopRequested(signum)

    for each in STOP_SIGNALS:
        signal.signal(each, handler)
    if os.environ.get("MAKELEVEL") and sys.platform.startswith("linux"):
        parent = os.getppid()
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # make died before the request took effect
            raise StopRequested(signal.SIGTERM)


def _command_line(args, limit: int = 100) -> str:
    """A command line for a message, with the repository's paths made relative."""
    words = [str(arg) for arg in (args if isinstance(args, (list, tuple)) else [args])]
    text = " ".join(os.path.relpath(word, REPO) if word.startswith(f"{REPO}/") else word for word in words)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cmdline(pid: int) -> str | None:
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return None
    return _command_line([word.decode(errors="replace") for word in words])


def _process(pid: int) -> str:
    """`pid 1234 (its command line)`, and the local stack that started it, if one did: stopping
    that one stops everything it started."""
    described = f"pid {pid} ({_cmdline(pid)})" if _cmdline(pid) else f"pid {pid}"
    with contextlib.suppress(OSError, ValueError, IndexError):
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        parent_cmdline = _cmdline(parent) or ""
        if "local_stack.py" in parent_cmdline or "sam_local.py" in parent_cmdline:
            described += f", started by pid {parent} ({parent_cmdline})"
    return described


def _listening_pids(port: int) -> list[int]:
    """The processes with a socket listening on TCP `port`: the socket's inode from
    /proc/net/tcp{,6}, then the process holding that inode among /proc/*/fd (other users'
    processes are not readable), else what `ss -ltnp` says."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(f"socket:[{fields[9]}]")
    pids = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) in inodes for fd in fd_dir.iterdir()):
                pids.append(int(fd_dir.parent.name))
    if not pids and shutil.which("ss"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            listing = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, timeout=5)
            pids = sorted({int(pid) for pid in re.findall(r"pid=(\d+)", listing.stdout)})
    return pids


def port_problem(port: int, host: str = "127.0.0.1") -> str | None:
    """None when a server can listen on `host`:`port`; otherwise why not, as the end of a sentence
    about the port: `in use by pid 1234 (.venv/bin/python infra/dynamodb_server.py ...)`."""
    with socket.socket() as probe:
        # As the servers themselves bind: a port left in TIME_WAIT is free, a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            return None
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                return f"cannot be listened on ({error.strerror})"
    pids = _listening_pids(port)
    return "in use by " + (", ".join(_process(pid) for pid in pids) if pids else "a process this user cannot see")


def check_ports_free(ports: list[tuple[int, str, str]], host: str = "127.0.0.1") -> None:
    """Raises StackError naming, in one line, every port of (port, what, option) that a server
    cannot listen on at `host` (or at the fourth element of the entry), and what holds it."""
    taken = []
    for port, what, option, *at in ports:
        problem = port_problem(port, at[0] if at else host)
        if problem:
            taken.append((port, what, option, problem))
    if not taken:
        return
    problems = "; ".join(f"port {port} ({what}) is {problem}" for port, what, _, problem in taken)
    options = " and ".join(option for _, _, option, _ in taken)
    advice = "stop it, or choose another port" if len(taken) == 1 else "stop them, or choose other ports"
    raise StackError(f"{problems}: {advice} ({options})")


# ---------------------------------------------------------------------------------------------
# The servers.


class DynamoDb:
    """The single-threaded moto server, with the project's table; it serves SES v2 too, with the
    local sender (MAIL_FROM) verified from the start.

    `host` is the address it listens on: loopback by default; the Docker bridge's gateway address
    when functions in containers must reach it (`sam local`)."""

    def __init__(self, port: int, host: str = "127.0.0.1", log: Path | None = None):
        self.host, self.port = host, port
        self.endpoint = f"http://{'127.0.0.1' if host in ('0.0.0.0', '127.0.0.1') else host}:{port}"
        self._log = open(log, "ab") if log else subprocess.DEVNULL
        self.process = None
        try:
            self.process = subprocess.Popen(
                [sys.executable, str(REPO / "infra" / "dynamodb_server.py"), "--host", host, "--port", str(port)],
                stdout=self._log,
                stderr=self._log,
                start_new_session=True,
            )
            _wait_for(f"{self.endpoint}/moto-api/", timeout=30, process=self.process)
            self.verify_sender(MAIL_ENV["MAIL_FROM"])
        except BaseException:  # a signal, a timeout, or the server exiting (its port taken)
            self.stop()
            raise

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

    def verify_sender(self, address: str) -> None:
        """SES v2 on the same server: the sender exists, as SES needs it verified."""
        boto3.client(
            "sesv2",
            endpoint_url=self.endpoint,
            region_name=LOCAL_AWS_ENV["AWS_REGION"],
            aws_access_key_id="local",
            aws_secret_access_key="local",
        ).create_email_identity(EmailIdentity=address)

    def sent_mail(self) -> list[dict]:
        """Every mail the server was sent, oldest first: each with `destinations`, `subject`
        and `body` (moto's record)."""
        with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=10) as answer:
            return json.load(answer).get("ses", {}).get("Message", [])

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)


def mail_link(body: str) -> str | None:
    """The link a mail carries (its token included)."""
    found = re.search(r"https?://\S+\?token=[A-Za-z0-9_-]+", body)
    return found.group(0) if found else None


class MailPrinter:
    """Prints each mail the local server is sent (to, subject, link) on the console, so that a
    developer can click through a reset or a verification without a mail server."""

    def __init__(self, dynamodb: DynamoDb, interval: float = 1.0):
        self._dynamodb, self._interval = dynamodb, interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mail-printer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        printed = 0
        while not self._stopped.wait(self._interval):
            try:
                messages = self._dynamodb.sent_mail()
            except (OSError, ValueError):
                continue
            for message in messages[printed:]:
                to = ", ".join(message.get("destinations", {}).get("ToAddresses", []))
                body = message.get("body", "")
                print(f"\nMail to {to}: {message.get('subject')}\n  {mail_link(str(body)) or '(no link)'}", flush=True)
            printed = max(printed, len(messages))

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)


# Headers that belong to one connection, not to the request or response passed on (RFC 9110,
# section 7.6.1); `expect` is answered here, `content-length` recomputed.
_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "expect", "content-length",
}


class Router:
    """What API Gateway does in front of the functions, on `port`: a request that a route of the
    template matches goes to cargo-lambda's emulator (on `upstream_port`) as sent, to be routed
    by the Cargo.toml router; any other goes to the `$default` route's function, through the
    emulator's `/lambda-url/<function>` prefix, which hands the function the path as sent. The
    emulator's router has no fallback: left to itself, it answers an unmatched request with its
    own 404 listing the project's binaries."""

    def __init__(self, port: int, upstream_port: int, template: dict):
        self.upstream_port = upstream_port
        self.default_function = default_route_function(template)
        self.routes = [(method, route_pattern(path)) for method, path, _ in served_routes(template)]
        # The emulator's connections still waiting for an answer; closed by `stop`, as a client
        # that went away leaves its request in flight, and the emulator waits for in-flight
        # requests before it stops.
        self._upstream: set[http.client.HTTPConnection] = set()
        self._upstream_lock = threading.Lock()
        router = self

        class Handler(_ForwardingHandler):
            forward_to = router

        self.server = _RouterServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._serve, name="router", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        # A stop signal must reach the main thread, which stops the stack: taken by this thread
        # (or a request's, which inherit its mask) it would leave the main thread waiting for
        # cargo-lambda for good.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        self.server.serve_forever()

    def target(self, method: str, request_target: str) -> str:
        """Where the emulator is asked: the request as sent when a route matches it, else the
        default route's function with the same path and query string."""
        path = request_target.partition("?")[0]
        if any(method == route_method and pattern.fullmatch(path) for route_method, pattern in self.routes):
            return request_target
        return f"/lambda-url/{self.default_function}{request_target}"

    def connect(self) -> http.client.HTTPConnection:
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port)
        with self._upstream_lock:
            self._upstream.add(upstream)
        return upstream

    def release(self, upstream: http.client.HTTPConnection) -> None:
        upstream.close()
        with self._upstream_lock:
            self._upstream.discard(upstream)

    def stop(self) -> None:
        """Takes no more requests and drops those in flight (before the emulator stops)."""
        self.server.shutdown()
        self.server.server_close()
        with self._upstream_lock:
            in_flight = list(self._upstream)
        for upstream in in_flight:
            if upstream.sock is not None:
                with contextlib.suppress(OSError):
                    upstream.sock.shutdown(socket.SHUT_RDWR)


class _RouterServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that went away before its answer (a probe that timed out) is no error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _ForwardingHandler(BaseHTTPRequestHandler):
    """Passes each request on to the emulator and its answer back, whatever the method."""

    protocol_version = "HTTP/1.1"
    # The headers and the body go out in separate writes: with Nagle's algorithm and the client's
    # delayed ACK, the body would wait about 40 ms.
    disable_nagle_algorithm = True
    forward_to: Router

    def __getattr__(self, name: str):
        if name.startswith("do_"):  # every method, the ones http.server has no handler for too
            return self._forward
        raise AttributeError(name)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
        """Silent: the functions log every request themselves."""

    def _body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailer fields, up to the blank line
                pass
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        return self.rfile.read(int(length)) if length else None

    def _forward(self) -> None:
        body = self._body()
        upstream = self.forward_to.connect()
        try:
            upstream.putrequest(self.command, self.forward_to.target(self.command, self.path),
                                skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    upstream.putheader(name, value)
            if body is not None:
                upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body)
            answer = upstream.getresponse()
            payload = answer.read()
        except OSError as error:
            payload = f"the functions' emulator did not answer: {error}\n".encode()
            self.send_response_only(502)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        else:
            self.send_response_only(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
        finally:
            self.forward_to.release(upstream)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


class Functions:
    """`cargo lambda watch` serving every function binary, behind the `Router` on `port`."""

    def __init__(self, port: int, env: dict[str, str], log: Path | None = None, reload: bool = False):
        self.url = f"http://127.0.0.1:{port}"
        emulator_port = free_port()
        self._env_dir = tempfile.TemporaryDirectory(prefix="fog-functions-")
        env_file = Path(self._env_dir.name) / "functions.env"
        env_file.touch(mode=0o600)
        env_file.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
        command = [
            "cargo", "lambda", "watch", "--quiet",
            "--invoke-address", "127.0.0.1", "--invoke-port", str(emulator_port),
            "--env-file", str(env_file), "--concurrency", "4",
            # The functions answer CORS themselves, for the configured origins only.
            "--disable-cors",
        ]
        if not reload:
            command.append("--ignore-changes")
        self._log = open(log, "ab") if log else None
        self.process = None
        self.router = None
        try:
            self.router = Router(port, emulator_port, load_template())
            self.process = subprocess.Popen(
                command,
                cwd=REPO,
                env={**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"},
                stdout=self._log,
                stderr=subprocess.STDOUT if self._log else None,
                start_new_session=True,
            )
            # The first request of each function starts it; the root answers without DynamoDB.
            _wait_for(f"{self.url}/", timeout=600, accept=lambda status: status == 200, process=self.process)
        except BaseException:  # a signal, a timeout, or cargo lambda exiting (its port taken)
            self.stop()
            raise

    def stop(self) -> None:
        if self.router is not None:
            self.router.stop()
        if self.process is not None:
            _stop(self.process)
        self._env_dir.cleanup()


def function_env(dynamodb: DynamoDb, table: str, **overrides: str) -> dict[str, str]:
    """The functions' environment: a fresh random JWT secret and MFA key, administrators not
    held to a second factor (the template's default holds them), the caller's settings from
    PASSTHROUGH_ENV (ADMIN_MFA_REQUIRED=true among them), then `overrides`."""
    env = {
        "TABLE_NAME": table,
        "DYNAMODB_ENDPOINT": dynamodb.endpoint,
        "JWT_SECRET": secrets.token_urlsafe(48),
        "MFA_KEY": secrets.token_urlsafe(48),
        "ADMIN_MFA_REQUIRED": "false",
        "CORS_ALLOWED_ORIGINS": DEVELOPMENT_ORIGIN,
        **MAIL_ENV,
        **LOCAL_AWS_ENV,
    }
    env.update({name: os.environ[name] for name in PASSTHROUGH_ENV if os.environ.get(name)})
    env.update(overrides)
    return env


@contextlib.contextmanager
def stack_state(path: Path, api: str, dynamodb: DynamoDb, table: str) -> Iterator[None]:
    """The state file while the stack runs: its pid, the API's URL, the DynamoDB endpoint and the
    table. The newest stack's wins; on stop it is removed, unless a later stack has rewritten it."""
    state = {"pid": os.getpid(), "api": api, "dynamodb_endpoint": dynamodb.endpoint, "table": table}
    path.parent.mkdir(parents=True, exist_ok=True)
    written = path.with_name(f".{path.name}.{os.getpid()}")
    written.write_text(json.dumps(state, indent=2) + "\n")
    written.replace(path)
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()


@contextlib.contextmanager
def _dynamodb(port: int, table: str) -> Iterator[DynamoDb]:
    dynamodb = DynamoDb(port)
    try:
        dynamodb.create_table(table)
        yield dynamodb
    finally:
        dynamodb.stop()


def run(args: argparse.Namespace) -> None:
    # A stack left running (killed before this script stopped its servers on signals, say) still
    # holds them: say so rather than talk to it.
    check_ports_free([
        (args.port, "the functions", "--port"),
        (args.dynamodb_port, "the local DynamoDB", "--dynamodb-port"),
    ])
    api = f"http://127.0.0.1:{args.port}"
    with _dynamodb(args.dynamodb_port, args.table) as dynamodb, stack_state(args.state_file, api, dynamodb, args.table):
        print(f"Local DynamoDB on {dynamodb.endpoint}, table {args.table}", flush=True)
        print("Starting the functions (the first start compiles them)...", flush=True)
        functions = Functions(args.port, function_env(dynamodb, args.table), reload=True)
        mail = MailPrinter(dynamodb)
        try:
            print(
                f"\nFog Compute API on {functions.url}\n\n"
                f"  curl -s {functions.url}/health\n"
                f"  curl -s -X POST {functions.url}/api/auth/register -H 'Content-Type: application/json' \\\n"
                "       -d '{\"username\":\"alice\",\"email\":\"alice@example.com\",\"password\":\"Fog-Compute-2024\"}'\n"
                f"  cargo run -q -p fogctl -- promote alice   # finds this stack through {_command_line(args.state_file)}\n\n"
                "Ctrl-C (or SIGTERM, SIGHUP) stops everything.",
                flush=True,
            )
            functions.process.wait()
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM or SIGHUP (StopRequested)
            pass
        finally:
            mail.stop()
            functions.stop()


def with_dynamodb(args: argparse.Namespace) -> int:
    port = free_port()
    with _dynamodb(port, args.table) as dynamodb:
        env = {**os.environ, **LOCAL_AWS_ENV, **MAIL_ENV, "TABLE_NAME": args.table, "DYNAMODB_ENDPOINT": dynamodb.endpoint}
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        return subprocess.call(command, env=env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="action", required=True)
    run_parser = commands.add_parser("run", help="serve the API on --port until Ctrl-C")
    run_parser.add_argument("--port", type=int, default=3000)
    run_parser.add_argument("--dynamodb-port", type=int, default=8000)
    run_parser.add_argument("--table", default="fog-compute-local")
    run_parser.add_argument("--state-file", type=Path, default=STATE_FILE,
                            help="where the running stack says where it is, for fogctl (default: %(default)s)")
    with_parser = commands.add_parser("with-dynamodb", help="run a command against a fresh local table")
    with_parser.add_argument("--table", default="fog-compute-test")
    with_parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    stop_on_signals()
    try:
        if args.action == "run":
            run(args)
            return 0
        return with_dynamodb(args)
    except StackError as error:
        print(f"local_stack: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:  # during start-up; whatever had started is stopped by now
        if args.action == "run":
            return 0
        return 128 + (stop.signum if isinstance(stop, StopRequested) else signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
