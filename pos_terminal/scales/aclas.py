"""顶尖 (ACLAS) scales in continuous output: one ASCII line per reading with its state.

Frame: ``<state>,<mode>,<sign><weight><unit><CR><LF>``, e.g. ``ST,GS,+001.234kg\\r\\n``:

* state ``ST`` stable, ``US`` in motion, ``OL`` overload (weight field then not a number);
* mode ``GS`` gross, ``NT`` net (a tare is set);
* sign ``+`` or ``-``, the weight with its decimal point (spaces may pad it), unit ``kg``
  or ``g``.

9600 baud, 8N1 by default. Source: the "ST,GS" line that this family's scales and many
Chinese weighing indicators send in continuous mode, as published in integration notes
(the vendor's protocol sheet was not at hand): check it against the unit's manual.
"""

from __future__ import annotations

import re

from .base import Reading, ScaleFault
from .continuous import ContinuousProtocol, SerialSettings

__all__ = ["ACLAS", "parse_aclas", "split_aclas", "encode_aclas"]

_LINE = re.compile(r"^(ST|US|OL),(GS|NT),([+-]) *(\d{1,6}(?:\.\d{1,4})?|[ .\-O L]*) *(kg|g)$")


def split_aclas(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Whole lines (ending in LF) and the unfinished tail."""
    *lines, tail = buffer.split(b"\n")
    return [line.rstrip(b"\r") for line in lines if line.strip()], tail


def parse_aclas(frame: bytes) -> Reading:
    try:
        text = frame.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ScaleFault(f"unreadable ACLAS frame {frame!r}") from None
    match = _LINE.match(text)
    if not match:
        raise ScaleFault(f"unreadable ACLAS frame {frame!r}")
    state, mode, sign, number, unit = match.groups()
    if state == "OL":
        return Reading(weight_g=0, stable=False, net=mode == "NT", over_capacity=True)
    if not number or not number[0].isdigit():
        raise ScaleFault(f"ACLAS frame without a weight {frame!r}")
    whole, _, decimals = number.partition(".")
    grams = int(whole) * 1000 + int((decimals + "000")[:3]) if unit == "kg" else int(whole)
    grams = -grams if sign == "-" else grams
    return Reading(weight_g=grams, stable=state == "ST", net=mode == "NT",
                   under_zero=grams < 0)


def encode_aclas(grams: int, *, stable: bool = True, net: bool = False,
                 overload: bool = False) -> bytes:
    """The line an ACLAS scale sends (used by the tests' scale stand-in)."""
    state = "OL" if overload else ("ST" if stable else "US")
    number = "---.---" if overload else f"{abs(grams) / 1000:07.3f}"
    sign = "-" if grams < 0 else "+"
    return f"{state},{'NT' if net else 'GS'},{sign}{number}kg\r\n".encode("ascii")


ACLAS = ContinuousProtocol("aclas", split_aclas, parse_aclas, has_stability_flag=True,
                           default_settings=SerialSettings(9600, "N"))
