"""Local IPC from the vendor screen to the customer display process.

``multiprocessing.connection`` over a Unix socket in a private (0700) directory, with a
random authkey handed to the child through its environment, never its command line. Frames
are JSON (``send_bytes``), not pickles: the display trusts no code from the socket.

The vendor side listens and keeps a replay of the display's current screen, so a display
that starts late or restarts shows the right thing at once. The display answers each
message it has drawn with a ``shown`` frame, which is how the charge-to-QR time is measured.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

__all__ = ["AUTHKEY_ENV", "VendorLink", "connect_display", "encode", "decode"]

log = logging.getLogger(__name__)

AUTHKEY_ENV = "TRACEPAY_DISPLAY_AUTHKEY"
MAX_FRAME = 256 * 1024


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()


def decode(frame: bytes) -> dict[str, Any]:
    """Parse a frame; ValueError for anything but a JSON object of sane size."""
    if len(frame) > MAX_FRAME:
        raise ValueError(f"display frame of {len(frame)} bytes exceeds {MAX_FRAME}")
    message = json.loads(frame)
    if not isinstance(message, dict):
        raise ValueError("a display frame must be a JSON object")
    return message


class VendorLink:
    """The listening end, in the vendor process. ``send`` never blocks ring-up for long."""

    def __init__(self, on_reply: Callable[[dict[str, Any]], None] = lambda reply: None) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="tracepay-display-"))
        os.chmod(self._dir, 0o700)
        self.address = str(self._dir / "display.sock")
        self.authkey = secrets.token_bytes(32)
        self._listener = Listener(self.address, family="AF_UNIX", authkey=self.authkey)
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._replay: dict[str, Any] = {"lang": None, "screen": []}
        self._on_reply = on_reply
        self._closed = False
        threading.Thread(target=self._accept_loop, name="display-accept", daemon=True).start()

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def child_env(self) -> dict[str, str]:
        """Environment for the display process: how it proves it is ours."""
        return {AUTHKEY_ENV: self.authkey.hex()}

    def send(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._remember(message)
            conn = self._conn
            if conn is None:
                return
            try:
                conn.send_bytes(encode({**message, "sent_ns": time.monotonic_ns()}))
            except OSError:
                log.warning("customer display went away; waiting for it to reconnect")
                self._conn = None

    def _remember(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "lang":
            self._replay["lang"] = message
        elif kind in ("cart", "qr", "idle"):
            self._replay["screen"] = [message]
        elif kind in ("result", "cancel"):
            self._replay["screen"] = [*self._replay["screen"][-2:], message]

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                conn = self._listener.accept()
            except (OSError, EOFError, AuthenticationError):
                if self._closed:
                    return
                log.warning("a process failed to authenticate as the customer display")
                continue
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                replay = [m for m in (self._replay["lang"], *self._replay["screen"]) if m]
                for message in replay:
                    conn.send_bytes(encode({**message, "sent_ns": time.monotonic_ns()}))
                self._conn = conn
            threading.Thread(target=self._read_replies, args=(conn,), name="display-replies",
                             daemon=True).start()

    def _read_replies(self, conn: Connection) -> None:
        while True:
            try:
                reply = decode(conn.recv_bytes(MAX_FRAME))
            except (EOFError, OSError):
                with self._lock:
                    if self._conn is conn:
                        self._conn = None
                return
            except ValueError as exc:
                log.warning("ignoring a malformed frame from the display: %s", exc)
                continue
            self._on_reply(reply)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        self._listener.close()
        for path in (Path(self.address), self._dir):
            with contextlib.suppress(OSError):
                path.rmdir() if path.is_dir() else path.unlink()


def connect_display(address: str, authkey: bytes | None = None) -> Connection:
    """The display's end; the authkey comes from the environment when not given."""
    if authkey is None:
        hex_key = os.environ.get(AUTHKEY_ENV)
        if not hex_key:
            raise RuntimeError(f"set {AUTHKEY_ENV}: the customer display is started by the "
                               "vendor screen, which hands it the key")
        authkey = bytes.fromhex(hex_key)
    return Client(address, family="AF_UNIX", authkey=authkey)
