"""大华/Dahua and 顶尖/ACLAS continuous-output scales over a real pseudo-terminal pair.

A stand-in scale writes frames to the pty's master side, as the scale's RS-232 port does;
the driver opens the slave as a serial port with the chosen baud and parity and reads it on
its own thread. Partial, malformed and noisy frames, readings in motion, overload, below
zero and a scale that stops sending are all played through the tty.
"""

from __future__ import annotations

import os
import threading
import time
import tty
from collections.abc import Callable
from typing import Any

import pytest

from pos_terminal.scales import (
    BelowMinimum,
    OverCapacity,
    ScaleError,
    UnderZero,
    Unstable,
    open_scale,
    take_weight,
)
from pos_terminal.scales.aclas import encode_aclas, parse_aclas
from pos_terminal.scales.continuous import ContinuousScale
from pos_terminal.scales.dahua import encode_dahua, parse_dahua, split_dahua
from service_base.testing import wait_until

pytestmark = pytest.mark.timeout(60)


class StreamingScale(threading.Thread):
    """Sends ``self.frame`` every 20 ms until stopped: bytes, or a function giving the next
    frame (a load still moving)."""

    def __init__(self, master_fd: int) -> None:
        super().__init__(daemon=True)
        self.fd, self.frame, self.running = master_fd, b"", True
        self.sent = 0

    def run(self) -> None:
        while self.running:
            frame = self.frame() if callable(self.frame) else self.frame
            if frame:
                try:
                    os.write(self.fd, frame)
                    self.sent += 1
                except OSError:
                    return
            time.sleep(0.02)


@pytest.fixture
def pty_pair():
    master, slave = os.openpty()
    tty.setraw(master)
    yield master, os.ttyname(slave)
    os.close(slave)
    os.close(master)


def open_streaming(pty_pair, spec: str):
    master, device = pty_pair
    stand_in = StreamingScale(master)
    stand_in.start()
    scale = open_scale(spec.replace("DEV", device))
    return stand_in, scale


def settled(condition: Callable[[], Any]) -> Callable[[], Any]:
    """``condition``, read as not yet met while the scale has no reading to give."""
    def reading() -> Any:
        try:
            return condition()
        except ScaleError:
            return None
    return reading


def frames_seen(scale: ContinuousScale, more_than: int) -> bool:
    return scale.frames + scale.malformed > more_than


def test_dahua_frames_reversed_digits_parse_and_round_trip():
    assert encode_dahua(1500) == b"=005.100"
    assert parse_dahua(b"=005.100").weight_g == 1500
    assert parse_dahua(b"=052.00-").weight_g == -250
    assert split_dahua(b"junk=005.100=005.1=005.100=00") == (
        [b"=005.100", b"=005.1", b"=005.100"], b"=00")
    for bad in (b"=005.1", b"=00a.100", b"=0051000", b"=\xff05.100"):
        with pytest.raises(ScaleError):
            parse_dahua(bad)


def test_aclas_lines_parse():
    assert parse_aclas(b"ST,GS,+001.234kg").weight_g == 1234
    net = parse_aclas(b"ST,NT,+  0.500kg")
    assert (net.weight_g, net.net, net.stable) == (500, True, True)
    assert parse_aclas(b"US,GS,+000.900kg").stable is False
    assert parse_aclas(b"OL,GS,+---.---kg").over_capacity
    assert parse_aclas(b"ST,GS,+850g").weight_g == 850
    for bad in (b"ST,GS,+0a1.234kg", b"XX,GS,+001.234kg", b"ST,GS,001.234kg", b"ST,G"):
        with pytest.raises(ScaleError):
            parse_aclas(bad)


def test_dahua_over_a_pty_stability_noise_partial_frames_and_silence(pty_pair):
    stand_in, scale = open_streaming(pty_pair, "dahua:DEV:9600:N")
    try:
        assert (scale._port.baudrate, scale._port.parity) == (9600, "N")
        # a load that keeps moving never reads as stable
        weights = iter(range(1000, 100000, 7))
        stand_in.frame = lambda: encode_dahua(next(weights))
        wait_until(settled(lambda: scale.frames > 3), message="frames")
        for _ in range(5):
            seen = scale.frames
            wait_until(settled(lambda s=seen: scale.frames > s), message="a changed frame")
            with pytest.raises(Unstable):
                take_weight(scale)
        # settled: equal frames in a row; partial frames and noise between them are skipped
        stand_in.frame = encode_dahua(1500)
        assert wait_until(settled(lambda: take_weight(scale) == 1500), message="a stable 1500 g")
        before = scale.malformed
        stand_in.frame = b"=005.1" + b"\x00\xffnoise" + encode_dahua(1500)
        wait_until(settled(lambda: scale.malformed > before + 2), message="the partial frames counted")
        assert take_weight(scale) == 1500
        assert "Dahua frame" in scale.last_fault
        stand_in.frame = encode_dahua(-250)
        wait_until(settled(lambda: scale.read().weight_g == -250), message="below zero")
        with pytest.raises(UnderZero):
            take_weight(scale)
        stand_in.frame = encode_dahua(12)
        wait_until(settled(lambda: scale.read().weight_g == 12 and scale.read().stable), message="12 g")
        with pytest.raises(BelowMinimum):
            take_weight(scale)
        with pytest.raises(ScaleError) as refused:
            scale.tare()
        assert refused.value.code == "scale_use_keys"
        stand_in.frame = b""  # the scale stops sending: its last weight must not be used
        assert wait_until(settled(lambda: _no_answer(scale)), message="the no-answer refusal")
    finally:
        stand_in.running = False
        scale.close()


def _no_answer(scale: ContinuousScale) -> bool:
    try:
        scale.read()
    except ScaleError as exc:
        return exc.code == "scale_no_answer"
    return False


def test_aclas_over_a_pty_at_4800_even_motion_overload_and_split_lines(pty_pair):
    stand_in, scale = open_streaming(pty_pair, "aclas:DEV:4800:E")
    try:
        assert (scale._port.baudrate, scale._port.parity) == (4800, "E")
        stand_in.frame = encode_aclas(900, stable=False)
        wait_until(settled(lambda: scale.frames > 2), message="frames")
        with pytest.raises(Unstable):
            take_weight(scale)
        stand_in.frame = encode_aclas(0, overload=True)
        wait_until(settled(lambda: scale.read().over_capacity), message="overload")
        with pytest.raises(OverCapacity):
            take_weight(scale)
        # one reading arriving in two writes is put back together; a garbled line is skipped
        line = encode_aclas(1234, net=True)
        before = scale.malformed
        stand_in.frame = line + b"ST,GS,+0a1.2kg\r\n"
        wait_until(settled(lambda: scale.malformed > before), message="the garbled line counted")
        reading = wait_until(settled(lambda: scale.read() if scale.read().weight_g == 1234 else None),
                             message="1234 g net")
        assert reading.net and reading.stable
        assert take_weight(scale) == 1234
    finally:
        stand_in.running = False
        scale.close()


def test_a_reading_split_across_writes_is_reassembled(pty_pair):
    master, device = pty_pair
    scale = open_scale(f"aclas:{device}")
    try:
        for _ in range(3):
            line = encode_aclas(2500)
            os.write(master, line[:5])
            time.sleep(0.05)  # the second half comes later, as a slow line does
            os.write(master, line[5:])
        wait_until(settled(lambda: scale.frames >= 3), message="three readings")
        assert scale.malformed == 0 and take_weight(scale) == 2500
    finally:
        scale.close()


def test_serial_settings_are_checked():
    for spec in ("dahua:/dev/null:9601", "aclas:/dev/null:9600:X", "dahua:/dev/null:fast",
                 "mettler:/dev/null:9600", "ohaus:/dev/ttyS0", "dahua:"):
        with pytest.raises(ValueError):
            open_scale(spec)


def test_the_vendor_screen_weighs_from_a_streaming_scale(pty_pair, tmp_path, mqtt_broker):
    """The real window with ``--scale aclas:<pty>``: the bar shows the live weight (read off
    the UI thread), a key tap takes the stable reading, Tare says to use the scale's key."""
    import shutil
    import uuid

    from pos_terminal.testing import enrol_offline
    from pos_terminal.ui.harness import TerminalWindows, VirtualScreen

    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is required for the UI tests (Debian package xvfb)")
    master, device = pty_pair
    stand_in = StreamingScale(master)
    stand_in.frame = encode_aclas(900, stable=False)
    stand_in.start()
    data_dir = tmp_path / "terminal"
    enrol_offline(data_dir, f"T-SC-{uuid.uuid4().hex[:6]}", gateway_url="http://127.0.0.1:9",
                  mqtt_port=mqtt_broker.port)
    try:
        with VirtualScreen() as screen, TerminalWindows(
                data_dir, screen.display, log_path=tmp_path / "app.log",
                scale=f"aclas:{device}:9600:N", expect_display=False,
                extra_args=("--geometry", "800x480+0+0")) as windows:
            vendor = windows.vendor
            vendor.wait_for(lambda s: "900" in s["scale_text"], what="the moving weight")
            vendor.tap("product-cabbage")
            assert vendor.state()["lines"] == []  # in motion: refused
            stand_in.frame = encode_aclas(1234)
            vendor.wait_for(lambda s: "1234" in s["scale_text"], what="the settled weight")
            vendor.tap("product-cabbage")
            state = vendor.state()
            assert [(line["product_code"], line["weight_g"]) for line in state["lines"]] == \
                [("cabbage", 1234)]
            vendor.tap("scale-tare")
            assert vendor.state()["notice"] == "请用秤上的按键归零、去皮"
    finally:
        stand_in.running = False
