"""Block headers: building, hashing and signing them (docs/protocol.md §7). Pure.

A header commits to its leaves (Merkle root), to the trace keys in them (Bloom filter)
and to the whole history before it (``prev_hash``); the orderer and every organisation's
node sign its canonical bytes, so changing anything in a block or before it is visible.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from market_protocol import canonical_json, merkle
from market_protocol.bloom import BloomFilter
from market_protocol.signing import sign, verify

__all__ = ["BLOCK_SCHEMA", "GENESIS_PREV_HASH", "build_header", "header_bytes", "block_hash",
           "sign_header", "verify_signature"]

BLOCK_SCHEMA = "tracepay.block/1"
#: ``prev_hash`` of block 1: there is nothing before it.
GENESIS_PREV_HASH = "00" * 32


def build_header(height: int, prev_hash: str, leaf_hashes: Sequence[bytes],
                 bloom: BloomFilter, time_ms: int) -> dict[str, Any]:
    """The header of block ``height`` (1, 2, ...) over ``leaf_hashes`` in order, with
    ``bloom`` holding every trace key of its leaves."""
    if height < 1:
        raise ValueError(f"block heights start at 1, got {height}")
    if not leaf_hashes:
        raise ValueError("a block needs at least one leaf")
    return {"schema": BLOCK_SCHEMA, "height": height, "prev_hash": prev_hash,
            "merkle_root": merkle.root(leaf_hashes).hex(), "bloom": bloom.to_b64u(),
            "bloom_k": bloom.k, "time_ms": time_ms, "count": len(leaf_hashes)}


def header_bytes(header: dict[str, Any]) -> bytes:
    """What is hashed and signed: the canonical JSON of the header."""
    return canonical_json.dumps(header)


def block_hash(header: dict[str, Any]) -> str:
    return hashlib.sha256(header_bytes(header)).hexdigest()


def sign_header(signer: str, key: Ed25519PrivateKey, header: dict[str, Any]) -> dict[str, str]:
    return {"signer": signer, "sig": sign(key, header_bytes(header))}


def verify_signature(key: Ed25519PublicKey, header: dict[str, Any], signature: str) -> bool:
    return verify(key, header_bytes(header), signature)
