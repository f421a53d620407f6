"""`make run` (infra/local_stack.py run) as a developer or a process manager meets it: stopped by a
signal, it stops every server it started; started beside something holding its ports, it says
what, in one line; while it runs, fogctl finds it through its state file. Free ports and state
files of their own throughout, so these run beside a developer's `make run`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import REPO, local_stack

SCRIPT = REPO / "infra" / "local_stack.py"


def stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 on (the command name, field 2, may hold spaces)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


# A process, told apart from a later one that reuses its pid: (pid, start time in clock ticks).
Process = tuple[int, int]


def descendants_of(pid: int) -> set[Process]:
    """The processes below `pid` now."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = stat_fields(int(stat.parent.name))
        if fields:
            parents.setdefault(int(fields[1]), []).append((int(stat.parent.name), int(fields[19])))
    found, pending = set(), [pid]
    while pending:
        for child in parents.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child[0])
    return found


def alive(process: Process) -> bool:
    """Whether the process still runs (not a zombie, not its pid taken by another process)."""
    fields = stat_fields(process[0])
    return bool(fields) and fields[0] != "Z" and int(fields[19]) == process[1]


def kill(processes: set[Process]) -> None:
    """SIGKILL to these processes, each only if it is still the one the test started."""
    for process in processes:
        if alive(process):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(process[0], signal.SIGKILL)


def command_line(process: Process) -> str:
    try:
        return Path(f"/proc/{process[0]}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(condition, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


class Stack:
    """`local_stack.py run` (or `make run`) in a session of its own, and every process it starts,
    so that the test can end exactly those (by pid) whatever the outcome."""

    def __init__(self, log: Path, via_make: bool = False, table: str = "fog-compute-signals"):
        self.port, self.dynamodb_port = local_stack.free_port(), local_stack.free_port()
        # Where fogctl run in the log's directory looks (not the checkout's, a developer's stack's).
        self.state_file = log.parent / ".local" / "stack.json"
        options = ["--port", str(self.port), "--dynamodb-port", str(self.dynamodb_port), "--table", table,
                   "--state-file", str(self.state_file)]
        if via_make:
            # A make of its own, not a sub-make of the `make test` this may run under.
            env = {name: value for name, value in os.environ.items() if name not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
            command = ["make", "-s", "run", f"RUN_ARGS={' '.join(options)}"]
        else:
            env = dict(os.environ)
            command = [sys.executable, str(SCRIPT), "run", *options]
        self._log = open(log, "wb")
        self.process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.started: set[Process] = set()

    def wait_serving(self, timeout: float = 600) -> None:
        def serving() -> bool:
            assert self.process.poll() is None, f"the stack exited with {self.process.returncode}"
            self.started |= descendants_of(self.process.pid)
            try:
                local_stack._wait_for(f"http://127.0.0.1:{self.port}/", timeout=1, accept=lambda status: status == 200)
                return True
            except (OSError, TimeoutError):
                return False
        assert wait_until(serving, timeout, interval=0.5), "the stack did not start"

    def running(self) -> set[Process]:
        """Every process of the stack now (the top one included)."""
        return {process for process in descendants_of(self.process.pid) if alive(process)}

    def cleanup(self) -> None:
        processes = self.started | self.running()
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        kill(processes)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self._log.close()


def assert_gone(processes: set[Process], *ports: int) -> None:
    assert wait_until(lambda: not any(alive(process) for process in processes), timeout=20), {
        process[0]: command_line(process) for process in processes if alive(process)
    }
    assert not any(listening(port) for port in ports)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stop_signal_stops_the_whole_stack(tmp_path, stop_signal):
    stack = Stack(tmp_path / "run.log")
    try:
        stack.wait_serving()
        servers = stack.running()
        assert listening(stack.port) and listening(stack.dynamodb_port)
        assert len(servers) >= 2, "the DynamoDB server and cargo lambda watch"

        assert stack.state_file.exists()

        stack.process.send_signal(stop_signal)
        stack.process.wait(timeout=30)
        assert_gone(servers, stack.port, stack.dynamodb_port)
        assert not stack.state_file.exists(), "the state file goes with the stack"
        log = (tmp_path / "run.log").read_text(errors="replace")
        assert "Traceback" not in log, log
    finally:
        stack.cleanup()


def fogctl(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """fogctl as an operator runs it in `cwd`, with no TABLE_NAME or DYNAMODB_ENDPOINT in its
    environment: the binary `cargo build --workspace` made (cargo itself, outside the checkout,
    would miss .cargo/config.toml and build everything again)."""
    binary = local_stack.binaries_dir() / "fogctl"
    env = {name: value for name, value in os.environ.items() if name not in ("TABLE_NAME", "DYNAMODB_ENDPOINT")}
    return subprocess.run([str(binary), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_fogctl_finds_the_stack_make_run_started_on_any_ports(tmp_path):
    """Issue 22: fogctl talked to 127.0.0.1:8000 whatever ports `make run` was given."""
    stack = Stack(tmp_path / "run.log", table="fog-compute-fogctl")
    try:
        stack.wait_serving()
        state = json.loads(stack.state_file.read_text())
        assert state == {
            "pid": stack.process.pid, "api": f"http://127.0.0.1:{stack.port}",
            "dynamodb_endpoint": f"http://127.0.0.1:{stack.dynamodb_port}", "table": "fog-compute-fogctl",
        }
        user = {"username": "ada", "email": "ada@example.com", "password": "Fog-Compute-2024"}
        registered = requests.post(f"{state['api']}/api/auth/register", json=user, timeout=300)
        assert registered.status_code == 201, registered.text

        promoted = fogctl(tmp_path, "promote", "ada")
        assert promoted.returncode == 0, promoted.stderr
        assert promoted.stdout.strip() == "ada is now an administrator"
        login = requests.post(f"{state['api']}/api/auth/login", json=user, timeout=300).json()
        me = requests.get(f"{state['api']}/api/auth/me", timeout=300,
                          headers={"Authorization": f"Bearer {login['access_token']}"})
        assert me.json()["is_admin"] is True

        # --endpoint still decides: a server that is not there, and fogctl does not fall back.
        elsewhere = fogctl(tmp_path, "--endpoint", f"http://127.0.0.1:{local_stack.free_port()}", "demote", "ada")
        assert elsewhere.returncode != 0 and "no user named" not in elsewhere.stderr, elsewhere.stderr
        # And --table: the stack's DynamoDB, another table.
        other_table = fogctl(tmp_path, "--table", "fog-compute-other", "demote", "ada")
        assert other_table.returncode != 0, other_table.stdout

        stack.process.send_signal(signal.SIGTERM)
        stack.process.wait(timeout=30)
        gone = fogctl(tmp_path, "demote", "ada")
        assert gone.returncode == 1
        assert gone.stderr.strip().splitlines() == [
            f"fogctl: no local stack is running ({stack.state_file} is missing): start one with `make run`, "
            "or pass --endpoint URL or --aws (see --help)"
        ]
    finally:
        stack.cleanup()


def test_fogctl_help_says_how_it_finds_the_stack(tmp_path):
    result = fogctl(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    assert ".local/stack.json" in result.stdout and "make run" in result.stdout
    assert "--endpoint" in result.stdout and "--aws" in result.stdout


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_make_run_stops_the_stack_when_make_goes(tmp_path, stop_signal):
    """`make run` stopped through make's pid alone (a process manager): make passes a SIGTERM on
    to its recipe; killed, it passes nothing on, and the script gets SIGTERM from the kernel
    when its parent dies (PR_SET_PDEATHSIG, set under make)."""
    stack = Stack(tmp_path / "make-run.log", via_make=True)
    try:
        stack.wait_serving()
        processes = stack.running()
        assert any("local_stack.py" in command_line(process) for process in processes)

        stack.process.send_signal(stop_signal)
        stack.process.wait(timeout=30)
        assert_gone(processes, stack.port, stack.dynamodb_port)
    finally:
        stack.cleanup()


def run_beside(holder_port: int, which: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, int]:
    """`local_stack.py run` with one of its ports already taken; its result, and its other port."""
    other = local_stack.free_port()
    ports = {"functions": ("--port", "--dynamodb-port"), "dynamodb": ("--dynamodb-port", "--port")}[which]
    stack = subprocess.Popen(
        [sys.executable, str(SCRIPT), "run", ports[0], str(holder_port), ports[1], str(other),
         "--table", "fog-compute-taken", "--state-file", str(tmp_path / ".local" / "stack.json")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    started: set[Process] = set()
    try:
        deadline = time.monotonic() + 60
        while stack.poll() is None and time.monotonic() < deadline:
            started |= descendants_of(stack.pid)
            time.sleep(0.1)
        assert stack.poll() is not None, "local_stack.py run neither refused nor stopped within 60 s"
        stdout, stderr = stack.communicate()
        return subprocess.CompletedProcess(stack.args, stack.returncode, stdout, stderr), other
    finally:
        with contextlib.suppress(ProcessLookupError):
            stack.kill()
        kill(started)


def assert_refused_in_one_line(result: subprocess.CompletedProcess, port: int, holder_pid: int, holder_name: str):
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, output
    assert f"port {port}" in lines[0] and f"pid {holder_pid}" in lines[0] and holder_name in lines[0], lines[0]


def test_a_leftover_dynamodb_server_is_named_not_a_traceback(tmp_path):
    """What a stack killed the old way leaves behind: a DynamoDB server with the table."""
    leftover = local_stack.DynamoDb(local_stack.free_port())
    try:
        leftover.create_table("fog-compute-taken")
        result, other = run_beside(leftover.port, "dynamodb", tmp_path)
        assert_refused_in_one_line(result, leftover.port, leftover.process.pid, "dynamodb_server.py")
        assert not listening(other), "nothing was started"
    finally:
        leftover.stop()


def test_a_taken_functions_port_is_named(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result, other = run_beside(port, "functions", tmp_path)
    assert_refused_in_one_line(result, port, os.getpid(), "python")
    assert not listening(other), "nothing was started"


def test_the_emulator_answers_a_body_that_is_not_utf8_itself(api):
    """cargo-lambda's emulator (`make run`) answers a JSON body that is not UTF-8 with its own
    500 before any function runs, where API Gateway would hand the function the body
    base64-encoded: the functions' 400 for it is tested in-process (shared/tests/handlers/body_encoding.rs)
    and through `sam local invoke` (tests/sam/). docs/local-development.md says so; this fails if a cargo-lambda
    release changes it."""
    response = api.post("/api/auth/register", data='{"username":"café"}'.encode("latin-1"),
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 500, response.text
    assert response.headers["Content-Type"].startswith("text/plain"), "not the functions' problem+json"
    assert "x-content-type-options" not in response.headers, "no function answered (they all set it)"


def test_make_run_verifies_the_sender_and_prints_every_mail(dynamodb, capsys):
    """The local server has MAIL_FROM verified from the start (a mail from another sender is
    refused, as SES refuses an unverified one), and `make run`'s printer shows each sent mail:
    to, subject and link (issue 25)."""
    ses = local_stack.boto3.client(
        "sesv2", endpoint_url=dynamodb.endpoint, region_name="us-east-1",
        aws_access_key_id="local", aws_secret_access_key="local",
    )
    link = "http://localhost:5173/reset-password?token=" + "Ab_-" * 10 + "xyz"
    recipient = f"{time.time_ns()}@example.com"

    def send(sender: str) -> None:
        ses.send_email(
            FromEmailAddress=sender, Destination={"ToAddresses": [recipient]},
            Content={"Simple": {"Subject": {"Data": "Reset your Fog Compute password"},
                                "Body": {"Text": {"Data": f"Open {link}"}, "Html": {"Data": f"<a href=\"{link}\">x</a>"}}}},
        )

    with pytest.raises(ClientError, match="MessageRejected"):
        send("nobody@unverified.example")
    printer = local_stack.MailPrinter(dynamodb, interval=0.1)
    try:
        send(local_stack.MAIL_ENV["MAIL_FROM"])
        printed, deadline = "", time.monotonic() + 10
        while recipient not in printed:
            assert time.monotonic() < deadline, "the mail was not printed"
            time.sleep(0.1)
            printed += capsys.readouterr().out
    finally:
        printer.stop()
    assert f"Mail to {recipient}: Reset your Fog Compute password\n  {link}\n" in printed
