"""Which channels this gateway can take payments through, built from its settings.

A channel exists only when its credentials are configured: the sandbox when the platform
URL and the platform's public key are known, Alipay and WeChat Pay when their merchant
credentials are set (and their adapters are installed).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from market_protocol.signing import load_public_key

from .audit import AuditingTransport, AuditSink
from .base import PaymentChannel, Transport
from .http_transport import KeepAliveTransport
from .sandbox import SandboxChannel

__all__ = ["build_channels", "platform_key_path", "PLATFORM_KEY_FILE"]

log = logging.getLogger(__name__)

PLATFORM_KEY_FILE = "platform_public.pem"


def platform_key_path(settings: Mapping[str, Any]) -> Path:
    explicit = settings.get("platform_public_key")
    return Path(explicit) if explicit else Path(settings["data_dir"]) / PLATFORM_KEY_FILE


def _optional_adapter(module: str, factory: str, settings: Mapping[str, Any],
                      transport: Transport) -> PaymentChannel | None:
    try:
        make = getattr(importlib.import_module(module), factory)
    except (ImportError, AttributeError):
        log.warning("%s is configured but its adapter (%s.%s) is not available", module,
                    module, factory)
        return None
    return make(settings, transport)


def build_channels(settings: Mapping[str, Any], signing_key: Ed25519PrivateKey,
                   audit_sink: AuditSink,
                   transport_factory: Callable[[], Transport] = KeepAliveTransport
                   ) -> dict[str, PaymentChannel]:
    channels: dict[str, PaymentChannel] = {}
    key_path = platform_key_path(settings)
    if settings.get("platform_url") and key_path.exists():
        channels["sandbox"] = SandboxChannel(
            settings["platform_url"], settings["platform_app_id"], signing_key,
            load_public_key(key_path.read_bytes()),
            AuditingTransport(transport_factory(), audit_sink, "sandbox"))
    elif settings.get("platform_url"):
        log.warning("no platform public key at %s: the sandbox channel is off", key_path)
    if settings.get("alipay_app_id"):
        adapter = _optional_adapter(
            "aggregation_gateway.channels.alipay", "from_settings", settings,
            AuditingTransport(transport_factory(), audit_sink, "alipay"))
        if adapter is not None:
            channels["alipay"] = adapter
    if settings.get("wechatpay_mch_id"):
        adapter = _optional_adapter(
            "aggregation_gateway.channels.wechatpay", "from_settings", settings,
            AuditingTransport(transport_factory(), audit_sink, "wechatpay"))
        if adapter is not None:
            channels["wechatpay"] = adapter
    return channels
