"""The scale's part of the vendor screen: a live reading, zero and tare, tapped weights.

A mixin of ``VendorApp``. A serial scale can take tens of ms to answer, so the reading is
watched off the UI thread; one lock keeps the watcher and a key tap from talking over
each other on the line.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from kivy.clock import Clock

from ..scales import Scale, ScaleError, SimulatedScale, take_weight
from .messages import scale_notice
from .strings import text
from .vendor_binding import TerminalBinding

__all__ = ["ScaleActions"]


class ScaleActions(TerminalBinding):
    """Scale actions; expects the attributes ``VendorApp`` defines."""

    scale: Scale | None
    scale_text: str
    _scale_lock: threading.Lock

    if TYPE_CHECKING:
        def refresh(self) -> None: ...

    def _scale_weight(self) -> int | None:
        """Grams for a tapped key; ScaleError (a RuntimeError) says why a reading is refused."""
        if self.scale is None:
            return None
        with self._scale_lock:
            return take_weight(self.scale)

    def _watch_scale(self) -> None:
        """Read the scale off the UI thread (a serial scale can take tens of ms to answer)."""
        while self.scale is not None:
            try:
                with self._scale_lock:
                    reading = self.scale.read()
                key = "scale_weight" if reading.stable else "scale_moving"
                label = text(key, self.model.lang, grams=reading.weight_g)
            except ScaleError as exc:
                label = scale_notice(exc).render(self.model.lang)
            Clock.schedule_once(lambda dt, label=label: setattr(self, "scale_text", label), 0)
            time.sleep(0.3)

    def scale_zero(self) -> None:
        self._scale_button("zero")

    def scale_tare(self) -> None:
        self._scale_button("tare")

    def _scale_button(self, action: str) -> None:
        if self.scale is None:
            return
        try:
            with self._scale_lock:
                getattr(self.scale, action)()
            self.model.notice = None
        except ScaleError as exc:
            self.model.notice = scale_notice(exc)
        self.refresh()

    def _scale_place(self, request: dict[str, Any]) -> dict[str, Any]:
        """Control op for the simulated scale: put goods on the platter."""
        if not isinstance(self.scale, SimulatedScale):
            raise ValueError("scale_place needs the simulated scale (--scale simulated)")
        self.scale.place(int(request["grams"]), settle=bool(request.get("settle", True)))
        return {"ok": True}
