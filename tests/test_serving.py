"""``serve_wsgi`` with several workers (granian): what the services rely on from it.

A real server process on a loopback port: each worker runs ``post_fork`` and builds its own
app, SIGTERM stops it gracefully (the code after ``serve_wsgi`` runs), a worker that dies
is logged and started again, an error inside a request goes to stderr as a 500 without
taking the worker down, and no access log is written.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from service_base.testing import free_port, wait_for_http

pytestmark = pytest.mark.slow  # a pre-fork server process and its workers

SERVER = """
import os, sys
from flask import Flask
from service_base.serving import serve_wsgi

marks = sys.argv[2]

def post_fork():
    with open(marks, "a") as out:
        out.write(f"{os.getpid()}\\n")

def create_app():
    app = Flask("serving-test")

    @app.get("/pid")
    def pid():
        return {"pid": os.getpid(), "parent": os.getppid()}

    @app.get("/boom")
    def boom():
        raise RuntimeError("boom-in-a-view")

    @app.get("/die")
    def die():
        os._exit(3)

    return app

print(f"server pid {os.getpid()}", file=sys.stderr, flush=True)
serve_wsgi(create_app, "127.0.0.1", int(sys.argv[1]), workers=2, threads=2,
           post_fork=post_fork)
print("serve_wsgi returned", file=sys.stderr, flush=True)
"""


class Server:
    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.marks = tmp_path / "post_fork.pids"
        self.stderr = tmp_path / "stderr.log"
        self.stdout = tmp_path / "stdout.log"
        root = Path(__file__).resolve().parents[1]
        with self.stderr.open("wb") as err, self.stdout.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-c", SERVER, str(self.port), str(self.marks)], stdout=out,
                stderr=err, stdin=subprocess.DEVNULL, cwd=root, start_new_session=True,
                env={**os.environ, "PYTHONPATH": str(root)})
        wait_for_http(f"{self.url}/pid", 60, self.process)
        self.http = requests.Session()
        self.http.trust_env = False

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture
def server(tmp_path: Path):
    started = Server(tmp_path)
    yield started
    started.stop()


def _wait(condition, timeout: float, what: str, server: Server) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}\n--- stderr ---\n{server.log()}"
        time.sleep(0.2)


def test_workers_run_post_fork_and_build_their_own_app(server: Server) -> None:
    _wait(lambda: len(server.marks.read_text().split()) == 2, 30, "two post_fork calls",
          server)
    marked = {int(pid) for pid in server.marks.read_text().split()}
    answered = server.http.get(f"{server.url}/pid", timeout=10).json()
    assert answered["pid"] in marked
    assert answered["pid"] != server.process.pid
    assert answered["parent"] == server.process.pid  # forked by the serving process


def test_sigterm_stops_gracefully_and_returns(server: Server) -> None:
    assert server.http.get(f"{server.url}/pid", timeout=10).status_code == 200
    started = time.monotonic()
    os.killpg(server.process.pid, signal.SIGTERM)
    returncode = server.process.wait(30)
    assert returncode == 0, server.log()
    assert time.monotonic() - started < 15, "shutdown took too long"
    assert "serve_wsgi returned" in server.log()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/pid", timeout=2)


def test_a_request_error_is_a_500_on_stderr_and_no_access_log(server: Server) -> None:
    answer = server.http.get(f"{server.url}/boom", timeout=10)
    assert answer.status_code == 500
    assert server.http.get(f"{server.url}/pid", timeout=10).status_code == 200
    _wait(lambda: "boom-in-a-view" in server.log(), 10, "traceback on stderr", server)
    assert "RuntimeError" in server.log()
    out = server.stdout.read_text(errors="replace")
    assert "/pid" not in out and "/pid" not in server.log()  # no access log anywhere


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_worker_that_dies_is_logged_and_replaced(server: Server) -> None:
    _wait(lambda: len(server.marks.read_text().split()) == 2, 30, "both workers started",
          server)
    before = {int(pid) for pid in server.marks.read_text().split()}
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/die", timeout=10)
    _wait(lambda: "Unexpected exit from worker" in server.log(), 30, "the exit logged",
          server)
    _wait(lambda: len(server.marks.read_text().split()) == 3, 30, "a new worker", server)
    replacement = {int(pid) for pid in server.marks.read_text().split()} - before
    assert len(replacement) == 1
    assert [pid for pid in before if not _alive(pid)] != []
    assert all(_alive(pid) for pid in replacement)
    assert server.http.get(f"{server.url}/pid", timeout=10).status_code == 200
    assert server.process.poll() is None
