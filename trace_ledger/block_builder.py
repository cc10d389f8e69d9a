"""Building a block from queued entries: everything its writes need, computed once for
all nodes (record and leaf hashes, Merkle tree, Bloom filter, header, key index, rows).
Pure apart from reading the clock for the header's time.
"""

from __future__ import annotations

import hashlib
import re
import struct
import time
from dataclasses import dataclass
from itertools import chain, repeat

import orjson

from market_protocol import merkle
from market_protocol.bloom import BloomFilter

from .blocks import block_hash, build_header, pack_inner_nodes
from .entries import LedgerEntry, leaf_data_from_json
from .key_index import key_ids, pack_key_index
from .node_store import pack_leaves

__all__ = ["BLOOM_FP_RATE", "Queued", "BlockBuild", "KeyDigests", "record_id_digest"]

#: Per-block false-positive rate of the Bloom filters. A lookup asks every block, so the
#: rate that matters is per lookup: at 1 % a million trades in 500 blocks would send an
#: absent code to about five blocks' indexes; at 0.1 % (and the power-of-two rounding,
#: which lowers it further) almost never.
BLOOM_FP_RATE = 0.001


def record_id_digest(record_id: str) -> int:
    """64-bit digest of a record id: a small, fixed-size index key (ids are compared too).
    Signed, because SQLite integers are: the first 8 bytes of ``SHA-256(utf8(record_id))``
    as a big-endian signed integer (read in place; computed once per submitted entry)."""
    return _signed_head(hashlib.sha256(record_id.encode()).digest())[0]


_signed_head = struct.Struct(">q").unpack_from


@dataclass(slots=True)
class Queued:
    """An endorsed entry, the canonical bytes of its record and its record id's digest
    (computed once at submission, where duplicates are looked up by it)."""

    entry: LedgerEntry
    body: bytes
    rid: int


class BlockBuild:
    """Everything one block's writes need, computed once for all nodes.

    Building a block is on the commit path, so every step is a comprehension or one loop
    over the whole batch, and each distinct trace key is hashed once per block however
    many leaves carry it; the key index is packed from flat lists of key ids and leaf
    indexes (:func:`.key_index.pack_key_index`), never from a tuple per key and leaf.
    """

    def __init__(self, batch: list[Queued], height: int, first_seq: int, prev_hash: str,
                 key_digests: KeyDigests | None = None, *, time_ms: int | None = None,
                 stream_seq: int | None = None) -> None:
        """``time_ms`` and ``stream_seq`` fix the header's time and stream position: a node
        takes both from the stream message, so every node cuts the same header."""
        sha256, dumps = hashlib.sha256, orjson.dumps
        hashes = [sha256(q.body).digest() for q in batch]
        # One pass over the leaves: each leaf's sorted, distinct keys as JSON, and all of
        # them in one flat list (with a count per leaf) for the key index. Flat lists, not
        # a list per key: each container alive across the build brings a full collection
        # of the process's heap nearer.
        keys_json: list[str] = []
        flat_keys: list[str] = []
        counts: list[int] = []
        for q in batch:
            keys = sorted(set(q.entry.trace_keys))
            # decoded at once: kept as str, orjson's bytes would hold a larger buffer each
            keys_json.append(dumps(keys).decode())
            flat_keys += keys
            counts.append(len(keys))
        self.leaf_hashes = _leaf_hashes(batch, hashes, keys_json)
        distinct = list(dict.fromkeys(flat_keys))
        digests = key_digests(distinct) if key_digests else [
            sha256(key.encode()).digest() for key in distinct]
        self.bloom = BloomFilter.for_digests(digests, BLOOM_FP_RATE)
        tree = merkle.levels(self.leaf_hashes)
        self.inner_nodes = pack_inner_nodes(tree)
        private = [(i, q.entry.visible_to) for i, q in enumerate(batch)
                   if q.entry.visible_to is not None]
        self.header = build_header(height, prev_hash, tree, self.bloom,
                                   int(time.time() * 1000) if time_ms is None else time_ms,
                                   private, stream_seq)
        self.hash = block_hash(self.header)
        ids = key_ids(digests)
        id_of = dict(zip(distinct, ids, strict=True))
        self.key_index = pack_key_index(
            list(map(id_of.__getitem__, flat_keys)),
            list(chain.from_iterable(map(repeat, range(len(counts)), counts))),
            in_leaf_order=len(set(ids)) == len(ids))  # else two keys' ids collide
        self.leaves = pack_leaves(first_seq, height, hashes, [
            (q.entry.record_id, q.entry.kind, kj, q.rid)
            for q, kj in zip(batch, keys_json, strict=True)])


class KeyDigests:
    """Digests of recently seen trace keys, kept by a ledger for its block builds (which
    its lock serialises). A market's merchant ids and lots recur block after block (a
    trade's own trace code does not), and a dictionary lookup costs a seventh of hashing
    the key again. Emptied whenever it would exceed ``size`` keys (100,000: about 15 MB).
    """

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._known: dict[str, bytes] = {}

    def __call__(self, keys: list[str]) -> list[bytes]:
        """``key_digest`` of each of ``keys``."""
        known, sha256 = self._known, hashlib.sha256
        if len(known) + len(keys) > self.size:
            known.clear()
        missing = [key for key in keys if key not in known]
        known.update(zip(missing, [sha256(key.encode()).digest() for key in missing],
                         strict=True))
        return list(map(known.__getitem__, keys))


#: A character JSON escapes (orjson escapes exactly these): where none occurs in a
#: string, its JSON form is the string in quotes.
_json_escaped = re.compile(r'[\x00-\x1f"\\]').search


def _leaf_hashes(batch: list[Queued], hashes: list[bytes], keys_json: list[str]) -> list[bytes]:
    """``merkle.leaf_hash(leaf_data(...))`` of every leaf.

    Kinds and record ids that passed :meth:`LedgerEntry.check` never need escaping, so
    the leaf's JSON is one formatted string per leaf instead of three encoder calls and a
    join; one search over the whole block confirms it, and a block where it does not hold
    takes the general path. Tests pin both to :func:`.entries.leaf_data`.
    """
    sha256 = hashlib.sha256
    if _json_escaped("".join([q.entry.kind + q.entry.record_id for q in batch])):
        return [sha256(b"\x00" + leaf_data_from_json(q.entry.kind, q.entry.record_id, h.hex(),
                                                     kj.encode())).digest()
                for q, h, kj in zip(batch, hashes, keys_json, strict=True)]
    return [sha256(f'\x00{{"kind":"{q.entry.kind}","record_hash":"{h.hex()}","record_id":'
                   f'"{q.entry.record_id}","trace_keys":{kj}}}'.encode()).digest()
            for q, h, kj in zip(batch, hashes, keys_json, strict=True)]
