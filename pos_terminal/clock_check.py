"""Is the terminal's clock right? Compared with the gateway's, which judges every QR.

A dynamic QR carries its issue time, and the gateway refuses a code issued more than
``qr_clock_skew_s`` (60 s) in its future and one older than ``qr_lifetime_s`` (300 s). A
terminal whose clock drifted shows codes that no phone can pay, and the vendor cannot see
why. So the terminal asks the gateway for its time (``GET /healthz`` answers
``time_ms``), estimates the offset from the middle of the round trip, warns the vendor
past ``WARN_S`` and refuses to issue QR codes past ``REFUSE_S`` (cash still works).
Without an answer nothing is known and nothing is refused: an offline stall keeps
selling.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

__all__ = ["ClockCheck", "ClockStatus", "WARN_S", "REFUSE_S", "measure_offset_s"]

log = logging.getLogger(__name__)

#: Off by more than this: the vendor is told to set the clock.
WARN_S = 60.0
#: Off by more than this: no QR is issued (it would be refused or expire early).
REFUSE_S = 180.0
#: A measurement whose round trip took longer than this says too little.
MAX_ROUND_TRIP_S = 5.0


@dataclass(frozen=True)
class ClockStatus:
    """``state`` is ``unknown`` (never measured), ``ok``, ``warn`` or ``refuse``;
    ``offset_s`` is gateway time minus terminal time."""

    state: str
    offset_s: float | None = None
    measured_at: float | None = None

    @property
    def message(self) -> str:
        if self.offset_s is None or self.state == "ok":
            return ""
        direction = "behind" if self.offset_s > 0 else "ahead of"
        return (f"the terminal's clock is {abs(self.offset_s):.0f} s {direction} the "
                "gateway's: set the clock")


def classify(offset_s: float | None, warn_s: float = WARN_S,
             refuse_s: float = REFUSE_S) -> str:
    if offset_s is None:
        return "unknown"
    if abs(offset_s) > refuse_s:
        return "refuse"
    return "warn" if abs(offset_s) > warn_s else "ok"


def measure_offset_s(gateway_url: str, *, clock: Callable[[], float] = time.time,
                     timeout: float = 5.0) -> float | None:
    """Gateway time minus ours, in seconds; None when it cannot be told."""
    started = clock()
    try:
        response = requests.get(f"{gateway_url.rstrip('/')}/healthz", timeout=timeout)
        gateway_ms = response.json().get("time_ms")
    except (requests.RequestException, ValueError, AttributeError) as exc:
        log.info("clock check: no answer from the gateway (%s)", exc.__class__.__name__)
        return None
    finished = clock()
    if not isinstance(gateway_ms, int) or finished - started > MAX_ROUND_TRIP_S:
        return None
    return gateway_ms / 1000 - (started + finished) / 2


class ClockCheck:
    """The last measured offset, re-measured now and then by the terminal's own thread."""

    def __init__(self, gateway_url: str, *, clock: Callable[[], float] = time.time,
                 warn_s: float = WARN_S, refuse_s: float = REFUSE_S) -> None:
        self.gateway_url = gateway_url
        self._clock = clock
        self.warn_s = warn_s
        self.refuse_s = refuse_s
        self._lock = threading.Lock()
        self._status = ClockStatus("unknown")

    def measure(self) -> ClockStatus:
        offset = measure_offset_s(self.gateway_url, clock=self._clock)
        if offset is None:
            return self.status()
        status = ClockStatus(classify(offset, self.warn_s, self.refuse_s), offset,
                             self._clock())
        if status.state != "ok":
            log.warning("%s", status.message)
        with self._lock:
            self._status = status
        return status

    def status(self) -> ClockStatus:
        with self._lock:
            return self._status
