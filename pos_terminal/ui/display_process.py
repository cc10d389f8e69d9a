"""The customer display as a child process, kept alive.

The customer display is a second Kivy window in a process of its own (one Kivy window per
process). A crashed or closed display comes back within seconds showing the current screen
(the vendor link replays it), so a QR is never lost with the window; one that crashes at
start-up is not restarted in a tight loop.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

from .display_link import VendorLink
from .environment import CONTROL_ENV, DISPLAY_CONTROL_ENV

__all__ = ["DisplayProcess"]

log = logging.getLogger(__name__)

#: A display that exits sooner than this after starting is left down (it would only crash again).
RESTART_AFTER_S = 3.0


class DisplayProcess:
    """Starts ``pos_terminal.ui.display_app`` attached to ``link`` and restarts it if it dies."""

    def __init__(self, link: VendorLink, *, geometry: str | None = None) -> None:
        self.link, self.geometry = link, geometry
        self.merchant = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._started = 0.0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, merchant: str) -> None:
        self.merchant = merchant
        env = {**os.environ, **self.link.child_env()}
        env.pop(CONTROL_ENV, None)
        if os.environ.get(DISPLAY_CONTROL_ENV):
            env[CONTROL_ENV] = os.environ[DISPLAY_CONTROL_ENV]
        argv = [sys.executable, "-m", "pos_terminal.ui.display_app", "--address",
                self.link.address, "--merchant", merchant]
        if self.geometry:
            argv += ["--geometry", self.geometry]
        self._process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)
        self._started = time.monotonic()

    def keep_alive(self) -> None:
        """Called on the app's clock: start the display again if it exited."""
        process = self._process
        if process is None or process.poll() is None:
            return
        if time.monotonic() - self._started < RESTART_AFTER_S:
            return  # crashing at start-up: do not spin
        log.warning("customer display exited with %s; starting it again", process.returncode)
        self.start(self.merchant)

    def stop(self, timeout: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
