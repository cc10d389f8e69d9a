"""Notification retry schedules: how long to wait before each delivery attempt.

A schedule is a tuple of delays in seconds; delay ``i`` is waited before attempt ``i + 1``
(counted from the payment for the first, from the previous attempt after that). When every
delay is used up the notification is given up. The named schedules are the published ones,
so a gateway can be tested against the real cadence; the default is compressed for local use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NAMED_SCHEDULES", "DEFAULT_SCHEDULE", "parse_schedule", "describe_schedule"]

_MIN = 60
_HOUR = 3600

#: WeChat Pay v3: first notification at once, then 15 retries 15s/15s/30s/3m/10m/20m/30m/
#: 30m/30m/60m/3h/3h/3h/6h/6h (24 h 4 min in all).
WECHAT_SCHEDULE = (0, 15, 15, 30, 3 * _MIN, 10 * _MIN, 20 * _MIN, 30 * _MIN, 30 * _MIN,
                   30 * _MIN, 60 * _MIN, 3 * _HOUR, 3 * _HOUR, 3 * _HOUR, 6 * _HOUR, 6 * _HOUR)

#: Alipay: 8 notifications within 25 h: at once, then 4m/10m/10m/1h/2h/6h/15h.
ALIPAY_SCHEDULE = (0, 4 * _MIN, 10 * _MIN, 10 * _MIN, _HOUR, 2 * _HOUR, 6 * _HOUR, 15 * _HOUR)

DEFAULT_SCHEDULE = (0, 1, 2, 4, 8, 15, 30)

NAMED_SCHEDULES: dict[str, tuple[int, ...]] = {
    "wechat": WECHAT_SCHEDULE,
    "alipay": ALIPAY_SCHEDULE,
    "compressed": DEFAULT_SCHEDULE,
}


def parse_schedule(text: Any) -> tuple[float, ...]:
    """``"0,1,2.5"`` or a name in NAMED_SCHEDULES -> delays in seconds.

    Raises ValueError naming the bad part: a schedule needs at least one delay, none negative.
    """
    if isinstance(text, (list, tuple)):
        parts = [str(item) for item in text]
    else:
        name = str(text).strip().lower()
        if name in NAMED_SCHEDULES:
            return tuple(float(delay) for delay in NAMED_SCHEDULES[name])
        parts = [part.strip() for part in name.split(",")]
    delays: list[float] = []
    for part in parts:
        try:
            delay = float(part)
        except ValueError:
            raise ValueError(f"bad delay {part!r} in notify schedule; expected seconds or one "
                             f"of {', '.join(NAMED_SCHEDULES)}") from None
        if delay < 0 or delay != delay:
            raise ValueError(f"delay {part!r} in notify schedule must be >= 0")
        delays.append(delay)
    if not delays:
        raise ValueError("notify schedule needs at least one delay")
    return tuple(delays)


def describe_schedule(delays: tuple[float, ...]) -> str:
    """Human form for logs: ``"7 attempts over 60s"``."""
    return f"{len(delays)} attempts over {sum(delays):g}s"
