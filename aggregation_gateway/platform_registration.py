"""Start-up registration at the sandbox platform: our app id and public key, its key back.

Only the sandbox has this call (``POST /sandbox/apps``); a real platform's keys are
exchanged out of band and configured as files.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from market_protocol.signing import load_public_key, public_key_pem

from .channels.registry import platform_key_path

__all__ = ["register_at_platform", "RegistrationError"]


class RegistrationError(RuntimeError):
    pass


def register_at_platform(settings: Mapping[str, Any], key: Ed25519PrivateKey,
                         timeout: float = 30.0) -> str:
    """Register (retrying while the platform starts) and store its public key; returns
    the path written."""
    url = f"{settings['platform_url']}/sandbox/apps"
    body = {"app_id": settings["platform_app_id"], "public_key_pem": public_key_pem(key)}
    deadline = time.monotonic() + timeout
    session = requests.Session()
    session.trust_env = False
    while True:
        try:
            response = session.post(url, json=body, timeout=5)
            if response.status_code in (200, 201):
                pem = response.json()["platform_public_key_pem"]
                load_public_key(pem)  # refuse to store something that is not a key
                path = platform_key_path(settings)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(pem)
                tmp.replace(path)
                return str(path)
            problem = f"HTTP {response.status_code}: {response.text[:200]}"
        except (requests.RequestException, ValueError, KeyError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            raise RegistrationError(f"could not register at {url}: {problem}")
        time.sleep(0.5)
