"""Building a block from queued entries: everything its writes need, computed once for
all nodes (record and leaf hashes, Merkle tree, Bloom filter, header, key index, rows).
Pure apart from reading the clock for the header's time.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import orjson

from market_protocol import merkle
from market_protocol.bloom import BloomFilter, key_digest

from .blocks import block_hash, build_header, pack_inner_nodes
from .entries import LedgerEntry, leaf_data
from .key_index import build_key_index, key_id
from .node_store import LeafInsert

__all__ = ["BLOOM_FP_RATE", "Queued", "BlockBuild", "record_id_digest"]

#: Per-block false-positive rate of the Bloom filters. A lookup asks every block, so the
#: rate that matters is per lookup: at 1 % a million trades in 500 blocks would send an
#: absent code to about five blocks' indexes; at 0.1 % (and the power-of-two rounding,
#: which lowers it further) almost never.
BLOOM_FP_RATE = 0.001


def record_id_digest(record_id: str) -> int:
    """64-bit digest of a record id: a small, fixed-size index key (ids are compared too).
    Signed, because SQLite integers are."""
    return int.from_bytes(hashlib.sha256(record_id.encode()).digest()[:8], "big", signed=True)


@dataclass(slots=True)
class Queued:
    """An endorsed entry and the canonical bytes of its record."""

    entry: LedgerEntry
    body: bytes


class BlockBuild:
    """Everything one block's writes need, computed once for all nodes."""

    def __init__(self, batch: list[Queued], height: int, first_seq: int, prev_hash: str) -> None:
        hashes = [hashlib.sha256(q.body).digest() for q in batch]
        keys = [sorted(set(q.entry.trace_keys)) for q in batch]
        self.leaf_hashes = [merkle.leaf_hash(leaf_data(q.entry.kind, q.entry.record_id,
                                                       h.hex(), k))
                            for q, h, k in zip(batch, hashes, keys, strict=True)]
        digests = {key: key_digest(key) for entry_keys in keys for key in entry_keys}
        self.bloom = BloomFilter.for_digests(set(digests.values()), BLOOM_FP_RATE)
        tree = merkle.levels(self.leaf_hashes)
        self.inner_nodes = pack_inner_nodes(tree)
        self.header = build_header(height, prev_hash, tree, self.bloom, int(time.time() * 1000))
        self.hash = block_hash(self.header)
        key_ids = {key: key_id(digest) for key, digest in digests.items()}
        self.key_index = build_key_index((key_ids[key], i) for i, entry_keys in enumerate(keys)
                                         for key in entry_keys)
        self.leaf_rows: list[LeafInsert] = [
            (first_seq + i, q.entry.record_id, q.entry.kind, height, i, h,
             orjson.dumps(k).decode(), record_id_digest(q.entry.record_id))
            for i, (q, h, k) in enumerate(zip(batch, hashes, keys, strict=True))]
