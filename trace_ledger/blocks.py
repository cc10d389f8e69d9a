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

from market_protocol import canonical_json
from market_protocol.bloom import BloomFilter
from market_protocol.signing import sign, verify

__all__ = ["BLOCK_SCHEMA", "GENESIS_PREV_HASH", "build_header", "header_bytes", "block_hash",
           "sign_header", "verify_signature", "pack_inner_nodes", "StoredTree", "must_hold"]

BLOCK_SCHEMA = "tracepay.block/1"
#: ``prev_hash`` of block 1: there is nothing before it.
GENESIS_PREV_HASH = "00" * 32


def build_header(height: int, prev_hash: str, tree: Sequence[Sequence[bytes]],
                 bloom: BloomFilter, time_ms: int,
                 private: Sequence[tuple[int, Sequence[str]]] = (),
                 stream_seq: int | None = None) -> dict[str, Any]:
    """The header of block ``height`` (1, 2, ...) over the Merkle ``tree`` of its leaves
    (``merkle.levels``), with ``bloom`` holding every trace key of its leaves.

    ``private`` lists ``(leaf index, organisations)`` for each record kept only by the
    nodes of those organisations; every other record is kept by every node. Signed with
    the header, so a node that lost (or was made to drop) a record it must hold is named
    by verification. Omitted when empty: a block of public records keeps its old form.

    ``stream_seq`` is the transaction stream's sequence of the message the block was cut
    from (a node's blocks); omitted for blocks of the in-process orderer.
    """
    if height < 1:
        raise ValueError(f"block heights start at 1, got {height}")
    if not tree or not tree[0]:
        raise ValueError("a block needs at least one leaf")
    header = {"schema": BLOCK_SCHEMA, "height": height, "prev_hash": prev_hash,
              "merkle_root": tree[-1][0].hex(), "bloom": bloom.to_b64u(),
              "bloom_k": bloom.k, "time_ms": time_ms, "count": len(tree[0])}
    if stream_seq is not None:
        header["stream_seq"] = stream_seq
    if private:
        header["private"] = [[index, sorted(set(orgs))] for index, orgs in private]
    return header


def must_hold(header: dict[str, Any], org: str) -> set[int]:
    """The leaf indexes whose off-chain record ``org``'s node must keep, as the header
    commits to it; raises ValueError when the header's ``private`` list is malformed."""
    count, private = header["count"], header.get("private", [])
    if not isinstance(private, list):
        raise ValueError("'private' is not a list")
    held = set(range(count))
    for item in private:
        if (not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], int)
                or not 0 <= item[0] < count or not isinstance(item[1], list)):
            raise ValueError(f"'private' item {item!r} is not [leaf index, [orgs]]")
        if org not in item[1]:
            held.discard(item[0])
    return held


def header_bytes(header: dict[str, Any]) -> bytes:
    """What is hashed and signed: the canonical JSON of the header."""
    return canonical_json.dumps(header)


def block_hash(header: dict[str, Any]) -> str:
    return hashlib.sha256(header_bytes(header)).hexdigest()


def sign_header(signer: str, key: Ed25519PrivateKey, header: dict[str, Any]) -> dict[str, str]:
    return {"signer": signer, "sig": sign(key, header_bytes(header))}


def verify_signature(key: Ed25519PublicKey, header: dict[str, Any], signature: str) -> bool:
    return verify(key, header_bytes(header), signature)


def pack_inner_nodes(tree: Sequence[Sequence[bytes]]) -> bytes:
    """Every level above the leaves, concatenated bottom-up: what a node stores so that an
    audit path is read, not recomputed."""
    return b"".join(b"".join(level) for level in tree[1:])


class _Level:
    """One level of a stored tree, indexable like a list of 32-byte hashes."""

    __slots__ = ("blob", "offset", "size")

    def __init__(self, blob: bytes, offset: int, size: int) -> None:
        self.blob, self.offset, self.size = blob, offset, size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> bytes:
        start = self.offset + 32 * index
        return self.blob[start:start + 32]


class StoredTree(list):
    """The levels of a block's Merkle tree as views over the stored leaf hashes and
    :func:`pack_inner_nodes`, for ``merkle.inclusion_proof_from_levels``."""

    def __init__(self, leaf_hashes: bytes, inner_nodes: bytes) -> None:
        size = len(leaf_hashes) // 32
        levels = [_Level(leaf_hashes, 0, size)]
        offset = 0
        while size > 1:
            size = (size + 1) // 2
            levels.append(_Level(inner_nodes, offset, size))
            offset += 32 * size
        if offset != len(inner_nodes):
            raise ValueError(f"inner nodes hold {len(inner_nodes)} bytes, the tree needs {offset}")
        super().__init__(levels)
