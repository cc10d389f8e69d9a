"""Scales: one small interface, several ways to get a weight.

``Scale.read()`` gives a ``Reading``; ``take_weight`` turns it into grams for the cart and
refuses what a trading scale must not use (in motion, below the minimum, over capacity).
Implementations: Mettler Toledo 8217 over a serial port (asked for each weight), 大华/Dahua
and 顶尖/ACLAS in continuous output (``continuous.py``), a simulated scale (tests, demo), and
manual entry when no scale is attached.
"""

from typing import TYPE_CHECKING

from .base import (
    BelowMinimum,
    OverCapacity,
    Reading,
    Scale,
    ScaleError,
    ScaleFault,
    UnderZero,
    Unstable,
    take_weight,
)
from .manual import ManualScale, parse_weight_text
from .simulated import SimulatedScale

if TYPE_CHECKING:  # serial is imported only for a serial scale
    from .continuous import ContinuousProtocol

__all__ = [
    "BelowMinimum", "OverCapacity", "Reading", "Scale", "ScaleError", "ScaleFault",
    "UnderZero", "Unstable", "take_weight", "ManualScale", "parse_weight_text",
    "SimulatedScale", "open_scale", "SERIAL_PROTOCOLS",
]


SERIAL_PROTOCOLS = ("mettler", "dahua", "aclas")


def open_scale(spec: str) -> Scale:
    """``manual``, ``simulated`` or ``PROTOCOL:DEVICE[:BAUD[:PARITY]]`` (the ``--scale``
    option or ``scale`` in stall.json): ``mettler:/dev/ttyUSB0``, ``dahua:/dev/ttyUSB0:9600``,
    ``aclas:/dev/ttyS1:4800:E``. Baud and parity default to the protocol's usual ones."""
    kind, _, rest = spec.partition(":")
    if kind == "manual":
        return ManualScale()
    if kind == "simulated":
        return SimulatedScale()
    device, _, line = rest.partition(":")
    if kind == "mettler" and device and not line:
        from .mettler_8217 import Mettler8217Scale

        return Mettler8217Scale.open(device)
    if kind in ("dahua", "aclas") and device:
        from .continuous import ContinuousScale, SerialSettings

        protocol = _continuous_protocol(kind)
        baud, _, parity = line.partition(":")
        settings = SerialSettings(
            int(baud) if baud.isdigit() else protocol.default_settings.baudrate,
            (parity or protocol.default_settings.parity).upper())
        if baud and not baud.isdigit():
            raise ValueError(f"scale {spec!r}: baud rate {baud!r} is not a number")
        return ContinuousScale.open(device, protocol, settings)
    raise ValueError(f"unknown scale {spec!r}: use manual, simulated, mettler:/dev/ttyX or "
                     "dahua|aclas:/dev/ttyX[:BAUD[:PARITY]]")


def _continuous_protocol(kind: str) -> "ContinuousProtocol":
    if kind == "dahua":
        from .dahua import DAHUA

        return DAHUA
    from .aclas import ACLAS

    return ACLAS
