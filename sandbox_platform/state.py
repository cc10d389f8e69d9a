"""What every request handler of one platform app shares: settings, store, signing key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import current_app

from .faults import FaultBoard
from .store import Store

__all__ = ["PlatformState", "platform_state"]


@dataclass
class PlatformState:
    settings: dict[str, Any]
    store: Store
    key: Ed25519PrivateKey
    #: Staged failures for tests; None unless the platform runs with ``allow_faults``.
    faults: FaultBoard | None = None


def platform_state() -> PlatformState:
    return current_app.extensions["sandbox_platform"]
