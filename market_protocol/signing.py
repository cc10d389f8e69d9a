"""Ed25519 keys in files and signatures over canonical JSON.

Used where the verifier must not be able to forge: the gateway signs confirmed trades,
the payment platform signs notifications, ledger nodes sign blocks.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from . import canonical_json

__all__ = [
    "load_or_create_private_key", "load_public_key", "public_key_pem", "public_key_raw_b64",
    "sign", "verify", "sign_record", "verify_record", "b64u", "unb64u",
]


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_or_create_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """Load a PEM private key, creating it (mode 0600) on first use."""
    path = Path(path)
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def load_public_key(pem_or_path: str | bytes | os.PathLike[str]) -> Ed25519PublicKey:
    """Accept PEM text/bytes or a path to a PEM file."""
    if isinstance(pem_or_path, bytes):
        data = pem_or_path
    elif isinstance(pem_or_path, str) and pem_or_path.lstrip().startswith("-----"):
        data = pem_or_path.encode()
    else:
        data = Path(pem_or_path).read_bytes()
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def public_key_raw_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """Raw 32-byte public key, base64url: the form a browser's WebCrypto imports."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return b64u(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return b64u(key.sign(message))


def verify(key: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    try:
        key.verify(unb64u(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_record(key: Ed25519PrivateKey, record: dict[str, Any], field: str) -> str:
    """Signature over the canonical record without ``field``."""
    return sign(key, canonical_json.dumps({k: v for k, v in record.items() if k != field}))


def verify_record(key: Ed25519PublicKey, record: dict[str, Any], field: str) -> bool:
    signature = record.get(field)
    if not isinstance(signature, str):
        return False
    body = canonical_json.dumps({k: v for k, v in record.items() if k != field})
    return verify(key, body, signature)
