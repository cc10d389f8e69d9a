"""Mettler Toledo 8217 over a real pseudo-terminal: pyserial on one end, a device on the other.

The device thread below speaks the protocol from the master side of ``os.openpty``; the
scale driver opens the slave as a serial port (9600 7E1), so every byte crosses a real tty.
"""

from __future__ import annotations

import os
import select
import threading

import pytest

from pos_terminal.scales import (
    BelowMinimum,
    OverCapacity,
    ScaleError,
    ScaleFault,
    UnderZero,
    Unstable,
    take_weight,
)
from pos_terminal.scales.base import Reading
from pos_terminal.scales.mettler_8217 import Mettler8217Scale, ScaleStatus, parse_answer


class Device8217(threading.Thread):
    """A scale in 8217 mode: load, zero, tare, motion and faults, answering W Z T C S."""

    def __init__(self, master_fd: int) -> None:
        super().__init__(daemon=True)
        self.fd = master_fd
        self.load_g, self.zero_g, self.tare_g = 0, 0, 0
        self.motion = False
        self.ram_error = False
        self.capacity_g = 15_000
        self.silent = False
        self.commands: list[bytes] = []
        self.running = True

    def status(self) -> bytes:
        gross = self.load_g - self.zero_g
        first = 0x30 | (0x01 if self.motion else 0) | (0x02 if gross == 0 else 0)
        first |= 0x04 if self.ram_error else 0
        second = 0x30 | (0x01 if gross < 0 else 0) | (0x02 if gross > self.capacity_g else 0)
        return b"\x02?" + bytes([first, second]) + b"\r"

    def answer(self, command: bytes) -> bytes:
        gross = self.load_g - self.zero_g
        if command == b"W":
            if self.motion or gross < 0 or gross > self.capacity_g or self.ram_error:
                return self.status()
            net = gross - self.tare_g
            text = f"{net // 1000:02d}.{net % 1000:03d}".encode()
            return b"\x02" + text + (b"N" if self.tare_g else b"") + b"\r"
        if command == b"Z" and not self.motion and not self.tare_g:
            self.zero_g = self.load_g
        elif command == b"T" and not self.motion and gross > 0:
            self.tare_g = gross
        elif command == b"C" and not self.motion:
            self.tare_g = 0
        return self.status()

    def run(self) -> None:
        while self.running:
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(self.fd, 64)
            except OSError:
                return
            for byte in data:
                command = bytes([byte])
                self.commands.append(command)
                if not self.silent:
                    os.write(self.fd, self.answer(command))


@pytest.fixture
def device_and_scale():
    master, slave = os.openpty()
    device = Device8217(master)
    device.start()
    scale = Mettler8217Scale.open(os.ttyname(slave), timeout=1.0)
    yield device, scale
    device.running = False
    scale.close()
    device.join(2)
    os.close(master)
    os.close(slave)


def test_port_is_opened_9600_7e1(device_and_scale):
    _, scale = device_and_scale
    port = scale._port
    assert (port.baudrate, port.bytesize, port.parity, port.stopbits) == (9600, 7, "E", 1)


def test_weigh_zero_and_tare_the_shoppers_bag(device_and_scale):
    device, scale = device_and_scale
    device.load_g = 6  # drift on an empty platter
    scale.zero()
    assert scale.read() == Reading(weight_g=0)
    device.load_g = 6 + 12  # the shopper's bag
    scale.tare()
    device.load_g = 6 + 12 + 1234
    reading = scale.read()
    assert reading == Reading(weight_g=1234, stable=True, net=True)
    assert take_weight(scale) == 1234
    scale.clear_tare()
    assert scale.read() == Reading(weight_g=1246, stable=True, net=False)
    assert device.commands == [b"Z", b"W", b"T", b"W", b"W", b"C", b"W"]


def test_unstable_below_minimum_under_zero_over_capacity_are_refused(device_and_scale):
    device, scale = device_and_scale
    device.load_g, device.motion = 900, True
    with pytest.raises(Unstable, match="still moving"):
        take_weight(scale)
    with pytest.raises(ScaleError, match="stable"):
        scale.tare()
    device.motion = False
    device.load_g = 30
    with pytest.raises(BelowMinimum, match="30 g is below the scale's minimum of 40 g"):
        take_weight(scale)
    device.load_g = -20
    with pytest.raises(UnderZero, match="below zero"):
        take_weight(scale)
    device.load_g = 16_000
    with pytest.raises(OverCapacity):
        take_weight(scale)


def test_faults_and_silence_are_reported(device_and_scale):
    device, scale = device_and_scale
    device.ram_error = True
    with pytest.raises(ScaleFault, match="RAM error"):
        scale.read()
    device.ram_error = False
    device.silent = True
    with pytest.raises(ScaleError, match="did not answer"):
        scale.read()


@pytest.mark.parametrize("frame, expected", [
    (b"\x0201.234\r", Reading(1234)),
    (b"\x02000.500N\r", Reading(500, net=True)),
    (b"\x02?\x31\x30\r", ScaleStatus(motion=True)),
    (b"\x02?\x32\r", ScaleStatus(at_zero=True)),
    (b"\x02?\x30\x32\r", ScaleStatus(over_capacity=True)),
    (b"\x02?\x30\x38\r", ScaleStatus(fault="faulty calibration")),
])
def test_parse_answer(frame, expected):
    assert parse_answer(frame) == expected


@pytest.mark.parametrize("frame, message", [
    (b"01.234\r", "unframed"),
    (b"\x021.2345\r", "unreadable weight"),
    (b"\x02?\x01\r", "malformed status"),
    (b"\x02abc\r", "unreadable weight"),
])
def test_parse_answer_refuses_garbage(frame, message):
    with pytest.raises(ScaleFault, match=message):
        parse_answer(frame)
