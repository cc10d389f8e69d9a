"""Mettler Toledo 8217 protocol over a serial port (9600 baud, 7 data bits, even parity).

Host commands are single ASCII letters: ``W`` weigh, ``Z`` zero, ``T`` tare, ``C`` clear
tare, ``S`` status. Answers are framed ``<STX> ... <CR>``:

* a weight, kg with three decimals: ``<STX>01.234<CR>`` gross, ``<STX>01.234N<CR>`` net;
* or a status: ``<STX>?<status byte 1>[<status byte 2>]<CR>`` when the weight cannot be
  given (motion, under zero, over capacity) and after Z, T and C.

Status byte 1: bit 0 motion, bit 1 at zero, bit 2 RAM error, bit 3 EEPROM error, bits 4-5
always 1. Status byte 2: bit 0 under zero, bit 1 over capacity, bit 2 ROM error, bit 3 bad
calibration. The parsing is pure (``parse_answer``) so it is tested without a port.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import serial

from .base import Reading, ScaleError, ScaleFault

__all__ = ["Mettler8217Scale", "ScaleStatus", "parse_answer", "STX", "CR", "SERIAL_SETTINGS"]

STX, CR = b"\x02", b"\r"
SERIAL_SETTINGS = {"baudrate": 9600, "bytesize": serial.SEVENBITS,
                   "parity": serial.PARITY_EVEN, "stopbits": serial.STOPBITS_ONE}
_WEIGHT = re.compile(rb"^(\d{1,3}\.\d{3})(N?)$")
_STATUS_MARK = 0x30  # bits 4 and 5 are always set in a status byte


@dataclass(frozen=True, slots=True)
class ScaleStatus:
    motion: bool = False
    at_zero: bool = False
    under_zero: bool = False
    over_capacity: bool = False
    fault: str | None = None

    @classmethod
    def from_bytes(cls, data: bytes) -> ScaleStatus:
        if not 1 <= len(data) <= 2 or any(b & _STATUS_MARK != _STATUS_MARK for b in data):
            raise ScaleFault(f"malformed status bytes {data!r}")
        first = data[0]
        second = data[1] if len(data) == 2 else _STATUS_MARK
        faults = [name for bit, byte, name in ((0x04, first, "RAM error"),
                                               (0x08, first, "EEPROM error"),
                                               (0x04, second, "ROM error"),
                                               (0x08, second, "faulty calibration"))
                  if byte & bit]
        return cls(motion=bool(first & 0x01), at_zero=bool(first & 0x02),
                   under_zero=bool(second & 0x01), over_capacity=bool(second & 0x02),
                   fault=", ".join(faults) or None)


def parse_answer(frame: bytes) -> Reading | ScaleStatus:
    """One ``<STX>...<CR>`` frame -> a Reading (weight) or a ScaleStatus."""
    if not (frame.startswith(STX) and frame.endswith(CR)):
        raise ScaleFault(f"unframed answer {frame!r}")
    body = frame[1:-1]
    if body.startswith(b"?"):
        return ScaleStatus.from_bytes(body[1:])
    match = _WEIGHT.match(body)
    if not match:
        raise ScaleFault(f"unreadable weight {body!r}")
    kilograms, net = match.groups()
    whole, _, thousandths = kilograms.partition(b".")
    return Reading(weight_g=int(whole) * 1000 + int(thousandths), stable=True, net=bool(net))


def _status_reading(status: ScaleStatus) -> Reading:
    if status.fault:
        raise ScaleFault(f"the scale reports: {status.fault}")
    return Reading(weight_g=0, stable=not status.motion, under_zero=status.under_zero,
                   over_capacity=status.over_capacity)


class Mettler8217Scale:
    """A Mettler Toledo scale in 8217 mode on ``port`` (an open ``serial.Serial``)."""

    def __init__(self, port: serial.Serial) -> None:
        self._port = port
        self._lock = threading.Lock()

    @classmethod
    def open(cls, device: str, timeout: float = 1.0) -> Mettler8217Scale:
        return cls(serial.Serial(device, timeout=timeout, **SERIAL_SETTINGS))

    def _ask(self, command: bytes) -> Reading | ScaleStatus:
        with self._lock:
            self._port.reset_input_buffer()
            self._port.write(command)
            self._port.flush()
            frame = self._port.read_until(CR, size=16)
        if not frame.endswith(CR):
            raise ScaleError("the scale did not answer: check its cable and 8217 mode",
                             code="scale_no_answer")
        start = frame.rfind(STX)
        return parse_answer(frame[start:] if start >= 0 else frame)

    def read(self) -> Reading:
        answer = self._ask(b"W")
        return answer if isinstance(answer, Reading) else _status_reading(answer)

    def status(self) -> ScaleStatus:
        answer = self._ask(b"S")
        if not isinstance(answer, ScaleStatus):
            raise ScaleFault("expected a status answer to S")
        return answer

    def _command(self, letter: bytes, what: str) -> None:
        answer = self._ask(letter)
        if not isinstance(answer, ScaleStatus):
            raise ScaleFault(f"expected a status answer to {letter.decode()}")
        if answer.fault:
            raise ScaleFault(f"{what} failed: {answer.fault}")
        if answer.motion:
            raise ScaleError(f"{what} needs a stable scale: wait until it settles",
                             code="scale_needs_stable")

    def zero(self) -> None:
        self._command(b"Z", "zero")

    def tare(self) -> None:
        self._command(b"T", "tare")

    def clear_tare(self) -> None:
        self._command(b"C", "clear tare")

    def close(self) -> None:
        self._port.close()
