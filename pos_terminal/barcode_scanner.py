"""A barcode scanner on a serial port: one code per line, as most POS scanners send them.

Scanners in keyboard mode need nothing here (the screen's text field receives the digits);
a serial scanner is read by ``SerialBarcodeScanner`` and every line is handed to
``pos_terminal.barcodes.parse_ean13``. A bad scan is reported, never guessed at.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import serial

from .barcodes import BarcodeError, EmbeddedBarcode, EmbeddedLayout, ProductBarcode, parse_ean13

__all__ = ["SerialBarcodeScanner", "SerialLines", "ScanResult"]

ScanResult = EmbeddedBarcode | ProductBarcode | BarcodeError

#: What a reader makes of one line.
Line = TypeVar("Line")


class SerialLines(Generic[Line]):
    """CR- or LF-terminated lines from a serial port, each turned into a ``Line`` by
    ``_parse``: the framing every serial reader shares."""

    def __init__(self, port: serial.Serial) -> None:
        self._port = port
        self._pending = b""

    def read(self) -> Line | BarcodeError | None:
        """The next complete scan, or None when no full line arrived within the timeout."""
        while True:
            for separator in (b"\r", b"\n"):
                line, found, rest = self._pending.partition(separator)
                if found:
                    self._pending = rest.lstrip(b"\r\n")
                    return self._parse(line)
            chunk = self._port.read(self._port.in_waiting or 1)
            if not chunk:
                return None
            self._pending += chunk
            if len(self._pending) > 256:  # noise without line ends: drop it
                self._pending = b""
                return BarcodeError("the scanner sent an over-long line")

    def _parse(self, line: bytes) -> Line:
        """One line, without its terminator; each reader says what it makes of it."""
        raise NotImplementedError

    def close(self) -> None:
        self._port.close()


class SerialBarcodeScanner(SerialLines[ScanResult]):
    """Reads CR- or LF-terminated codes (9600 8N1 by default, the scanners' usual setting)."""

    def __init__(self, port: serial.Serial, layout: EmbeddedLayout | None = None) -> None:
        super().__init__(port)
        self._layout = layout or EmbeddedLayout()

    @classmethod
    def open(cls, device: str, baudrate: int = 9600, timeout: float = 0.2,
             layout: EmbeddedLayout | None = None) -> SerialBarcodeScanner:
        return cls(serial.Serial(device, baudrate=baudrate, timeout=timeout), layout)

    def _parse(self, line: bytes) -> ScanResult:
        try:
            return parse_ean13(line.decode("ascii", errors="replace").strip(), self._layout)
        except BarcodeError as exc:
            return exc
