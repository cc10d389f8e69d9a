"""Run the real terminal windows headless, for UI tests, benchmarks and screenshots.

``VirtualScreen`` starts Xvfb on a display number it picks itself (``-displayfd``), so
parallel test runs never collide. Mesa's llvmpipe gives Kivy OpenGL without a GPU.
``TerminalWindows`` launches ``python -m pos_terminal.ui.app DATA_DIR`` with control sockets
for both windows; ``ControlClient`` taps widgets by ``tap_id`` and reads state through them.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Client, Connection
from pathlib import Path
from typing import Any

from .environment import CONTROL_ENV, CONTROL_KEY_ENV, DISPLAY_CONTROL_ENV, LANG_ENV

__all__ = ["VirtualScreen", "TerminalWindows", "ControlClient", "UIHarnessError"]


class UIHarnessError(RuntimeError):
    pass


class VirtualScreen:
    """An Xvfb server for the duration of a ``with`` block; ``display`` is ``':N'``."""

    def __init__(self, size: str = "2048x800x24") -> None:
        self.size = size
        self.display: str | None = None
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> VirtualScreen:
        xvfb = shutil.which("Xvfb")
        if xvfb is None:
            raise UIHarnessError("Xvfb is not installed (Debian package xvfb)")
        read_fd, write_fd = os.pipe()
        self._process = subprocess.Popen(
            [xvfb, "-displayfd", str(write_fd), "-screen", "0", self.size, "-nolisten", "tcp"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number.isdigit():
            self._process.kill()
            raise UIHarnessError("Xvfb did not report a display number")
        self.display = f":{number}"
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)


class ControlClient:
    """Talks to one window's ``UIControl`` socket."""

    def __init__(self, address: str, authkey: bytes) -> None:
        self.address, self._authkey = address, authkey
        self._conn: Connection | None = None

    def connect(self, timeout: float, alive: Callable[[], bool]) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._conn = Client(self.address, family="AF_UNIX", authkey=self._authkey)
                return
            except (FileNotFoundError, ConnectionRefusedError):
                if not alive():
                    raise UIHarnessError("the window's process exited before it opened") \
                        from None
                if time.monotonic() > deadline:
                    raise UIHarnessError(f"no control socket at {self.address} "
                                         f"after {timeout}s") from None
                time.sleep(0.1)

    def request(self, **request: Any) -> dict[str, Any]:
        if self._conn is None:
            raise UIHarnessError("not connected")
        self._conn.send_bytes(json.dumps(request).encode())
        answer = json.loads(self._conn.recv_bytes())
        if "error" in answer:
            raise UIHarnessError(f"{request}: {answer['error']}")
        return answer

    def tap(self, target: str, hold_s: float = 0.0) -> dict[str, Any]:
        """A quick tap, or with ``hold_s`` a finger held down that long (a long press)."""
        return self.request(op="tap", target=target, hold_s=hold_s)

    def state(self) -> dict[str, Any]:
        return self.request(op="state")["state"]

    def layout(self) -> dict[str, Any]:
        """The window's size and its visible controls (``layout_check.control_geometry``)."""
        return self.request(op="layout")

    def screenshot(self, path: str | os.PathLike[str]) -> Path:
        return Path(self.request(op="screenshot", path=str(path))["path"])

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20.0,
                 what: str = "condition") -> dict[str, Any]:
        """Poll ``state`` until ``predicate`` holds; the error shows the last state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if predicate(state):
                return state
            if time.monotonic() > deadline:
                raise UIHarnessError(f"timed out waiting for {what}; last state: {state}")
            time.sleep(0.05)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class TerminalWindows:
    """The vendor screen and customer display of the terminal in ``data_dir``."""

    def __init__(self, data_dir: str | os.PathLike[str], display: str, *,
                 log_path: str | os.PathLike[str], lang: str = "zh", scale: str = "manual",
                 startup_timeout: float = 60.0, extra_args: tuple[str, ...] = (),
                 expect_display: bool = True) -> None:
        self.scale = scale
        self.extra_args = tuple(extra_args)
        self.expect_display = expect_display
        self.data_dir, self.display, self.lang = Path(data_dir), display, lang
        self.log_path = Path(log_path)
        self.startup_timeout = startup_timeout
        self._dir = Path(tempfile.mkdtemp(prefix="tracepay-ui-"))
        key = secrets.token_bytes(32)
        self.vendor = ControlClient(str(self._dir / "vendor.sock"), key)
        self.customer = ControlClient(str(self._dir / "display.sock"), key)
        self._key = key
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> TerminalWindows:
        env = {**os.environ, "DISPLAY": self.display, "KIVY_NO_ARGS": "1",
               "KIVY_HOME": str(self._dir / "kivy"), "KIVY_LOG_MODE": "PYTHON",
               CONTROL_ENV: self.vendor.address, DISPLAY_CONTROL_ENV: self.customer.address,
               CONTROL_KEY_ENV: self._key.hex(), LANG_ENV: self.lang}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pos_terminal.ui.app", str(self.data_dir),
                 "--scale", self.scale, *self.extra_args], env=env,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        try:
            alive = lambda: self.process is not None and self.process.poll() is None  # noqa: E731
            self.vendor.connect(self.startup_timeout, alive)
            if self.expect_display:
                self.customer.connect(self.startup_timeout, alive)
        except UIHarnessError as exc:
            self.__exit__()
            raise UIHarnessError(f"{exc}\n--- {self.log_path} ---\n{self.log_tail()}") from exc
        return self

    def connect_customer(self) -> None:
        """After a first-run enrolment the customer display starts; connect to it then."""
        self.customer.connect(self.startup_timeout,
                              lambda: self.process is not None and self.process.poll() is None)

    def type(self, text: str) -> dict[str, Any]:
        """Keys into the vendor window, as a keyboard or a wedge scanner sends them."""
        return self.vendor.request(op="type", text=text)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __exit__(self, *exc_info: object) -> None:
        self.vendor.close()
        self.customer.close()
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(timeout=5)
        shutil.rmtree(self._dir, ignore_errors=True)
