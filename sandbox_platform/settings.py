"""The sandbox platform's settings, declared once (see ``market_protocol.settings``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from market_protocol.settings import Setting, load_settings, parse_bool

from .notify_schedule import parse_schedule

__all__ = ["SERVICE", "SETTINGS", "resolve_settings"]

SERVICE = "sandbox_platform"


def _fee_rate(text: Any) -> Decimal:
    try:
        rate = Decimal(str(text))
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal fee rate: {text!r}") from exc
    if not Decimal(0) <= rate < Decimal(1):
        raise ValueError(f"fee rate must be in [0, 1), found {rate}")
    return rate


def _hosts(text: Any) -> tuple[str, ...]:
    if isinstance(text, (list, tuple)):
        return tuple(str(item) for item in text)
    return tuple(part.strip() for part in str(text).split(",") if part.strip())


def _positive_int(text: Any) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"must be a positive integer, found {value}")
    return value


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "127.0.0.1", "Interface to listen on."),
    Setting("port", 8510, "TCP port to listen on.", int),
    Setting("data_dir", "var/sandbox-platform", "Directory for the SQLite file and the key."),
    Setting("public_url", None, "Base URL shoppers reach the checkout at (default: the "
            "request's own host)."),
    Setting("notify_schedule", "0,1,2,4,8,15,30", "Seconds to wait before each notification "
            "attempt, comma separated, or a named schedule: 'wechat' or 'alipay'.",
            parse_schedule),
    Setting("notify_timeout_seconds", 5, "HTTP timeout of one notification attempt.",
            _positive_int),
    Setting("allowed_notify_hosts", "127.0.0.1,localhost,::1", "Hosts a notify_url may "
            "name; the sandbox never sends traffic off this machine.", _hosts),
    Setting("order_ttl_seconds", 900, "Seconds an unpaid order stays payable.", _positive_int),
    Setting("fee_rate", "0.006", "Fee per paid order for the daily statement (0.006 = 0.6%), "
            "rounded half-up to the fen.", _fee_rate),
    Setting("statement_timezone", "UTC", "Time zone whose calendar days the daily "
            "statements cover (IANA name)."),
    Setting("workers", 1, "HTTP worker processes (granian when > 1).", _positive_int),
    Setting("threads", 8, "Threads per HTTP worker.", _positive_int),
    Setting("allow_faults", False, "Let tests stage failures (POST /sandbox/faults), such "
            "as a refund committed whose answer is lost. Never outside tests.", parse_bool),
)


def resolve_settings(overrides: Mapping[str, Any] | None = None, *,
                     config_file: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Defaults < config file < ``TRACEPAY_SANDBOX_PLATFORM_*`` < ``overrides``."""
    return load_settings(SETTINGS, SERVICE, config_file=config_file, overrides=overrides)
