"""HTTP reads from the gateway and the ledger bridge: the only I/O the pages do.

The consumer app owns no data. Every page is a view over the gateway's payment record or the
bridge's trace API (docs/protocol.md §4, §7), so a failure upstream is reported as what it
is -- not found, or not reachable right now -- and the page can say "try again" instead of
crashing on a shopper's flaky market network.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import quote

import requests

__all__ = ["Upstream", "UpstreamError", "UpstreamNotFound", "UpstreamUnavailable"]


class UpstreamError(Exception):
    """Base class: ``service`` is ``gateway`` or ``bridge``; ``detail`` is for the log."""

    def __init__(self, service: str, detail: str) -> None:
        super().__init__(f"{service}: {detail}")
        self.service = service
        self.detail = detail


class UpstreamNotFound(UpstreamError):
    """The upstream answered 404: the id is unknown (yet)."""


class UpstreamUnavailable(UpstreamError):
    """No usable answer: connection refused, timeout, 5xx or a body that is not JSON."""


_KEYS_TTL_S = 30.0


class Upstream:
    """Typed reads over one ``requests.Session`` per thread (waitress serves on threads)."""

    def __init__(self, gateway_url: str, bridge_url: str, timeout: float = 5.0) -> None:
        self.gateway_url = gateway_url.rstrip("/")
        self.bridge_url = bridge_url.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()
        self._keys: tuple[float, dict[str, Any]] | None = None

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["Accept"] = "application/json"
            self._local.session = session
        return session

    def _get(self, service: str, base: str, path: str) -> Any:
        url = base + path
        try:
            response = self._session().get(url, timeout=self.timeout)
        except requests.RequestException as exc:
            raise UpstreamUnavailable(service, f"GET {url}: {exc.__class__.__name__}") from exc
        if response.status_code == 404:
            raise UpstreamNotFound(service, f"GET {url}: 404")
        if response.status_code != 200:
            raise UpstreamUnavailable(service, f"GET {url}: HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise UpstreamUnavailable(service, f"GET {url}: body is not JSON") from exc

    def payment(self, payment_id: str) -> dict[str, Any]:
        """The gateway's public payment view (docs/protocol.md §4)."""
        return self._get("gateway", self.gateway_url, f"/v1/payments/{quote(payment_id, safe='')}")

    def trace(self, code: str) -> dict[str, Any]:
        """Record, upstream chain, recalls and inclusion proofs of one trace code (§7)."""
        return self._get("bridge", self.bridge_url, f"/v1/trace/{quote(code, safe='')}")

    def stock(self, merchant_id: str) -> dict[str, Any]:
        """A stall's stock on hand today and where it came from (§8, /stall page)."""
        path = f"/v1/stalls/{quote(merchant_id, safe='')}/stock"
        return self._get("bridge", self.bridge_url, path)

    def digital_link(self, gtin14: str, lot: str) -> dict[str, Any]:
        """The lot view of a GS1 Digital Link (404 unless the lot's product has that GTIN)."""
        return self._get("bridge", self.bridge_url,
                         f"/01/{quote(gtin14, safe='')}/10/{quote(lot, safe='')}")

    def epcis_for_lot(self, lot_id: str) -> dict[str, Any]:
        """The bridge's EPCIS 2.0 document of one lot, upstream and downstream."""
        return self._get("bridge", self.bridge_url, f"/v1/epcis?lot={quote(lot_id, safe='')}")

    def keys(self) -> dict[str, Any]:
        """The ledger's published signing keys, cached briefly: they change only on rotation."""
        now = time.monotonic()
        if self._keys is not None and now - self._keys[0] < _KEYS_TTL_S:
            return self._keys[1]
        keys = self._get("bridge", self.bridge_url, "/v1/keys")
        self._keys = (now, keys)
        return keys
