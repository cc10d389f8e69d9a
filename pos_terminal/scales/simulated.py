"""A scale in memory that behaves like a real one: zero, tare, motion, capacity.

Tests and the demo put goods on it (``place``), shake it (``settle=False``) and press its
buttons through the same ``Scale`` interface the serial scales implement.
"""

from __future__ import annotations

import threading

from .base import Reading, ScaleFault

__all__ = ["SimulatedScale"]


class SimulatedScale:
    def __init__(self, capacity_g: int = 15_000, division_g: int = 2) -> None:
        self.capacity_g = capacity_g
        self.division_g = division_g
        self._load_g = 0
        self._zero_g = 0
        self._tare_g = 0
        self._stable = True
        self._lock = threading.Lock()

    def place(self, grams: int, *, settle: bool = True) -> None:
        """Put ``grams`` on the platter (replacing what was there)."""
        with self._lock:
            self._load_g = grams
            self._stable = settle

    def settle(self) -> None:
        with self._lock:
            self._stable = True

    def _gross(self) -> int:
        return self._load_g - self._zero_g

    def read(self) -> Reading:
        with self._lock:
            gross = self._gross()
            net = gross - self._tare_g
            half_up = (abs(net) + self.division_g // 2) // self.division_g * self.division_g
            rounded = half_up if net >= 0 else -half_up
            return Reading(weight_g=rounded, stable=self._stable, net=self._tare_g != 0,
                           under_zero=gross < 0, over_capacity=gross > self.capacity_g)

    def zero(self) -> None:
        """Capture zero: only when stable, near zero and no tare is set (as real scales do)."""
        with self._lock:
            if not self._stable or self._tare_g:
                raise ScaleFault("zero needs a stable scale and no tare",
                                 code="scale_zero_needs_stable")
            if abs(self._load_g) > self.capacity_g * 0.02 + self._zero_g:
                raise ScaleFault("too far from zero: empty the platter first",
                                 code="scale_far_from_zero")
            self._zero_g = self._load_g

    def tare(self) -> None:
        """Tare the container on the platter (the shopper's own bag)."""
        with self._lock:
            if not self._stable:
                raise ScaleFault("tare needs a stable weight", code="scale_needs_stable")
            if self._gross() <= 0:
                raise ScaleFault("nothing on the platter to tare", code="scale_nothing_to_tare")
            self._tare_g = self._gross()

    def clear_tare(self) -> None:
        with self._lock:
            self._tare_g = 0

    def close(self) -> None:
        pass
