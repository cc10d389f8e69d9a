"""Simulated shoppers that behave like real phones on the network.

Each shopper connects from its own loopback address (all of 127.0.0.0/8 is loopback on
Linux, so binding the source address is enough), as each phone in a market has its own
address or at least its own share of one, and each honours ``Retry-After`` on a 429 the
way the shopper's page does: wait that long, try again. Used by ``tracepay demo`` and by
the tests that load the gateway the way a market does.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter

__all__ = ["SimulatedShopper", "loopback_address", "source_bound_session"]

#: How many times a shopper tries one step again after a 429 before giving up.
RETRIES_AFTER_429 = 3
#: The longest ``Retry-After`` a shopper waits out (a phone's user gives up after that).
LONGEST_WAIT_S = 30.0


def loopback_address(index: int) -> str:
    """The ``index``-th shopper's address: 127.0.1.1, 127.0.1.2, ... (never 127.0.0.1,
    the services' own address, and never a .0 or .255 last octet)."""
    if index < 0:
        raise ValueError("index must be >= 0")
    last = 1 + index % 254
    middle = index // 254
    return f"127.{1 + middle // 256 % 254}.{middle % 256}.{last}"


class _SourceAddressAdapter(HTTPAdapter):
    """urllib3's pools with every connection bound to one local address."""

    def __init__(self, source_address: str, **kwargs: Any) -> None:
        self._source = (source_address, 0)
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = self._source
        super().init_poolmanager(*args, **kwargs)


def source_bound_session(source_address: str | None) -> requests.Session:
    """A session whose connections leave from ``source_address`` (None: the default)."""
    session = requests.Session()
    session.trust_env = False  # loopback only: never through a proxy from the environment
    if source_address:
        adapter = _SourceAddressAdapter(source_address)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    return session


def retry_after_s(response: requests.Response) -> float:
    """``Retry-After`` in seconds (delta-seconds form; 1 when absent or unreadable)."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0


class SimulatedShopper:
    """A shopper's phone, over HTTP only: open the QR URL, follow Pay, confirm at checkout."""

    def __init__(self, payer_id: str, source_address: str | None = None) -> None:
        self.payer_id = payer_id
        self.source_address = source_address
        self.session = source_bound_session(source_address)
        self.waited_s = 0.0
        self.refusals = 0

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One step, tried again after each 429 for as long as the server asks."""
        for attempt in range(RETRIES_AFTER_429 + 1):
            response = self.session.request(method, url, timeout=15, **kwargs)
            if response.status_code != 429 or attempt == RETRIES_AFTER_429:
                return response
            self.refusals += 1
            wait = retry_after_s(response)
            if wait > LONGEST_WAIT_S:
                return response
            self.waited_s += wait
            time.sleep(wait)
        raise AssertionError("unreachable")

    def pay(self, qr_url: str) -> dict[str, Any]:
        """Scan and pay; ``{"ok", "step", "status", ...}`` saying where it stopped."""
        try:
            return self._pay(qr_url)
        except requests.RequestException as exc:
            return {"ok": False, "step": "network", "status": None,
                    "reason": f"{type(exc).__name__}: {exc}"[:300]}
        finally:
            self.session.close()

    def _pay(self, qr_url: str) -> dict[str, Any]:
        landing = self._send("GET", qr_url, headers={"Accept": "application/json"})
        if landing.status_code != 200:
            return {"ok": False, "step": "scan", "status": landing.status_code,
                    "reason": _reason(landing), "refusals": self.refusals}
        checkout_url = landing.json()["checkout_url"]
        paid = self._send("POST", f"{checkout_url.rstrip('/')}/pay",
                          data={"payer_id": self.payer_id},
                          headers={"Accept": "application/json"}, allow_redirects=False)
        ok = paid.status_code in (200, 201, 303)
        outcome: dict[str, Any] = {"ok": ok, "step": "pay", "status": paid.status_code,
                                   "payment_id": landing.json().get("payment_id"),
                                   "refusals": self.refusals}
        if not ok:
            outcome["reason"] = _reason(paid)
        return outcome


def _reason(response: requests.Response) -> str:
    """The server's own words: the JSON error's code and message, or the body's start."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and "error" in body:
        return f"{body['error']}: {body.get('message', '')}"[:300]
    return str(body)[:300]
