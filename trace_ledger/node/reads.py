"""Reads of one node's own store: the same answers ``Ledger`` gives, from this node's copy
alone (its own records, its own signature)."""

from __future__ import annotations

from typing import Any

import orjson

from market_protocol import merkle
from market_protocol.bloom import key_digest

from ..block_builder import record_id_digest
from ..entries import leaf_data
from ..key_index import key_id
from .chain import NodeChain

__all__ = ["locate", "get", "proof", "block", "consistency", "ledger_root"]


def locate(chain: NodeChain, trace_key: str) -> list[dict[str, Any]]:
    """Every committed entry carrying ``trace_key``, in chain order (Bloom filters first)."""
    digest, store = key_digest(trace_key), chain.store
    found = []
    for height in chain.blooms.candidates(digest):
        found += [(height, index) for index in store.key_lookup(height, key_id(digest))]
    return [{"record_id": row[1], "kind": row[2], "height": row[3], "index": row[4]}
            for row in store.leaves_at(found) if trace_key in orjson.loads(row[6])]


def _leaf(chain: NodeChain, record_id: str) -> tuple | None:
    return chain.store.leaf(record_id, record_id_digest(record_id))


def get(chain: NodeChain, record_id: str) -> dict[str, Any] | None:
    row = _leaf(chain, record_id)
    if row is None:
        return None
    _, _, kind, height, index, record_hash, keys_json = row
    body = chain.store.record(height, index)
    keys = orjson.loads(keys_json)
    leaf = merkle.leaf_hash(leaf_data(kind, record_id, record_hash.hex(), keys))
    return {"record_id": record_id, "kind": kind, "height": height, "index": index,
            "record_hash": record_hash.hex(), "leaf_hash": leaf.hex(), "trace_keys": keys,
            "record": None if body is None else orjson.loads(body),
            "record_canonical": None if body is None else body.decode(),
            "held_by": [chain.org] if body is not None else []}


def proof(chain: NodeChain, record_id: str) -> dict[str, Any] | None:
    """The ``proofs`` item of docs/protocol.md §7, from this node's copy."""
    row = _leaf(chain, record_id)
    if row is None:
        return None
    _, _, kind, height, index, record_hash, keys_json = row
    store = chain.store
    body = store.record(height, index)
    keys, record_hash_hex = orjson.loads(keys_json), record_hash.hex()
    leaf = merkle.leaf_hash(leaf_data(kind, record_id, record_hash_hex, keys))
    block_hash_hex, header, signatures = store.block_head(height)
    path, tree_size = store.audit_path(height, index)
    return {"record_canonical": None if body is None else body.decode(),
            "record_hash": record_hash_hex,
            "leaf": {"kind": kind, "record_id": record_id, "record_hash": record_hash_hex,
                     "trace_keys": keys},
            "leaf_hash": leaf.hex(), "leaf_index": index,
            "tree_size": tree_size, "audit_path": [h.hex() for h in path],
            "block": {"header": orjson.loads(header), "block_hash": block_hash_hex,
                      "signatures": orjson.loads(signatures)}}


def block(chain: NodeChain, height: int) -> dict[str, Any] | None:
    row = chain.store.block(height)
    if row is None:
        return None
    blob = row[5]
    return {"height": row[0], "block_hash": row[1], "header": orjson.loads(row[2]),
            "signatures": orjson.loads(row[3]),
            "leaf_hashes": [blob[i:i + 32].hex() for i in range(0, len(blob), 32)]}


def consistency(chain: NodeChain, old_size: int, new_size: int) -> list[str]:
    """RFC 6962 consistency proof between ledger sizes (in blocks); ValueError if out of
    range."""
    hashes = chain.block_hashes()
    if not 1 <= old_size <= new_size <= len(hashes):
        raise ValueError(f"need 1 <= old <= new <= {len(hashes)}, got {old_size}, {new_size}")
    leaves = [merkle.leaf_hash(h) for h in hashes[:new_size]]
    return [h.hex() for h in merkle.consistency_proof(leaves, old_size)]


def ledger_root(chain: NodeChain, size: int) -> str:
    hashes = chain.block_hashes()[:size]
    if len(hashes) != size:
        raise ValueError(f"the ledger has fewer than {size} blocks")
    return merkle.root([merkle.leaf_hash(h) for h in hashes]).hex()
