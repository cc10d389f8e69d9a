"""The gateway's long-lived secrets on disk: the master key and its Ed25519 signing key.

The master key (32 random bytes) derives every device key, so it is the one secret that
must never leave the data directory: created once with mode 0600, never logged.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from market_protocol.signing import load_or_create_private_key

__all__ = ["MASTER_KEY_FILE", "SIGNING_KEY_FILE", "load_or_create_master_key",
           "load_or_create_signing_key", "write_secret_file"]

MASTER_KEY_FILE = "master.key"
SIGNING_KEY_FILE = "gateway_ed25519.pem"


def write_secret_file(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 (fails if it exists, so a key is never overwritten)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def load_or_create_master_key(data_dir: str | os.PathLike[str]) -> bytes:
    path = Path(data_dir) / MASTER_KEY_FILE
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process won the race: read it
            write_secret_file(path, secrets.token_bytes(32))
    key = path.read_bytes()
    if len(key) != 32:
        raise ValueError(f"{path} must hold exactly 32 bytes, found {len(key)}")
    return key


def load_or_create_signing_key(data_dir: str | os.PathLike[str]) -> Ed25519PrivateKey:
    path = Path(data_dir) / SIGNING_KEY_FILE
    try:
        return load_or_create_private_key(path)
    except FileExistsError:
        return load_or_create_private_key(path)
