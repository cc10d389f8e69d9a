"""The Ed25519 keys of the orderer and of each organisation's node, kept under data-dir.

Each node's key sits beside its own store (``<data-dir>/<org>/node_key.pem``) and the
orderer's under ``<data-dir>/orderer/``, so moving a node's directory moves its identity.
Files are created with mode 0600 on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from market_protocol.signing import load_or_create_private_key, public_key_raw_b64

__all__ = ["ORDERER", "load_signers", "load_public_key", "public_keys"]

ORDERER = "orderer"


def _key_path(data_dir: Path, signer: str) -> Path:
    name = "orderer_key.pem" if signer == ORDERER else "node_key.pem"
    return data_dir / signer / name


def load_signers(data_dir: Path, orgs: Sequence[str]) -> dict[str, Ed25519PrivateKey]:
    """``{"orderer": key, org: key, ...}``, creating missing keys."""
    return {signer: load_or_create_private_key(_key_path(data_dir, signer))
            for signer in (ORDERER, *orgs)}


def load_public_key(data_dir: Path, signer: str) -> Ed25519PublicKey:
    """The public half of an existing key; raises FileNotFoundError, never creates one."""
    path = _key_path(data_dir, signer)
    if not path.exists():
        raise FileNotFoundError(f"no key for {signer} at {path}")
    return load_or_create_private_key(path).public_key()


def public_keys(signers: dict[str, Ed25519PrivateKey]) -> dict[str, str]:
    """Raw 32-byte public keys, base64url: what a browser's WebCrypto imports."""
    return {signer: public_key_raw_b64(key) for signer, key in signers.items()}
