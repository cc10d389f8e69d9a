"""Scales: one small interface, several ways to get a weight.

``Scale.read()`` gives a ``Reading``; ``take_weight`` turns it into grams for the cart and
refuses what a trading scale must not use (in motion, below the minimum, over capacity).
Implementations: Mettler Toledo 8217 over a serial port, a simulated scale (tests, demo),
and manual entry when no scale is attached.
"""

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

__all__ = [
    "BelowMinimum", "OverCapacity", "Reading", "Scale", "ScaleError", "ScaleFault",
    "UnderZero", "Unstable", "take_weight", "ManualScale", "parse_weight_text",
    "SimulatedScale", "open_scale",
]


def open_scale(spec: str) -> Scale:
    """``manual``, ``simulated`` or ``mettler:/dev/ttyUSB0`` (the ``--scale`` option)."""
    kind, _, where = spec.partition(":")
    if kind == "manual":
        return ManualScale()
    if kind == "simulated":
        return SimulatedScale()
    if kind == "mettler" and where:
        from .mettler_8217 import Mettler8217Scale

        return Mettler8217Scale.open(where)
    raise ValueError(f"unknown scale {spec!r}: use manual, simulated or mettler:/dev/ttyX")
