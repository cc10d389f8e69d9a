"""What the bridge's route blueprints share: the service behind the app and the lookups
several routes need (admin check, a trade or lot by its code, a lot's Digital Link).

``create_app`` stores one :class:`BridgeContext` in ``app.extensions``; a route reaches it
with :func:`bridge` (the Flask application-context pattern, instead of closures over the
service inside one factory function).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, request

from market_protocol.http_errors import ApiError

from .digital_link import lot_url

__all__ = ["BridgeContext", "bridge", "EXTENSION"]

EXTENSION = "tracepay.bridge"
T = TypeVar("T")


class _Ledger:
    """The service's ledger as of this request (a reader service may reopen it)."""

    def __init__(self, service: Any) -> None:
        self._service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service.ledger, name)


class BridgeContext:
    def __init__(self, service: Any) -> None:
        self.service = service
        self.store = service.store
        self.ledger: Any = _Ledger(service)

    def write(self, change: Callable[[Any], T]) -> T:
        """Run ``change(intake)`` on the service's single writer and return its result.
        The writer thread is outside the request's app context, so ``change`` gets the
        intake as its argument instead of looking it up."""
        intake = self.service.intake
        return self.service.writer.call(lambda: change(intake))

    def admin(self) -> None:
        """Refuse the request unless it carries the admin token (when one is set)."""
        if not self.service.check_admin(request.headers.get("Authorization")):
            raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <admin token>'")

    def trade_or_404(self, code: str) -> dict[str, Any]:
        public = self.store.trade_by_code(code) if len(code) <= 64 else None
        if public is None:
            raise ApiError(404, "unknown_trace_code", f"no trade has trace code {code!r}")
        return public

    def lot_ids_or_404(self, lot: str) -> list[str]:
        lot_ids = self.store.lot_ids_for(lot) if len(lot) <= 64 else []
        if not lot_ids:
            raise ApiError(404, "unknown_lot", f"no lot is called {lot!r}")
        return lot_ids

    def link_for(self, lot_id: str, product: str) -> str:
        return lot_url(self.service.public_url, lot_id,
                       self.service.catalogue().gtin_of(product))


def bridge() -> BridgeContext:
    """The bridge behind the current request's app."""
    return current_app.extensions[EXTENSION]
