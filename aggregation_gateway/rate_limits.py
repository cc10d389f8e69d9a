"""The gateway's rate limits, keyed where abuse is, counted in one store for every worker.

* a QR token: a replayed or scraped code is refused after a few scans, whoever sends it;
* a device: only codes whose MAC verified count, so nobody can spend a stall's budget by
  forging codes in its name, while a runaway terminal cannot flood the platform;
* a client address: only a high flood ceiling (a whole market's phones share one Wi-Fi or
  carrier NAT address), plus a budget of *refused* scans (forged or expired codes): past
  it a refused code gets a bare 429 instead of its reason, genuine codes still pass;
* manager logins: failures per address, per account and address, and per account; the
  per-account budget, once spent, still lets an address with no failure against that
  account try, so an attacker can slow guessing but never lock the real manager out.

The counting is the ``limits`` library's (the engine under flask-limiter, from the same
maintainers): its fixed-window strategy over a storage every worker shares. It is called
with explicit keys at the points where each key is known (the token before the checks,
the device only after its MAC verified), which a per-route decorator cannot express, and
without flask-limiter's per-request hooks, which every request would pay for. Limits are
its strings ("30/minute"); an empty string disables one. Every refusal is a 429 with
``retry_after_s`` in the body and a ``Retry-After`` header.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from market_protocol import ApiError

from . import limit_store  # noqa: F401 - registers the tracepay+sqlite/postgresql schemes
from .database import is_postgres_url

__all__ = ["GatewayLimits", "LIMIT_NAMES"]

LIMIT_NAMES = ("scan_limit_per_address", "scan_limit_per_token", "scan_limit_per_device",
               "scan_refusals_per_address", "claim_limit_per_address",
               "notify_limit_per_address", "login_failures_per_address",
               "login_failures_per_account_address", "login_failures_per_account")


def storage_uri(settings: Mapping[str, Any]) -> str:
    """The configured store; else the gateway's PostgreSQL (shared by every gateway on
    it), or a SQLite file in the data directory."""
    uri = settings.get("rate_limit_storage_uri") or ""
    if uri:
        return uri
    if is_postgres_url(settings.get("database_url")):
        return "tracepay+postgresql://" + settings["database_url"].split("://", 1)[1]
    return f"tracepay+sqlite:///{Path(settings['data_dir']).resolve()}/rate_limits.sqlite"


class GatewayLimits:
    """One per app (per worker); all of them count in the same storage."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self._strategy = FixedWindowRateLimiter(storage_from_string(storage_uri(settings)))
        self.items: dict[str, RateLimitItem | None] = {
            name: parse(settings[name]) if settings.get(name) else None for name in LIMIT_NAMES}

    def close(self) -> None:
        """Release the store's connections (PostgreSQL) when an app is shut down."""
        close = getattr(self._strategy.storage, "close", None)
        if close is not None:
            close()

    def retry_after_s(self, name: str, *keys: str) -> int:
        item = self.items[name]
        if item is None:
            return 0
        reset = self._strategy.get_window_stats(item, name, *keys).reset_time
        return max(1, math.ceil(reset - time.time()))

    def refuse(self, name: str, *keys: str, message: str = "too many requests; slow down"
               ) -> ApiError:
        retry = self.retry_after_s(name, *keys)
        return ApiError(429, "rate_limited", f"{message} (try again in {retry} s)",
                        retry_after_s=retry)

    def hit(self, name: str, *keys: str) -> None:
        """Count one request; 429 when the limit ``name`` for ``keys`` is spent."""
        item = self.items[name]
        if item is not None and not self._strategy.hit(item, name, *keys):
            raise self.refuse(name, *keys)

    def count(self, name: str, *keys: str) -> None:
        """Count one event (a refusal, a failure) without refusing anything now."""
        item = self.items[name]
        if item is not None:
            self._strategy.hit(item, name, *keys)

    def spent(self, name: str, *keys: str) -> bool:
        item = self.items[name]
        return item is not None and not self._strategy.test(item, name, *keys)

    def used(self, name: str, *keys: str) -> int:
        item = self.items[name]
        if item is None:
            return 0
        return item.amount - self._strategy.get_window_stats(item, name, *keys).remaining

    # -- scans ---------------------------------------------------------------------------
    def before_scan(self, address: str, token: str) -> None:
        """Before the code is checked: the address's flood ceiling and the code's own budget."""
        self.hit("scan_limit_per_address", address)
        self.hit("scan_limit_per_token", token[-64:])

    def scan_refused(self, address: str) -> None:
        """A code from ``address`` failed its checks. Past the budget of refusals the answer
        is a bare 429 instead of the reason (a scraper learns nothing more), while codes
        that verify are still served: one scraper behind a market's shared address must
        not turn that market's shoppers away."""
        if self.spent("scan_refusals_per_address", address):
            raise self.refuse("scan_refusals_per_address", address,
                              message="too many refused codes from this address")
        self.count("scan_refusals_per_address", address)

    def verified_scan(self, device_id: str) -> None:
        self.hit("scan_limit_per_device", device_id)

    # -- manager logins ------------------------------------------------------------------
    def before_login(self, username: str, address: str) -> None:
        """429 (without checking the password) when this attempt may not be made."""
        message = "too many failed logins; wait a little"
        if self.spent("login_failures_per_address", address):
            raise self.refuse("login_failures_per_address", address, message=message)
        if self.spent("login_failures_per_account_address", username, address):
            raise self.refuse("login_failures_per_account_address", username, address,
                              message=message)
        if (self.spent("login_failures_per_account", username)
                and self.used("login_failures_per_account_address", username, address)):
            raise self.refuse("login_failures_per_account", username, message=message)

    def login_failed(self, username: str, address: str) -> None:
        self.count("login_failures_per_address", address)
        self.count("login_failures_per_account_address", username, address)
        self.count("login_failures_per_account", username)
