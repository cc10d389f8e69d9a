"""The trading day: where it starts, what it took, and the end-of-day (Z) report.

A market day is a local calendar day (the terminal's time zone), because that is the day
the vendor closes and the manager settles.
"""

from __future__ import annotations

from datetime import datetime

__all__ = ["day_start_ms"]


def day_start_ms(now_ms: int) -> int:
    """Epoch ms of local midnight at the start of the day containing ``now_ms``."""
    local = datetime.fromtimestamp(now_ms / 1000).astimezone()
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return int(midnight.timestamp()) * 1000


