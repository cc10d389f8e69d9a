"""Per-device keys derived from the gateway's master key.

``key = HMAC-SHA256(master, "tracepay-device-key/1|" + device_id + "|" + key_version)``:
the gateway needs no per-device secret table, rotation is a new key version, and
revocation is a list of device ids.
"""

from __future__ import annotations

import hashlib
import hmac
import re

__all__ = ["DEVICE_ID_MAX_LENGTH", "DEVICE_ID_PATTERN", "check_device_id", "derive_device_key",
           "mqtt_password"]

#: Longest device id the wire formats allow (EMV QR terminals allow fewer, see emvco).
DEVICE_ID_MAX_LENGTH = 32
DEVICE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


def check_device_id(device_id: str) -> str:
    """Return ``device_id`` or raise ValueError: 1-32 of A-Z a-z 0-9 _ -, not starting with _ -."""
    if not isinstance(device_id, str) or not DEVICE_ID_PATTERN.match(device_id):
        raise ValueError(f"invalid device id {device_id!r}: use 1-32 letters, digits, '_' or '-'")
    return device_id


def derive_device_key(master_key: bytes, device_id: str, key_version: int) -> bytes:
    """The 32-byte key of ``device_id`` at ``key_version`` (1..255)."""
    check_device_id(device_id)
    if not 1 <= key_version <= 255:
        raise ValueError("key_version must be 1..255")
    if len(master_key) < 16:
        raise ValueError("master key must be at least 16 bytes")
    message = f"tracepay-device-key/1|{device_id}|{key_version}".encode()
    return hmac.new(master_key, message, hashlib.sha256).digest()


def mqtt_password(device_key: bytes) -> str:
    """The device's MQTT password, derived so the broker never sees the device key itself."""
    return hmac.new(device_key, b"tracepay-mqtt-password/1", hashlib.sha256).hexdigest()[:40]
