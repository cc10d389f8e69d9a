"""The scale interface and the rule for which readings may be charged for.

A trading scale's weight may only be used when it is stable, not below zero, not over
capacity and not below the minimum load (a legal-for-trade scale is not accurate enough
under about 20 divisions). Refusals are exceptions whose message can be shown as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Reading", "Scale", "ScaleError", "Unstable", "BelowMinimum", "UnderZero",
           "OverCapacity", "ScaleFault", "take_weight", "DEFAULT_MINIMUM_G"]

#: 20 divisions of 2 g: the usual minimum load of a 15 kg retail scale.
DEFAULT_MINIMUM_G = 40


class ScaleError(RuntimeError):
    """A reading that must not be used, or a scale that does not answer.

    ``code`` names the message for screens that speak other languages (the terminal UI's
    strings table has a ``scale_*`` entry per code); ``values`` fill its placeholders. The
    English message stays the exception's text, for logs and the CLI.
    """

    default_code = "scale_error"

    def __init__(self, message: str, *, code: str | None = None, **values: object) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.values = values


class Unstable(ScaleError):
    default_code = "scale_unstable"


class BelowMinimum(ScaleError):
    default_code = "scale_below_minimum"


class UnderZero(ScaleError):
    default_code = "scale_under_zero"


class OverCapacity(ScaleError):
    default_code = "scale_over_capacity"


class ScaleFault(ScaleError):
    default_code = "scale_fault"


@dataclass(frozen=True, slots=True)
class Reading:
    """``weight_g`` is net of tare when ``net``; ``stable`` is false while the load moves."""

    weight_g: int
    stable: bool = True
    net: bool = False
    under_zero: bool = False
    over_capacity: bool = False


class Scale(Protocol):
    def read(self) -> Reading: ...

    def zero(self) -> None: ...

    def tare(self) -> None: ...

    def clear_tare(self) -> None: ...

    def close(self) -> None: ...


def take_weight(scale: Scale, minimum_g: int = DEFAULT_MINIMUM_G) -> int:
    """Grams to put in the cart, or a ScaleError saying why not."""
    reading = scale.read()
    if reading.over_capacity:
        raise OverCapacity("the load is over the scale's capacity")
    if reading.under_zero or reading.weight_g < 0:
        raise UnderZero("the scale reads below zero: zero it with the platter empty")
    if not reading.stable:
        raise Unstable("the weight is still moving: wait until it settles")
    if reading.weight_g < minimum_g:
        raise BelowMinimum(f"{reading.weight_g} g is below the scale's minimum of {minimum_g} g",
                           grams=reading.weight_g, minimum=minimum_g)
    return reading.weight_g
