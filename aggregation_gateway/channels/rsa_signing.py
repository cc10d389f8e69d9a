"""RSA-SHA256 (PKCS#1 v1.5) signatures and PEM keys, as Alipay and WeChat Pay both use them.

Alipay calls the algorithm "RSA2", WeChat Pay "SHA256-RSA"; the bytes are the same, so both
adapters sign and verify here.
"""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

__all__ = ["sign", "verify", "load_private_key", "load_public_key"]


def sign(key: RSAPrivateKey, text: str) -> str:
    """Base64 signature over the UTF-8 bytes of ``text``."""
    return base64.b64encode(key.sign(text.encode(), padding.PKCS1v15(),
                                     hashes.SHA256())).decode()


def verify(key: RSAPublicKey, text: str | bytes, signature: str) -> bool:
    """False for a bad signature or one that is not base64; never raises for bad input."""
    data = text.encode() if isinstance(text, str) else text
    try:
        key.verify(base64.b64decode(signature, validate=True), data, padding.PKCS1v15(),
                   hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def load_private_key(path: str) -> RSAPrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, RSAPrivateKey):
        raise ValueError(f"{path} is not an RSA private key")
    return key


def load_public_key(path: str) -> RSAPublicKey:
    key = serialization.load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, RSAPublicKey):
        raise ValueError(f"{path} is not an RSA public key")
    return key
