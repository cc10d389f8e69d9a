"""The terminal's EMVCo QR option: the same MACed sale, as a merchant-presented payload.

EMV names must be ASCII (tag 59); a Chinese merchant name goes to the language template
(64) and the merchant id stands in for it in 59, so every wallet shows something readable.
"""

from __future__ import annotations

from typing import Any

from market_protocol import split_qr_url
from market_protocol.emvco import merchant_payload

from .provisioning import TerminalConfig

__all__ = ["emv_payload_for_sale", "EMV_MAX_QR_VERSION"]

#: An EMV payload is ~240 characters, so its QR needs up to version 13 at level M
#: (the URL form stays within version 10).
EMV_MAX_QR_VERSION = 13


def emv_payload_for_sale(sale: dict[str, Any], config: TerminalConfig, url: str) -> str:
    gateway_url, token = split_qr_url(url)
    name = config.merchant_name
    ascii_name = name if name.isascii() and name.isprintable() else config.merchant_id
    return merchant_payload(
        gateway_url=gateway_url, device_id=sale["device_id"], token=token,
        amount_fen=sale["total_fen"], currency=sale["currency"], order_no=sale["seq"],
        merchant_name=ascii_name, merchant_city=config.merchant_city, mcc=config.mcc,
        name_zh=None if name == ascii_name else name)
