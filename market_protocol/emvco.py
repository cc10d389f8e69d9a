"""EMVCo merchant-presented QR (EMV QRCPS-MPM): tag-length-value text with a CRC16 trailer.

Wallet apps that read EMV payloads get the same sale as the URL form: template 26 names
tracepay (reverse-domain GUID), the gateway and the device; template 27 carries the MACed
token, so ``<gateway>/q/<token>`` can be rebuilt and verified exactly as the URL QR.

Format: each data object is ``ID`` (2 digits) + ``LEN`` (2 digits, 00-99) + value. The
payload starts with 00 (format indicator "01") and ends with 63 (CRC), whose value is the
CRC16-CCITT (polynomial 0x1021, initial 0xFFFF, no reflection, no final XOR) of the whole
payload up to and including "6304", as four upper-case hex digits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .device_keys import DEVICE_ID_MAX_LENGTH
from .qr_token import CURRENCY_CODES, token_length

__all__ = [
    "EmvError", "crc16_ccitt", "tlv", "encode_payload", "decode_payload", "EmvSale",
    "merchant_payload", "read_merchant_payload", "TRACEPAY_GUID", "max_device_id_length",
    "TAG_FORMAT", "TAG_INITIATION", "TAG_MCC", "TAG_CURRENCY", "TAG_AMOUNT", "TAG_COUNTRY",
    "TAG_NAME", "TAG_CITY", "TAG_ADDITIONAL", "TAG_LANGUAGE", "TAG_CRC",
]

CRC_POLY = 0x1021
CRC_INIT = 0xFFFF
TAG_FORMAT = "00"
TAG_INITIATION = "01"
TAG_MCC = "52"
TAG_CURRENCY = "53"
TAG_AMOUNT = "54"
TAG_COUNTRY = "58"
TAG_NAME = "59"
TAG_CITY = "60"
TAG_ADDITIONAL = "62"
TAG_LANGUAGE = "64"
TAG_CRC = "63"
#: Templates whose value is itself TLV: merchant account information 26-51, 62, 64, 80-99.
TEMPLATE_TAGS = frozenset({*(f"{n:02d}" for n in range(26, 52)), "62", "64",
                           *(f"{n:02d}" for n in range(80, 100))})
TRACEPAY_GUID = "cn.tracepay"
TEMPLATE_GATEWAY = "26"
TEMPLATE_TOKEN = "27"
STATIC, DYNAMIC = "11", "12"
_TAG = re.compile(r"^\d{2}$")
_CRC_HEAD = TAG_CRC + "04"
_CURRENCY_BY_NUMBER = {f"{code:03d}": name for name, code in CURRENCY_CODES.items()}


class EmvError(ValueError):
    """A payload that cannot be built or does not parse; says which data object and why."""


def crc16_ccitt(data: bytes, crc: int = CRC_INIT) -> int:
    """CRC16-CCITT (0x1021, MSB first). ``crc16_ccitt(b"123456789") == 0x29B1``."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def tlv(tag: str, value: str) -> str:
    """One data object. Raises EmvError for a bad tag or a value longer than 99."""
    if not _TAG.match(tag):
        raise EmvError(f"tag {tag!r} must be two digits")
    if not value:
        raise EmvError(f"tag {tag}: empty values are not allowed")
    if len(value) > 99:
        raise EmvError(f"tag {tag}: value of {len(value)} characters exceeds 99")
    return f"{tag}{len(value):02d}{value}"


Fields = Sequence[tuple[str, "str | Fields"]]


def _encode_fields(fields: Fields) -> str:
    parts = []
    for tag, value in fields:
        text = value if isinstance(value, str) else _encode_fields(value)
        parts.append(tlv(tag, text))
    return "".join(parts)


def encode_payload(fields: Fields) -> str:
    """Encode data objects (nested lists for templates) and append the CRC (tag 63)."""
    body = _encode_fields(fields) + _CRC_HEAD
    return body + f"{crc16_ccitt(body.encode('utf-8')):04X}"


def _split(text: str, where: str) -> list[tuple[str, str]]:
    objects, pos = [], 0
    while pos < len(text):
        head = text[pos:pos + 4]
        if len(head) < 4 or not head.isdigit():
            raise EmvError(f"{where}: bad data object header {head!r} at offset {pos}")
        tag, length = head[:2], int(head[2:])
        value = text[pos + 4:pos + 4 + length]
        if len(value) != length:
            raise EmvError(f"{where}: tag {tag} says {length} characters, {len(value)} remain")
        objects.append((tag, value))
        pos += 4 + length
    return objects


def decode_payload(payload: str) -> dict[str, str | dict[str, str]]:
    """Parse and check a payload: CRC, format indicator first, CRC last, no repeated tags.

    Templates (26-51, 62, 64, 80-99) come back as dicts of their sub-objects.
    """
    if not isinstance(payload, str) or len(payload) < 12:
        raise EmvError("payload is too short")
    if payload[-8:-4] != _CRC_HEAD:
        raise EmvError("payload does not end with the CRC data object (6304xxxx)")
    expected = f"{crc16_ccitt(payload[:-4].encode('utf-8')):04X}"
    if payload[-4:].upper() != expected:
        raise EmvError(f"CRC mismatch: payload says {payload[-4:]}, computed {expected}")
    objects = _split(payload, "payload")
    if objects[0] != (TAG_FORMAT, "01"):
        raise EmvError("the first data object must be 00 (payload format indicator) = '01'")
    result: dict[str, str | dict[str, str]] = {}
    for tag, value in objects:
        if tag in result:
            raise EmvError(f"tag {tag} appears twice")
        if tag in TEMPLATE_TAGS:
            sub = _split(value, f"template {tag}")
            if len({t for t, _ in sub}) != len(sub):
                raise EmvError(f"template {tag} repeats a sub-tag")
            result[tag] = dict(sub)
        else:
            result[tag] = value
    return result


def _amount_text(amount_fen: int) -> str:
    """Fen as the decimal amount EMV expects: 1234 -> '12.34' (no floats anywhere)."""
    return f"{amount_fen // 100}.{amount_fen % 100:02d}"


def _amount_fen(text: str) -> int:
    match = re.fullmatch(r"(\d{1,10})(?:\.(\d{1,2}))?", text)
    if not match:
        raise EmvError(f"tag 54: {text!r} is not an amount")
    return int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))


@dataclass(frozen=True, slots=True)
class EmvSale:
    """What a tracepay EMV payload says."""

    gateway_url: str
    device_id: str
    token: str
    amount_fen: int
    currency: str
    order_no: int
    merchant_name: str
    merchant_city: str
    mcc: str

    @property
    def qr_url(self) -> str:
        return f"{self.gateway_url.rstrip('/')}/q/{self.token}"


def _ascii(tag: str, value: str, limit: int) -> str:
    if not value.isascii() or not value.isprintable():
        raise EmvError(f"tag {tag}: use printable ASCII (put Chinese in template 64)")
    return value[:limit]


_MAX_VALUE = 99


def _template_length(*values: str) -> int:
    """Length of a template holding our GUID (sub-tag 00) and ``values`` as sub-objects."""
    return sum(4 + len(value) for value in (TRACEPAY_GUID, *values))


def max_device_id_length(gateway_url: str) -> int:
    """The longest device id whose sales still fit an EMV payload for ``gateway_url``.

    Two templates grow with the device id: 26 carries the gateway URL and the id, 27 the
    MACed token (which embeds the id). Each value is capped at 99 characters by the
    two-digit length, so an id past this limit cannot be encoded at all; the gateway
    refuses to enrol such ids (0 means no id fits that URL)."""
    url = gateway_url.rstrip("/")
    best = 0
    for length in range(1, DEVICE_ID_MAX_LENGTH + 1):
        if (_template_length(url, "x" * length) <= _MAX_VALUE
                and _template_length("x" * token_length(length)) <= _MAX_VALUE):
            best = length
    return best


def merchant_payload(*, gateway_url: str, device_id: str, token: str, amount_fen: int,
                     currency: str, order_no: int, merchant_name: str, merchant_city: str,
                     mcc: str = "5411", country: str = "CN", name_zh: str | None = None,
                     city_zh: str | None = None, dynamic: bool = True) -> str:
    """A dynamic merchant-presented payload for one sale. MCC 5411 grocery, 5499 food stores."""
    if currency not in CURRENCY_CODES:
        raise EmvError(f"unsupported currency {currency!r}")
    if not re.fullmatch(r"\d{4}", mcc):
        raise EmvError("tag 52: merchant category code must be 4 digits")
    if not 0 < amount_fen < 10**12:
        raise EmvError("tag 54: amount must be positive")
    fields: list[tuple[str, str | Fields]] = [
        (TAG_FORMAT, "01"),
        (TAG_INITIATION, DYNAMIC if dynamic else STATIC),
        (TEMPLATE_GATEWAY, [("00", TRACEPAY_GUID), ("01", gateway_url.rstrip("/")),
                            ("02", device_id)]),
        (TEMPLATE_TOKEN, [("00", TRACEPAY_GUID), ("01", token)]),
        (TAG_MCC, mcc),
        (TAG_CURRENCY, f"{CURRENCY_CODES[currency]:03d}"),
        (TAG_AMOUNT, _amount_text(amount_fen)),
        (TAG_COUNTRY, country),
        (TAG_NAME, _ascii(TAG_NAME, merchant_name, 25)),
        (TAG_CITY, _ascii(TAG_CITY, merchant_city, 15)),
        (TAG_ADDITIONAL, [("05", str(order_no)), ("07", device_id[:25])]),
    ]
    if name_zh:
        language = [("00", "ZH"), ("01", name_zh[:25])]
        if city_zh:
            language.append(("02", city_zh[:15]))
        fields.append((TAG_LANGUAGE, language))
    return encode_payload(fields)


def read_merchant_payload(payload: str) -> EmvSale:
    """Decode a tracepay EMV payload back to the sale fields; EmvError if it is not one."""
    objects = decode_payload(payload)
    gateway, token = objects.get(TEMPLATE_GATEWAY), objects.get(TEMPLATE_TOKEN)
    extra = objects.get(TAG_ADDITIONAL)
    if not isinstance(gateway, dict) or gateway.get("00") != TRACEPAY_GUID:
        raise EmvError(f"template {TEMPLATE_GATEWAY} does not name {TRACEPAY_GUID}")
    if not isinstance(token, dict) or "01" not in token:
        raise EmvError(f"template {TEMPLATE_TOKEN} carries no token")
    if not isinstance(extra, dict) or "05" not in extra:
        raise EmvError("tag 62 carries no reference label (05)")
    currency = _CURRENCY_BY_NUMBER.get(str(objects.get(TAG_CURRENCY)))
    if currency is None:
        raise EmvError(f"tag 53: unknown currency {objects.get(TAG_CURRENCY)!r}")
    try:
        return EmvSale(gateway_url=gateway["01"], device_id=gateway["02"], token=token["01"],
                       amount_fen=_amount_fen(str(objects[TAG_AMOUNT])), currency=currency,
                       order_no=int(extra["05"]), merchant_name=str(objects[TAG_NAME]),
                       merchant_city=str(objects[TAG_CITY]), mcc=str(objects[TAG_MCC]))
    except (KeyError, ValueError) as exc:
        raise EmvError(f"tracepay payload lacks a required data object: {exc}") from exc
