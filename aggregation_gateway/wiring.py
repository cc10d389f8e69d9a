"""Builds the gateway's parts from its settings: one place, used by the HTTP app, the
background process and the command line alike."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .audit_log import AuditLog
from .channels.base import PaymentChannel, Transport
from .channels.http_transport import KeepAliveTransport
from .channels.registry import build_channels
from .database import Database
from .devices import DeviceRegistry
from .instances import registered_gateway_users
from .key_files import load_or_create_master_key, load_or_create_signing_key
from .manager_accounts import ensure_manager
from .mosquitto_auth import write_auth_files
from .order_sweeps import OrderSweeps
from .payer_codes import PayerCodeCharges
from .payments import PaymentService
from .refunds import Refunds

__all__ = ["Gateway", "build_gateway"]

log = logging.getLogger(__name__)


@dataclass
class Gateway:
    settings: Mapping[str, Any]
    db: Database
    master_key: bytes
    signing_key: Ed25519PrivateKey
    registry: DeviceRegistry
    channels: dict[str, PaymentChannel]
    payments: PaymentService
    refunds: Refunds
    sweeps: OrderSweeps

    @property
    def payer_codes(self) -> PayerCodeCharges:
        return PayerCodeCharges(self.payments)

    def write_mqtt_auth(self) -> bool:
        return write_auth_files(self.settings, self.registry.mqtt_users(),
                                registered_gateway_users(self.db))


def build_gateway(settings: Mapping[str, Any],
                  transport_factory: Callable[[], Transport] | None = None) -> Gateway:
    data_dir = Path(settings["data_dir"])
    data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(data_dir, settings.get("database_url") or "",
                  int(settings.get("database_pool_size") or 10))
    master_key = load_or_create_master_key(data_dir)
    signing_key = load_or_create_signing_key(data_dir)

    audit = AuditLog(db)
    if transport_factory is None:
        timeout = float(settings.get("channel_timeout_s", 10.0))
        transport_factory = lambda: KeepAliveTransport(timeout)  # noqa: E731
    channels = build_channels(settings, signing_key, audit, transport_factory)
    registry = DeviceRegistry(db, master_key, dict(settings))
    payments = PaymentService(db, registry, channels, signing_key, settings, audit=audit)
    gateway = Gateway(settings, db, master_key, signing_key, registry, channels, payments,
                      Refunds(payments), OrderSweeps(payments))
    registry.on_change = gateway.write_mqtt_auth
    if settings.get("manager_user") and settings.get("manager_password"):
        ensure_manager(db, settings["manager_user"], settings["manager_password"])
    return gateway
