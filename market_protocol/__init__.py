"""market_protocol: the wire formats every tracepay part agrees on.

QR payload codec and MAC, device key derivation, canonical JSON, message schemas, MQTT
topics, money, trace codes, Ed25519 signing, settings and the JSON error shape.
Pure functions: no network, no database.
"""

from . import canonical_json
from .device_keys import check_device_id, derive_device_key, mqtt_password
from .http_errors import ApiError
from .messages import (
    ORGS,
    PAYMENT_RESULT_SCHEMA,
    SALE_SCHEMA,
    TRADE_SCHEMA,
    check_payment_result,
    check_sale,
    check_trade,
    mac_record,
    record_hash,
    verify_record_mac,
)
from .money import format_fen, line_amount_fen, parse_yuan
from .qr_token import (
    QRPayload,
    QRTokenError,
    decode_token,
    encode_token,
    new_nonce,
    qr_url,
    split_qr_url,
    verify_token,
)
from .schema import SchemaError
from .settings import Setting, SettingsError, load_settings
from .trace_codes import trace_code_for_sale

__all__ = [
    "canonical_json", "check_device_id", "derive_device_key", "mqtt_password", "ApiError",
    "ORGS", "PAYMENT_RESULT_SCHEMA", "SALE_SCHEMA", "TRADE_SCHEMA", "check_payment_result",
    "check_sale", "check_trade", "mac_record", "record_hash", "verify_record_mac",
    "format_fen", "line_amount_fen", "parse_yuan", "QRPayload", "QRTokenError",
    "decode_token", "encode_token", "new_nonce", "qr_url", "split_qr_url", "verify_token",
    "SchemaError", "Setting", "SettingsError", "load_settings", "trace_code_for_sale",
]
