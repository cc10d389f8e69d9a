"""The interface every payment channel adapter implements (sandbox, Alipay, WeChat Pay).

The gateway's payment logic speaks only this interface; an adapter turns it into one
platform's signed HTTP calls and verifies that platform's notifications. ``Transport`` is
the one seam for tests where the real platform cannot exist: a function from a prepared
request to a response, used by the Alipay and WeChat Pay adapters with fixtures made from
our own test keys. The sandbox adapter uses a real HTTP transport to a real process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "ChannelError", "ChannelSignatureError", "ChannelOrder", "ChannelOrderCreated",
    "ChannelOrderStatus", "ChannelNotification", "ChannelRefund", "HttpRequest",
    "HttpResponse", "Transport", "PaymentChannel", "CHANNEL_STATUSES",
]

#: Normalised statuses every adapter maps its platform's own into.
CHANNEL_STATUSES = ("pending", "paid", "closed", "refunded", "failed")


class ChannelError(Exception):
    """The platform refused or failed a call. ``code`` is the platform's own code.

    ``definite`` is True only for a refusal the platform itself signed: then nothing
    happened there. Anything else (a timeout, a reset connection, a 5xx, an answer we could
    not read) may have happened or not, and money-moving calls must find out by querying.
    """

    def __init__(self, code: str, message: str, *, definite: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.definite = definite


class ChannelSignatureError(ChannelError):
    """A response or notification whose signature does not verify: never act on it."""

    def __init__(self, message: str = "signature does not verify") -> None:
        super().__init__("bad_signature", message)


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes = b""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


#: Sends one request and returns the response; raises OSError-like errors on network failure.
Transport = Callable[[HttpRequest], HttpResponse]


@dataclass(frozen=True)
class ChannelOrder:
    out_trade_no: str
    amount_fen: int
    currency: str
    subject: str
    notify_url: str
    return_url: str
    expires_at_ms: int | None = None
    payer_app: str | None = None


@dataclass(frozen=True)
class ChannelOrderCreated:
    out_trade_no: str
    channel_order_id: str
    checkout_url: str


@dataclass(frozen=True)
class ChannelOrderStatus:
    out_trade_no: str
    status: str  # one of CHANNEL_STATUSES
    amount_fen: int
    channel_txn_id: str | None = None
    payer_id: str | None = None
    paid_at_ms: int | None = None
    refunded_fen: int = 0


@dataclass(frozen=True)
class ChannelNotification:
    """A verified notification. ``notify_id`` is the platform's id for idempotency."""

    notify_id: str
    out_trade_no: str
    status: str  # one of CHANNEL_STATUSES
    amount_fen: int
    channel_txn_id: str | None
    payer_id: str | None
    paid_at_ms: int | None
    raw: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ChannelRefund:
    out_refund_no: str
    out_trade_no: str
    amount_fen: int
    status: str  # "success" | "processing" | "failed"
    channel_refund_id: str | None = None


class PaymentChannel(Protocol):
    """What the gateway needs from a payment platform."""

    name: str

    def create_order(self, order: ChannelOrder) -> ChannelOrderCreated: ...

    def query_order(self, out_trade_no: str) -> ChannelOrderStatus: ...

    def close_order(self, out_trade_no: str) -> None: ...

    def refund(self, out_trade_no: str, out_refund_no: str, amount_fen: int,
               total_fen: int, reason: str) -> ChannelRefund:
        """Repeating ``out_refund_no`` must be idempotent at the platform."""
        ...

    def query_refund(self, out_trade_no: str, out_refund_no: str,
                     amount_fen: int) -> ChannelRefund:
        """What became of ``out_refund_no``; ``ChannelError('unknown_refund',
        definite=True)`` when the platform never received it."""
        ...

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> ChannelNotification:
        """Verify and parse; raise ChannelSignatureError if the signature does not verify."""
        ...

    def acknowledge(self, ok: bool) -> tuple[int, bytes, Mapping[str, str]]:
        """The HTTP answer the platform expects, so it stops (ok) or keeps retrying."""
        ...
