"""Scales that stream their weight without being asked (continuous output mode).

Most price-computing scales in Chinese markets can send a frame many times a second on
their RS-232 port. A reader thread (never the UI thread) cuts the byte stream into frames
with the protocol's delimiter, parses each, and keeps the latest reading; ``read()`` returns
it while it is fresh. Malformed or partial frames are skipped and counted, a port that
falls silent is reported as such, and a protocol without a stability flag is called stable
only after ``stable_frames`` equal readings in a row. Zero and tare are the scale's own keys:
continuous-output scales take no commands.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import serial

from .base import Reading, ScaleError, ScaleFault

__all__ = ["ContinuousProtocol", "ContinuousScale", "SerialSettings", "PARITIES"]

PARITIES = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}


@dataclass(frozen=True, slots=True)
class SerialSettings:
    baudrate: int = 9600
    parity: str = "N"  # N, E or O
    bytesize: int = 8

    def __post_init__(self) -> None:
        if self.baudrate not in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200):
            raise ValueError(f"scale baud rate {self.baudrate} is not a standard rate")
        if self.parity not in PARITIES:
            raise ValueError(f"scale parity must be N, E or O, not {self.parity!r}")


@dataclass(frozen=True, slots=True)
class ContinuousProtocol:
    """One family's frames: ``split`` finds whole frames in a buffer (returning them and the
    unused tail), ``parse`` turns one into a Reading or raises ScaleFault."""

    name: str
    split: Callable[[bytes], tuple[list[bytes], bytes]]
    parse: Callable[[bytes], Reading]
    has_stability_flag: bool
    default_settings: SerialSettings


class ContinuousScale:
    """A continuous-output scale on an open serial port; the reader thread starts at once."""

    MAX_AGE_S = 1.0  # a reading older than this means the scale stopped sending

    def __init__(self, port: serial.Serial, protocol: ContinuousProtocol,
                 stable_frames: int = 3) -> None:
        self._port, self.protocol = port, protocol
        self._stable_frames = stable_frames
        self._lock = threading.Lock()
        self._latest: Reading | None = None
        self._latest_at = 0.0
        self._run_length = 0
        self.frames = 0
        self.malformed = 0
        self.last_fault: str | None = None
        self._running = True
        self._thread = threading.Thread(target=self._read_loop, name=f"scale-{protocol.name}",
                                        daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, device: str, protocol: ContinuousProtocol,
             settings: SerialSettings | None = None) -> ContinuousScale:
        chosen = settings or protocol.default_settings
        port = serial.Serial(device, baudrate=chosen.baudrate, parity=PARITIES[chosen.parity],
                             bytesize=chosen.bytesize, stopbits=serial.STOPBITS_ONE,
                             timeout=0.2)
        return cls(port, protocol)

    def _read_loop(self) -> None:
        buffer = b""
        while self._running:
            try:
                chunk = self._port.read(64)
            except (serial.SerialException, OSError, TypeError):
                if not self._running:
                    return
                time.sleep(0.2)
                continue
            if not chunk:
                continue
            frames, buffer = self.protocol.split(buffer + chunk)
            buffer = buffer[-256:]  # noise without a delimiter must not grow without end
            for frame in frames:
                self._take(frame)

    def _take(self, frame: bytes) -> None:
        try:
            reading = self.protocol.parse(frame)
        except ScaleFault as exc:
            with self._lock:
                self.malformed += 1
                self.last_fault = str(exc)
            return
        with self._lock:
            previous = self._latest
            same = previous is not None and previous.weight_g == reading.weight_g
            self._run_length = self._run_length + 1 if same else 1
            if not self.protocol.has_stability_flag:
                reading = Reading(reading.weight_g, self._run_length >= self._stable_frames,
                                  reading.net, reading.under_zero, reading.over_capacity)
            self._latest, self._latest_at = reading, time.monotonic()
            self.frames += 1

    def read(self) -> Reading:
        with self._lock:
            latest, age = self._latest, time.monotonic() - self._latest_at
        if latest is None or age > self.MAX_AGE_S:
            raise ScaleError(f"no weight from the {self.protocol.name} scale: check its cable, "
                             "baud rate and continuous-output mode", code="scale_no_answer")
        return latest

    def _use_keys(self, what: str) -> None:
        raise ScaleError(f"{what}: use the key on the scale itself", code="scale_use_keys")

    def zero(self) -> None:
        self._use_keys("zero")

    def tare(self) -> None:
        self._use_keys("tare")

    def clear_tare(self) -> None:
        self._use_keys("clear tare")

    def close(self) -> None:
        self._running = False
        self._port.close()
        self._thread.join(timeout=2)
