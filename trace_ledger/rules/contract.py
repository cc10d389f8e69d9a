"""The contract: the deterministic rules every ledger node runs on a trade before endorsing.

Same input, same verdict, on every node: no clock, no network, no randomness. A trade that
fails is not dropped; the bridge records it as a ``rejected`` entry carrying the verdict, so
a forged or inconsistent trade leaves a trace of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from market_protocol import SchemaError, check_trade, line_amount_fen, signing, trace_code_for_sale

__all__ = ["Verdict", "DeviceRecord", "check_trade_contract", "ACCEPTED", "REJECTION_CODES"]

REJECTION_CODES = (
    "malformed_trade", "bad_signature", "amount_mismatch", "currency_mismatch",
    "unknown_device", "device_merchant_mismatch", "device_not_enrolled", "device_revoked",
)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    code: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "code": self.code, "reason": self.reason}


ACCEPTED = Verdict(True, "accepted", "all contract rules hold")


@dataclass(frozen=True)
class DeviceRecord:
    """A terminal as the bridge knows it: whose it is and when it was allowed to sell."""

    device_id: str
    merchant_id: str
    enrolled_at_ms: int
    revoked_at_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"device_id": self.device_id, "merchant_id": self.merchant_id,
                "enrolled_at_ms": self.enrolled_at_ms, "revoked_at_ms": self.revoked_at_ms}


def _reject(code: str, reason: str) -> Verdict:
    return Verdict(False, code, reason)


def _check_amounts(trade: Mapping[str, Any]) -> Verdict | None:
    sale = trade["sale"]
    for index, line in enumerate(sale["lines"]):
        try:
            expected = line_amount_fen(line["unit"], line["unit_price_fen"],
                                       weight_g=line.get("weight_g"),
                                       quantity=line.get("quantity"))
        except ValueError as exc:
            return _reject("amount_mismatch", f"line {index}: {exc}")
        if expected != line["amount_fen"]:
            return _reject("amount_mismatch", f"line {index}: amount_fen {line['amount_fen']} "
                           f"!= unit price x quantity = {expected}")
    # 抹零: a stall may round the total down by up to 99 fen (the sale's tender says how much).
    rounding = (sale.get("tender") or {}).get("rounding_fen", 0)
    total = sum(line["amount_fen"] for line in sale["lines"]) - rounding
    if total != sale["total_fen"] or trade["payment"]["amount_fen"] != total:
        return _reject("amount_mismatch", f"sale total {sale['total_fen']} / paid "
                       f"{trade['payment']['amount_fen']} != sum of lines less rounding "
                       f"{total}")
    if trade["payment"]["currency"] != sale["currency"]:
        return _reject("currency_mismatch", "payment and sale currencies differ")
    return None


def _check_device(trade: Mapping[str, Any], device: DeviceRecord | None) -> Verdict | None:
    sale = trade["sale"]
    if device is None:
        return _reject("unknown_device", f"device {sale['device_id']} is not enrolled")
    merchant = trade["seller"]["merchant_id"]
    if device.merchant_id != merchant:
        return _reject("device_merchant_mismatch", f"device {device.device_id} belongs to "
                       f"{device.merchant_id}, not {merchant}")
    at = sale["created_at_ms"]
    if at < device.enrolled_at_ms:
        return _reject("device_not_enrolled", f"sale at {at} precedes enrolment at "
                       f"{device.enrolled_at_ms}")
    if device.revoked_at_ms is not None and at >= device.revoked_at_ms:
        return _reject("device_revoked", f"device {device.device_id} was revoked at "
                       f"{device.revoked_at_ms}, sale at {at}")
    return None


def check_trade_contract(trade: Any, gateway_key: Ed25519PublicKey,
                         device: DeviceRecord | None) -> Verdict:
    """Schema, gateway signature, amounts and device enrolment, in that order.

    ``device`` is the registry's record of ``trade.sale.device_id`` (None when unknown).
    """
    try:
        check_trade(trade)
    except SchemaError as exc:
        return _reject("malformed_trade", str(exc))
    if not signing.verify_record(gateway_key, trade, "gateway_sig"):
        return _reject("bad_signature", "gateway_sig does not verify with the gateway's key")
    if trade["trade_id"] != trade["sale"]["sale_id"]:
        return _reject("malformed_trade", "trade_id must equal the sale's sale_id")
    if trade["trace_code"] != trace_code_for_sale(trade["sale"]["sale_id"]):
        return _reject("malformed_trade", "trace_code is not the sale's trace code")
    return _check_amounts(trade) or _check_device(trade, device) or ACCEPTED

