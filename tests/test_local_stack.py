"""`make run` (infra/local_stack.py run) as a developer or a process manager meets it: stopped by a
signal, it stops every server it started; started beside something holding its ports, it says
what, in one line. Free ports throughout, so these run beside a developer's `make run`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, local_stack

SCRIPT = REPO / "infra" / "local_stack.py"


def children_of(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The command name (field 2) may hold spaces and parentheses; the fields after it do not.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                children.append(int(stat.parent.name))
    return children


def descendants_of(pid: int) -> set[int]:
    found, pending = set(), [pid]
    while pending:
        for child in children_of(pending.pop()):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


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
    """`local_stack.py run` in a session of its own, and every process it starts, so that the
    test can end exactly those (by pid) whatever the outcome."""

    def __init__(self, log: Path, *args: str):
        self.port, self.dynamodb_port = local_stack.free_port(), local_stack.free_port()
        self._log = open(log, "wb")
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), "run", "--port", str(self.port),
             "--dynamodb-port", str(self.dynamodb_port), "--table", "fog-compute-signals", *args],
            cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.started: set[int] = set()

    def wait_serving(self, timeout: float = 600) -> None:
        def serving() -> bool:
            assert self.process.poll() is None, f"local_stack.py run exited with {self.process.returncode}"
            self.started |= descendants_of(self.process.pid)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                local_stack._wait_for(f"http://127.0.0.1:{self.port}/", timeout=1, accept=lambda status: status == 200)
                return True
            except (OSError, TimeoutError):
                return False
        assert wait_until(serving, timeout, interval=0.5), "the stack did not start"
        self.started |= descendants_of(self.process.pid)

    def cleanup(self) -> None:
        for pid in [self.process.pid, *self.started]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self._log.close()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stop_signal_stops_the_whole_stack(tmp_path, stop_signal):
    stack = Stack(tmp_path / "run.log")
    try:
        stack.wait_serving()
        servers = stack.started
        assert listening(stack.port) and listening(stack.dynamodb_port)
        assert len(servers) >= 2, "the DynamoDB server and cargo lambda watch"

        stack.process.send_signal(stop_signal)
        stack.process.wait(timeout=30)
        assert wait_until(lambda: not any(alive(pid) for pid in servers), timeout=20), {
            pid: Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ") for pid in servers if alive(pid)
        }
        assert not listening(stack.port) and not listening(stack.dynamodb_port)
        log = (tmp_path / "run.log").read_text(errors="replace")
        assert "Traceback" not in log, log
    finally:
        stack.cleanup()


def run_beside(holder_port: int, which: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, int]:
    """`local_stack.py run` with one of its ports already taken; its result, and its other port."""
    other = local_stack.free_port()
    ports = {"functions": ("--port", "--dynamodb-port"), "dynamodb": ("--dynamodb-port", "--port")}[which]
    stack = subprocess.Popen(
        [sys.executable, str(SCRIPT), "run", ports[0], str(holder_port), ports[1], str(other),
         "--table", "fog-compute-taken"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while stack.poll() is None and time.monotonic() < deadline:
            started |= descendants_of(stack.pid)
            time.sleep(0.1)
        assert stack.poll() is not None, "local_stack.py run neither refused nor stopped within 60 s"
        stdout, stderr = stack.communicate()
        return subprocess.CompletedProcess(stack.args, stack.returncode, stdout, stderr), other
    finally:
        for pid in [stack.pid, *started]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


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
    base64-encoded: the functions' 400 for it is tested in-process (shared/tests/body_encoding.rs)
    and through `sam local invoke` (tests/sam/). The README says so; this fails if a cargo-lambda
    release changes it."""
    response = api.post("/api/auth/register", data='{"username":"café"}'.encode("latin-1"),
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 500, response.text
    assert response.headers["Content-Type"].startswith("text/plain"), "not the functions' problem+json"
    assert "x-content-type-options" not in response.headers, "no function answered (they all set it)"
