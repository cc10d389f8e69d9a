"""大华 (Dahua/TMA-ACS price-computing scales) continuous output: ``=`` and the weight's digits
in reverse order.

Frame: ``=`` then seven characters, the kilogram weight with its decimal point written
backwards: 1.500 kg is ``001.500`` and goes out as ``=005.100``; -0.250 kg is ``-00.250``,
sent as ``=052.00-``. Sent continuously (about ten a second) with no terminator: the next
``=`` starts the next frame.
There is no stability or overload flag in the frame, so stability is judged from repeated
equal readings. 9600 baud, 8N1 by default.

Source: the continuous ("tf=0") output of XK3190-style weighing indicators, which the
price-computing scales of this family copy, as published in integration notes for these
scales; the vendor's own protocol sheet was not at hand, so check the frame against the
unit's manual before relying on it.
"""

from __future__ import annotations

import re

from .base import Reading, ScaleFault
from .continuous import ContinuousProtocol, SerialSettings

__all__ = ["DAHUA", "parse_dahua", "split_dahua", "encode_dahua"]

FRAME_LENGTH = 8  # "=" + 7 characters
_FORWARD = re.compile(r"^(-?)(\d{1,6})\.(\d{1,5})$")


def split_dahua(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Whole frames (each ``=`` followed by seven bytes) and the unfinished tail."""
    frames = []
    start = buffer.find(b"=")
    while start >= 0 and len(buffer) - start >= FRAME_LENGTH:
        frame = buffer[start:start + FRAME_LENGTH]
        following = buffer.find(b"=", start + 1)
        if 0 <= following < start + FRAME_LENGTH:  # a cut-off frame: a new one began inside
            frames.append(buffer[start:following])
            start = following
            continue
        frames.append(frame)
        start = buffer.find(b"=", start + FRAME_LENGTH)
    tail = buffer[start:] if start >= 0 else b""
    return frames, tail


def parse_dahua(frame: bytes) -> Reading:
    if len(frame) != FRAME_LENGTH or not frame.startswith(b"="):
        raise ScaleFault(f"partial Dahua frame {frame!r}")
    try:
        forward = frame[1:].decode("ascii")[::-1]
    except UnicodeDecodeError:
        raise ScaleFault(f"unreadable Dahua frame {frame!r}") from None
    match = _FORWARD.match(forward)
    if not match:
        raise ScaleFault(f"unreadable Dahua weight {frame!r}")
    sign, whole, decimals = match.groups()
    grams = int(whole) * 1000 + int((decimals + "000")[:3])
    grams = -grams if sign else grams
    return Reading(weight_g=grams, stable=True, under_zero=grams < 0)


def encode_dahua(grams: int) -> bytes:
    """The frame a Dahua scale sends for ``grams`` (used by the tests' scale stand-in)."""
    forward = f"{grams / 1000:07.3f}" if grams >= 0 else f"-{-grams / 1000:06.3f}"
    return b"=" + forward[::-1].encode("ascii")


DAHUA = ContinuousProtocol("dahua", split_dahua, parse_dahua, has_stability_flag=False,
                           default_settings=SerialSettings(9600, "N"))
