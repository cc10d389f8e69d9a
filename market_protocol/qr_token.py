"""The dynamic QR payload: a compact, MACed token inside a URL on the gateway.

Wire form (version 1), all integers big-endian, then base64url without padding::

    u8  version (=1)        u8  key_version     u32 amount_fen     u16 currency (ISO 4217 numeric)
    u32 order_no            u32 issued_at (epoch s)                 8B  nonce
    u8  len(device_id)      ... device_id (ASCII)
    16B mac = HMAC-SHA256(device_key, DOMAIN || gateway_base_url || 0x00 || body)[:16]

The URL is ``<gateway_base_url>/q/<token>``. The MAC covers the gateway's base URL, so a
token copied onto another gateway's address does not verify. A typical URL is ~100 bytes,
well inside a version 10 QR at error level M (213 bytes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass

from .device_keys import check_device_id

__all__ = [
    "QRPayload",
    "QRTokenError",
    "CURRENCY_CODES",
    "encode_token",
    "decode_token",
    "verify_token",
    "qr_url",
    "split_qr_url",
    "new_nonce",
    "token_length",
]

TOKEN_VERSION = 1
MAC_DOMAIN = b"tracepay-qr/1"
MAC_BYTES = 16
NONCE_BYTES = 8
_HEAD = struct.Struct(">BBIHII8sB")

#: ISO 4217 numeric codes of the currencies a terminal may charge in.
CURRENCY_CODES: dict[str, int] = {"CNY": 156, "HKD": 344, "USD": 840, "EUR": 978}
_CURRENCY_BY_CODE = {code: name for name, code in CURRENCY_CODES.items()}


def token_length(device_id_chars: int) -> int:
    """Characters of the base64url token (no padding) for a device id of that length.

    Every other field has a fixed size, so this is exact: EMV templates and enrolment
    limits are computed from it rather than guessed."""
    raw = _HEAD.size + device_id_chars + MAC_BYTES
    return (4 * raw + 2) // 3


class QRTokenError(ValueError):
    """A token that is malformed or whose MAC does not verify. ``code`` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class QRPayload:
    """What a dynamic QR says. ``issued_at`` is epoch seconds; ``nonce`` is 8 random bytes."""

    device_id: str
    key_version: int
    order_no: int
    amount_fen: int
    currency: str
    issued_at: int
    nonce: bytes

    @property
    def nonce_hex(self) -> str:
        return self.nonce.hex()


def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_BYTES)


def _body(payload: QRPayload) -> bytes:
    check_device_id(payload.device_id)
    if payload.currency not in CURRENCY_CODES:
        raise ValueError(f"unsupported currency {payload.currency!r}")
    if len(payload.nonce) != NONCE_BYTES:
        raise ValueError(f"nonce must be {NONCE_BYTES} bytes")
    if not 0 < payload.amount_fen < 2**32:
        raise ValueError("amount_fen must be 1 .. 2**32-1")
    device = payload.device_id.encode("ascii")
    return _HEAD.pack(TOKEN_VERSION, payload.key_version, payload.amount_fen,
                      CURRENCY_CODES[payload.currency], payload.order_no, payload.issued_at,
                      payload.nonce, len(device)) + device


def _mac(device_key: bytes, gateway_base_url: str, body: bytes) -> bytes:
    message = MAC_DOMAIN + gateway_base_url.rstrip("/").encode() + b"\x00" + body
    return hmac.new(device_key, message, hashlib.sha256).digest()[:MAC_BYTES]


def encode_token(payload: QRPayload, device_key: bytes, gateway_base_url: str) -> str:
    """The base64url token for ``payload``, MACed with ``device_key`` for that gateway."""
    body = _body(payload)
    raw = body + _mac(device_key, gateway_base_url, body)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_token(token: str) -> tuple[QRPayload, bytes, bytes]:
    """Parse without verifying: ``(payload, body, mac)``.

    The gateway must read the device id before it can derive the key to verify with;
    nothing from an unverified payload may be trusted beyond that.
    """
    if not isinstance(token, str) or not 40 <= len(token) <= 200:
        raise QRTokenError("malformed_token", "token has the wrong length")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as exc:
        raise QRTokenError("malformed_token", "token is not base64url") from exc
    if len(raw) < _HEAD.size + 1 + MAC_BYTES:
        raise QRTokenError("malformed_token", "token is too short")
    (version, key_version, amount, currency, order_no, issued_at, nonce,
     device_len) = _HEAD.unpack_from(raw)
    if version != TOKEN_VERSION:
        raise QRTokenError("unsupported_version", f"token version {version} is not supported")
    body_len = _HEAD.size + device_len
    if len(raw) != body_len + MAC_BYTES:
        raise QRTokenError("malformed_token", "token length does not match its device id")
    try:
        device_id = check_device_id(raw[_HEAD.size:body_len].decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise QRTokenError("malformed_token", "token carries an invalid device id") from exc
    if currency not in _CURRENCY_BY_CODE:
        raise QRTokenError("malformed_token", f"unknown currency code {currency}")
    payload = QRPayload(device_id, key_version, order_no, amount, _CURRENCY_BY_CODE[currency],
                        issued_at, nonce)
    return payload, raw[:body_len], raw[body_len:]


def verify_token(token: str, device_key: bytes, gateway_base_url: str) -> QRPayload:
    """Decode and check the MAC in constant time; raises QRTokenError(``bad_mac``)."""
    payload, body, mac = decode_token(token)
    if not hmac.compare_digest(mac, _mac(device_key, gateway_base_url, body)):
        raise QRTokenError("bad_mac", "the QR code's signature does not verify")
    return payload


def qr_url(gateway_base_url: str, token: str) -> str:
    return f"{gateway_base_url.rstrip('/')}/q/{token}"


def split_qr_url(url: str) -> tuple[str, str]:
    """``'http://gw/q/TOKEN'`` -> ``('http://gw', 'TOKEN')``."""
    base, sep, token = url.rpartition("/q/")
    if not sep or not token or "/" in token:
        raise QRTokenError("malformed_url", "not a tracepay QR URL")
    return base, token
