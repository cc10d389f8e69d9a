"""Failures a test can ask the sandbox platform to stage, as real platforms have them.

The one that matters most for money: the platform commits a refund and then its answer is
lost (the caller times out, or gets a 5xx). A gateway that takes that for a refusal pays
the refund again under a new number. Off unless the platform runs with ``allow_faults``;
kept in memory per worker process (tests run one).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from market_protocol.http_errors import ApiError

__all__ = ["Fault", "FaultBoard", "REFUND_FAULTS"]

#: ``hang``: answer only after ``seconds`` (the caller has given up by then);
#: ``error_500``: answer 500 although the refund was committed.
REFUND_FAULTS = ("hang", "error_500")


@dataclass(frozen=True)
class Fault:
    kind: str
    seconds: float


class FaultBoard:
    """Staged faults by app id, each good for a number of requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refund: dict[str, list[Any]] = {}

    def stage(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_request", "body must be a JSON object")
        app_id, kind = body.get("app_id"), body.get("refund_answer")
        seconds, times = body.get("seconds", 0), body.get("times", 1)
        if not isinstance(app_id, str) or not app_id:
            raise ApiError(400, "invalid_request", "app_id is required")
        if kind not in REFUND_FAULTS:
            raise ApiError(400, "invalid_request",
                           f"refund_answer must be one of {', '.join(REFUND_FAULTS)}")
        if (not isinstance(seconds, int | float) or isinstance(seconds, bool)
                or not 0 <= seconds <= 120):
            raise ApiError(400, "invalid_request", "seconds must be from 0 to 120")
        if not isinstance(times, int) or isinstance(times, bool) or not 1 <= times <= 1000:
            raise ApiError(400, "invalid_request", "times must be from 1 to 1000")
        with self._lock:
            self._refund[app_id] = [Fault(kind, float(seconds)), times]
        return {"app_id": app_id, "refund_answer": kind, "seconds": seconds, "times": times}

    def take_refund_fault(self, app_id: str) -> Fault | None:
        """The fault staged for this app's next refund answer, used up by this call."""
        with self._lock:
            staged = self._refund.get(app_id)
            if not staged:
                return None
            staged[1] -= 1
            if staged[1] <= 0:
                del self._refund[app_id]
            return staged[0]
