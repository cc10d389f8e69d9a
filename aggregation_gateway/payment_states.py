"""The payment state machine: pure, no I/O.

    created ──► pending ──► paid ──► partially_refunded ──► refunded
       │           │  └──► failed ──► paid (late)         ▲
       │           └─────► expired ─► paid (late)          │
       └──────────────────► expired        paid ───────────┘

A late "paid" after ``expired`` or ``failed`` is ACCEPTED, not refunded automatically: the
channel's record says the shopper's money moved, so refusing it would leave a charge that
exists at the platform and nowhere in our books (and in every settlement and
reconciliation after). The terminal is told ``paid``; a refund, if the goods were not
handed over, is an explicit act of the vendor through the refund endpoint.

Every other move not drawn above is illegal and refused; the caller logs the refusal.
Applying a target the payment is already in is a no-op (duplicates and replays).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["STATUSES", "FINAL_PAID", "TRANSITIONS", "Decision", "decide",
           "status_from_channel", "refund_status"]

STATUSES = ("created", "pending", "paid", "failed", "expired", "refunded",
            "partially_refunded")
#: Statuses in which the shopper has paid (a QR in one of these is "already paid").
FINAL_PAID = frozenset({"paid", "refunded", "partially_refunded"})

TRANSITIONS: dict[str, frozenset[str]] = {
    "created": frozenset({"pending", "paid", "failed", "expired"}),
    "pending": frozenset({"paid", "failed", "expired"}),
    "paid": frozenset({"partially_refunded", "refunded"}),
    "partially_refunded": frozenset({"partially_refunded", "refunded"}),
    "failed": frozenset({"paid"}),
    "expired": frozenset({"paid"}),
    "refunded": frozenset(),
}


@dataclass(frozen=True)
class Decision:
    """``apply`` says whether to write ``target``; ``reason`` explains a refusal or no-op."""

    apply: bool
    target: str
    reason: str = ""

    @property
    def refused(self) -> bool:
        return not self.apply and self.reason.startswith("illegal")


def decide(current: str, target: str) -> Decision:
    """Whether a payment in ``current`` may move to ``target``."""
    if current not in TRANSITIONS or target not in TRANSITIONS:
        raise ValueError(f"unknown status: {current!r} -> {target!r}")
    if current == target and target != "partially_refunded":
        return Decision(False, target, "already in that status")
    if target in TRANSITIONS[current]:
        return Decision(True, target)
    if current in FINAL_PAID and target in {"pending", "failed", "expired", "paid"}:
        return Decision(False, target, f"illegal: {current} cannot go back to {target}")
    return Decision(False, target, f"illegal: {current} -> {target}")


def status_from_channel(channel_status: str) -> str | None:
    """Map a channel's normalised status to ours; None for 'nothing to record'."""
    return {"paid": "paid", "closed": "failed", "failed": "failed",
            "pending": None, "refunded": None}.get(channel_status)


def refund_status(amount_fen: int, refunded_fen: int) -> str:
    """Status after ``refunded_fen`` of ``amount_fen`` has been given back."""
    if refunded_fen <= 0:
        raise ValueError("refunded_fen must be positive")
    if refunded_fen > amount_fen:
        raise ValueError("refunded_fen exceeds the amount paid")
    return "refunded" if refunded_fen == amount_fen else "partially_refunded"
