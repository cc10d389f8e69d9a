"""Device registry: enrolment, one-time enrolment codes, claim, revocation, key rotation.

Device keys are derived from the master key (``market_protocol.derive_device_key``), so
the registry stores no per-device secret: only each device's merchant, status and current
key version. Enrolment codes are stored hashed; a code is good once and for a short time.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from collections.abc import Callable
from typing import Any

from market_protocol import ORGS, ApiError, SchemaError, derive_device_key, mqtt_password
from market_protocol.emvco import max_device_id_length
from market_protocol.schema import Field, check

from .database import Database, now_ms, transaction

__all__ = ["DeviceRegistry"]

#: What ``POST /v1/devices`` accepts; ids use the patterns of ``market_protocol.messages``.
ENROL_FIELDS: dict[str, Field] = {
    "merchant_id": Field(str, pattern=r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}"),
    "merchant_name": Field(str, max_length=120, pattern=r"(?s).*\S.*"),
    "org": Field(str, choices=ORGS),
    "device_id": Field(str, required=False, nullable=True,
                       pattern=r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}"),
}
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at a stall
#: Device ids and the services' broker users share one namespace (the broker's user
#: names, which are also client ids): every name with this prefix belongs to a service.
RESERVED_PREFIX = "tracepay"
RENAME_FIELDS: dict[str, Field] = {"merchant_name": ENROL_FIELDS["merchant_name"]}


def service_users(settings: dict[str, Any]) -> set[str]:
    """The broker users of the services (gateway, bridge) in this configuration."""
    return {name for name in (settings.get("mqtt_username"),
                              settings.get("mqtt_bridge_username")) if name}


def is_reserved(device_id: str, settings: dict[str, Any]) -> bool:
    """Whether ``device_id`` is, or could pass for, a service's broker user."""
    folded = device_id.casefold()
    return (folded.startswith(RESERVED_PREFIX)
            or folded in {name.casefold() for name in service_users(settings)})


def _code_hash(code: str) -> str:
    return hashlib.sha256(b"tracepay-enrolment/1|" + code.strip().upper().encode()).hexdigest()


def _new_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))


class DeviceRegistry:
    """Reads and changes devices; ``on_change`` runs after any change that affects MQTT users."""

    def __init__(self, db: Database, master_key: bytes, settings: dict[str, Any],
                 on_change: Callable[[], object] | None = None) -> None:
        self.db = db
        self.master_key = master_key
        self.settings = settings
        self.on_change = on_change or (lambda: None)
        self._keys: dict[tuple[str, int], bytes] = {}

    # -- reads ----------------------------------------------------------------------------
    def get(self, device_id: str) -> sqlite3.Row | None:
        return self.db.conn.execute(
            "SELECT d.*, m.name AS merchant_name, m.org FROM devices d "
            "JOIN merchants m USING (merchant_id) WHERE d.device_id = ?", (device_id,)).fetchone()

    def device_key(self, device_id: str, key_version: int) -> bytes:
        """Derived once per (device, version) and kept: a pure function of the master key,
        so the cache can never disagree with a fresh derivation. Whether the device may
        still be used (revoked, rotated) is read from the database on every check."""
        cache_key = (device_id, key_version)
        key = self._keys.get(cache_key)
        if key is None:
            key = derive_device_key(self.master_key, device_id, key_version)
            if len(self._keys) >= 4096:
                self._keys.clear()
            self._keys[cache_key] = key
        return key

    def all(self) -> list[dict[str, Any]]:
        rows = self.db.conn.execute(
            "SELECT d.device_id, d.merchant_id, m.name AS merchant_name, m.org, d.key_version,"
            " d.status, d.enrolled_at_ms, d.claimed_at_ms, d.revoked_at_ms FROM devices d "
            "JOIN merchants m USING (merchant_id) ORDER BY d.enrolled_at_ms").fetchall()
        return [dict(row) for row in rows]

    def mqtt_users(self) -> list[tuple[str, str]]:
        """(username, password) of every device that may connect: claimed and not revoked."""
        rows = self.db.conn.execute(
            "SELECT device_id, key_version FROM devices WHERE status = 'active'").fetchall()
        # A device enrolled under a service's name before names were reserved never gets
        # a broker login: it would shadow the service.
        return [(row["device_id"], mqtt_password(self.device_key(row["device_id"],
                                                                 row["key_version"])))
                for row in rows if not is_reserved(row["device_id"], self.settings)]

    # -- changes --------------------------------------------------------------------------
    def enrol(self, body: Any) -> dict[str, Any]:
        try:
            check(ENROL_FIELDS, body)
        except SchemaError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from None
        merchant_id, merchant_name, org = body["merchant_id"], body["merchant_name"], body["org"]
        longest = max_device_id_length(self.settings.get("public_url") or "")
        # A made-up id fits this gateway's codes (shorter behind a long address).
        device_id = body.get("device_id") or f"dev-{secrets.token_hex(6)}"[:max(8, longest)]
        if len(device_id) > longest:
            raise ApiError(400, "device_id_too_long", f"device ids may have at most {longest} "
                           f"characters with this gateway's address (the EMV QR code of a "
                           f"sale must fit); {device_id!r} has {len(device_id)}")
        if is_reserved(device_id, self.settings):
            raise ApiError(400, "reserved_name", f"{device_id!r} is reserved for the "
                           f"services; device ids may not start with {RESERVED_PREFIX!r}")
        code = _new_code()
        now = now_ms()
        expires = now + self.settings["enrolment_code_ttl_s"] * 1000
        with transaction(self.db.conn) as conn:
            existing = conn.execute("SELECT org FROM merchants WHERE merchant_id = ?",
                                    (merchant_id,)).fetchone()
            if existing and existing["org"] != org:
                raise ApiError(409, "merchant_conflict",
                               f"merchant {merchant_id} is enrolled as {existing['org']}")
            # An existing merchant keeps its name: enrolling one more terminal is not a
            # rename (that is ``rename_merchant``, a manager action of its own).
            conn.execute("INSERT INTO merchants (merchant_id, name, org) VALUES (?, ?, ?) "
                         "ON CONFLICT (merchant_id) DO NOTHING",
                         (merchant_id, merchant_name, org))
            merchant_name = conn.execute("SELECT name FROM merchants WHERE merchant_id = ?",
                                         (merchant_id,)).fetchone()["name"]
            # ON CONFLICT: an enrolment of the same id racing this one (PostgreSQL) is
            # refused like one that came first.
            if conn.execute("INSERT INTO devices (device_id, merchant_id, key_version, status, "
                            "enrolled_at_ms) VALUES (?, ?, 1, 'pending_claim', ?) ON CONFLICT "
                            "DO NOTHING", (device_id, merchant_id, now)).rowcount == 0:
                raise ApiError(409, "device_exists",
                               f"device {device_id} is already enrolled; rotate its key instead")
            conn.execute("INSERT INTO enrolment_codes VALUES (?, ?, 1, ?, NULL)",
                         (_code_hash(code), device_id, expires))
        return {"device_id": device_id, "key_version": 1, "enrolment_code": code,
                "expires_at_ms": expires, "merchant_id": merchant_id,
                "merchant_name": merchant_name}

    def rename_merchant(self, merchant_id: str, body: Any) -> dict[str, Any]:
        """The manager renames a merchant (its terminals see the new name on next claim)."""
        try:
            check(RENAME_FIELDS, body)
        except SchemaError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from None
        with transaction(self.db.conn) as conn:
            cursor = conn.execute("UPDATE merchants SET name = ? WHERE merchant_id = ?",
                                  (body["merchant_name"], merchant_id))
            if cursor.rowcount == 0:
                raise ApiError(404, "unknown_merchant", f"no merchant {merchant_id}")
            row = conn.execute("SELECT merchant_id, name, org FROM merchants WHERE "
                               "merchant_id = ?", (merchant_id,)).fetchone()
        return {"merchant_id": row["merchant_id"], "merchant_name": row["name"],
                "org": row["org"]}

    def claim(self, code: str) -> dict[str, Any]:
        now = now_ms()
        with transaction(self.db.conn) as conn:
            row = conn.execute("SELECT * FROM enrolment_codes WHERE code_hash = ?",
                               (_code_hash(code),)).fetchone()
            if row is None:
                raise ApiError(404, "unknown_code", "no such enrolment code")
            if row["used_at_ms"] is not None:
                raise ApiError(410, "code_used", "this enrolment code was already used")
            if row["expires_at_ms"] < now:
                raise ApiError(410, "code_expired", "this enrolment code has expired; "
                               "ask the manager for a new one")
            device = conn.execute("SELECT * FROM devices WHERE device_id = ?",
                                  (row["device_id"],)).fetchone()
            if device["status"] == "revoked":
                raise ApiError(403, "device_revoked", "this device has been revoked")
            if device["key_version"] != row["key_version"]:
                raise ApiError(410, "code_superseded", "a newer enrolment code exists")
            if conn.execute("UPDATE enrolment_codes SET used_at_ms = ? WHERE code_hash = ? "
                            "AND used_at_ms IS NULL", (now, row["code_hash"])).rowcount != 1:
                # Claimed by a request racing this one (PostgreSQL): good once only.
                raise ApiError(410, "code_used", "this enrolment code was already used")
            conn.execute("UPDATE devices SET status = 'active', claimed_at_ms = ? "
                         "WHERE device_id = ?", (now, device["device_id"]))
        self.on_change()
        info = self.get(row["device_id"])
        assert info is not None
        key = self.device_key(info["device_id"], info["key_version"])
        return {
            "device_id": info["device_id"], "key_version": info["key_version"],
            "device_key": key.hex(), "gateway_url": self.settings["public_url"],
            "mqtt": {"host": self.settings["mqtt_public_host"],
                     "port": self.settings["mqtt_public_port"],
                     "username": info["device_id"], "password": mqtt_password(key)},
            "merchant": {"merchant_id": info["merchant_id"], "name": info["merchant_name"],
                         "org": info["org"]},
        }

    def revoke(self, device_id: str) -> dict[str, Any]:
        with transaction(self.db.conn) as conn:
            cursor = conn.execute("UPDATE devices SET status = 'revoked', revoked_at_ms = ? "
                                  "WHERE device_id = ? AND status != 'revoked'",
                                  (now_ms(), device_id))
            if cursor.rowcount == 0 and not conn.execute(
                    "SELECT 1 FROM devices WHERE device_id = ?", (device_id,)).fetchone():
                raise ApiError(404, "unknown_device", f"no device {device_id}")
        self.on_change()
        return {"device_id": device_id, "status": "revoked"}

    def rotate(self, device_id: str) -> dict[str, Any]:
        """New key version at once (old QR codes stop verifying) and a code to claim it."""
        code = _new_code()
        now = now_ms()
        expires = now + self.settings["enrolment_code_ttl_s"] * 1000
        with transaction(self.db.conn) as conn:
            device = conn.execute("SELECT * FROM devices WHERE device_id = ?",
                                  (device_id,)).fetchone()
            if device is None:
                raise ApiError(404, "unknown_device", f"no device {device_id}")
            if device["status"] == "revoked":
                raise ApiError(409, "device_revoked", "a revoked device cannot be rotated")
            version = device["key_version"] + 1
            if version > 255:
                raise ApiError(409, "key_versions_exhausted", "enrol a new device id")
            if conn.execute("UPDATE devices SET key_version = ?, status = 'pending_claim', "
                            "rotated_at_ms = ? WHERE device_id = ? AND key_version = ?",
                            (version, now, device_id, version - 1)).rowcount != 1:
                raise ApiError(409, "rotation_conflict", "the device was rotated at the same "
                               "moment; look at its key version and try again")
            conn.execute("INSERT INTO enrolment_codes VALUES (?, ?, ?, ?, NULL)",
                         (_code_hash(code), device_id, version, expires))
        self.on_change()
        return {"device_id": device_id, "key_version": version, "enrolment_code": code,
                "expires_at_ms": expires}
