"""The platform's fee on a payment, and the share of it returned on a refund."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

__all__ = ["fee_fen", "refund_fee_fen"]


def fee_fen(amount_fen: int, rate: Decimal) -> int:
    """Fee on a paid amount, rounded half-up to the fen (0.6% of 250 fen -> 2 fen)."""
    if amount_fen < 0:
        raise ValueError("amount_fen must be >= 0")
    return int((Decimal(amount_fen) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def refund_fee_fen(paid_fen: int, refunded_before_fen: int, refund_fen: int,
                   rate: Decimal) -> int:
    """Fee returned with a refund, so that a full refund returns exactly the whole fee.

    Computed as the difference of fees on the cumulative refunded amount; partial refunds
    then never return more (or less) in total than the fee that was charged.
    """
    if refunded_before_fen < 0 or refund_fen <= 0:
        raise ValueError("refund amounts must be positive")
    if refunded_before_fen + refund_fen > paid_fen:
        raise ValueError("refunds exceed the paid amount")
    charged = fee_fen(paid_fen, rate)
    if refunded_before_fen + refund_fen == paid_fen:
        return charged - _returned(paid_fen, refunded_before_fen, rate)
    return _returned(paid_fen, refunded_before_fen + refund_fen, rate) - _returned(
        paid_fen, refunded_before_fen, rate)


def _returned(paid_fen: int, refunded_fen: int, rate: Decimal) -> int:
    return min(fee_fen(refunded_fen, rate), fee_fen(paid_fen, rate))
