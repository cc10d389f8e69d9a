"""Scans as whole lines: from a keyboard-wedge scanner (key events) or a serial reader.

A wedge scanner "types" its code and presses Enter, so the window sees characters then an
Enter; ``WedgeBuffer`` gathers them into one line. A serial reader sends CR/LF-terminated
lines; ``SerialLineReader`` shares ``SerialBarcodeScanner``'s framing (``SerialLines``) but
hands over the raw text, because a scan may be an enrolment claim URL as well as an EAN-13.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import serial

from ..barcode_scanner import SerialLines

__all__ = ["WedgeBuffer", "SerialLineReader", "start_serial_reader"]

log = logging.getLogger(__name__)

_MAX_LINE = 256


class WedgeBuffer:
    """Characters in, complete lines out (on Enter); junk without an Enter is bounded."""

    def __init__(self) -> None:
        self._chars: list[str] = []

    def feed(self, text: str) -> list[str]:
        """Add typed text (may hold ``\\r``/``\\n``); return the lines it completed."""
        lines: list[str] = []
        for char in text:
            if char in "\r\n":
                line = "".join(self._chars).strip()
                self._chars = []
                if line:
                    lines.append(line)
            elif char.isprintable():
                self._chars.append(char)
                if len(self._chars) > _MAX_LINE:
                    self._chars = []
        return lines

    def enter(self) -> list[str]:
        return self.feed("\r")

    @property
    def pending(self) -> str:
        return "".join(self._chars)


class SerialLineReader(SerialLines[str]):
    """A serial barcode reader whose ``read`` returns the line's text, undecoded."""

    def _parse(self, line: bytes) -> str:
        return line.decode("ascii", errors="replace").strip()


def start_serial_reader(device: str, on_line: Callable[[str], None], *,
                        baudrate: int = 9600) -> Callable[[], None]:
    """Read ``device`` on a daemon thread, calling ``on_line(text)`` per scan; returns stop."""
    reader = SerialLineReader(serial.Serial(device, baudrate=baudrate, timeout=0.2))
    stopping = threading.Event()

    def loop() -> None:
        try:
            while not stopping.is_set():
                try:
                    line = reader.read()
                except (serial.SerialException, OSError) as exc:
                    log.warning("barcode reader on %s stopped: %s", device, exc)
                    return
                if isinstance(line, str) and line:
                    on_line(line)
                elif line is not None and not isinstance(line, str):
                    log.warning("barcode reader: %s", line)  # an over-long line of noise
        finally:
            reader.close()  # here, not in stop(): closing under a blocked read breaks it

    thread = threading.Thread(target=loop, name="barcode-reader", daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join(timeout=2)  # a read returns within its 0.2 s timeout
    return stop
