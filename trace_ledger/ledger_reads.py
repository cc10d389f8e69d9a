"""Reading the in-process ledger: locate by trace key, records, proofs, head, blocks.

The read side of :class:`trace_ledger.ledger.Ledger` (a base class of it), apart from the
ordering and block writing: every read goes to the node stores as they are committed,
and on-chain data is the same on every node, so the first one answers.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import orjson

from market_protocol import merkle
from market_protocol.bloom import key_digest

from .block_builder import record_id_digest
from .bloom_index import BloomIndex
from .entries import Location, StoredEntry, leaf_data
from .key_index import key_id
from .node_store import NodeStore

__all__ = ["LedgerReads"]


class LedgerReads:
    """Needs the attributes :class:`~trace_ledger.ledger.Ledger` sets up."""

    nodes: dict[str, NodeStore]
    orgs: tuple[str, ...]
    _changed: threading.Condition
    _head: Any
    _blooms: BloomIndex
    _block_hashes: list[bytes]

    @property
    def _reference(self) -> NodeStore:
        """On-chain data is identical on every node; reads use the first."""
        return self.nodes[self.orgs[0]]

    def locate(self, trace_key: str, *, bloom: bool = True) -> list[Location]:
        """Every committed entry carrying ``trace_key``, in chain order.

        Each block's Bloom filter is asked first; only blocks it admits are searched, and
        an absent key touches no storage at all. ``bloom=False`` searches every block
        (what a lookup costs without the filters; kept for measurement).
        """
        digest = key_digest(trace_key)
        with self._changed:
            top = self._head.height
        heights = self._blooms.candidates(digest) if bloom else range(1, top + 1)
        if not heights:
            return []
        ident, reference, found = key_id(digest), self._reference, []
        for height in heights:
            found += [(height, index) for index in reference.key_lookup(height, ident)]
        return [Location(row[1], row[2], row[3], row[4])
                for row in reference.leaves_at(found) if trace_key in orjson.loads(row[6])]

    def _holder(self, height: int, index: int,
                org: str | None) -> tuple[bytes | None, tuple[str, ...]]:
        bodies = {name: self.nodes[name].record(height, index) for name in self.orgs}
        held_by = tuple(name for name, body in bodies.items() if body is not None)
        if org is not None:
            return bodies.get(org), held_by
        return (bodies[held_by[0]] if held_by else None), held_by

    def _copy_hashes(self, height: int, index: int) -> dict[str, str | None]:
        """SHA-256 of each node's own copy (None where the node keeps only the hash), so a
        verifier sees one changed copy even when the copy it was served is intact."""
        copies: dict[str, str | None] = {}
        for name in self.orgs:
            body = self.nodes[name].record(height, index)
            copies[name] = None if body is None else hashlib.sha256(body).hexdigest()
        return copies

    def _first_record(self, height: int, index: int, org: str | None) -> bytes | None:
        """The record as ``org``'s node holds it, or as the first node holding it does."""
        for name in (org,) if org is not None else self.orgs:
            node = self.nodes.get(name)
            body = None if node is None else node.record(height, index)
            if body is not None:
                return body
        return None

    def get(self, record_id: str, org: str | None = None) -> StoredEntry | None:
        """A committed entry; its full record as ``org``'s node holds it (any node if None)."""
        row = self._reference.leaf(record_id, record_id_digest(record_id))
        if row is None:
            return None
        _, _, kind, height, index, record_hash, keys_json = row
        body, held_by = self._holder(height, index, org)
        keys = orjson.loads(keys_json)
        leaf = merkle.leaf_hash(leaf_data(kind, record_id, record_hash.hex(), keys))
        return StoredEntry(record_id, kind, height, index, record_hash.hex(), leaf.hex(), keys,
                           None if body is None else orjson.loads(body),
                           None if body is None else body.decode(), held_by)

    def proof(self, record_id: str, org: str | None = None) -> dict[str, Any] | None:
        """The ``proofs`` item of docs/protocol.md §7 for one record, or None if unknown.

        ``record_canonical`` is None when no node (or not ``org``'s) holds the full record.
        """
        row = self._reference.leaf(record_id, record_id_digest(record_id))
        if row is None:
            return None
        _, _, kind, height, index, record_hash, keys_json = row
        body = self._first_record(height, index, org)
        copies = self._copy_hashes(height, index)
        keys, record_hash_hex = orjson.loads(keys_json), record_hash.hex()
        leaf = merkle.leaf_hash(leaf_data(kind, record_id, record_hash_hex, keys))
        block_hash_hex, header, signatures = self._reference.block_head(height)
        path, tree_size = self._reference.audit_path(height, index)
        return {"record_canonical": None if body is None else body.decode(),
                "record_hash": record_hash_hex,
                "node_record_hashes": copies,
                "leaf": {"kind": kind, "record_id": record_id, "record_hash": record_hash_hex,
                         "trace_keys": keys},
                "leaf_hash": leaf.hex(), "leaf_index": index,
                "tree_size": tree_size, "audit_path": [h.hex() for h in path],
                "block": {"header": orjson.loads(header), "block_hash": block_hash_hex,
                          "signatures": orjson.loads(signatures)}}

    def head(self) -> dict[str, Any]:
        """``{"height", "block_hash", "trades", "ledger_root"}``; height 0 is the empty ledger.

        ``ledger_root`` is the RFC 6962 root over the block hashes, the tree that
        :meth:`consistency` proves growth of.
        """
        with self._changed:
            head, hashes = self._head, list(self._block_hashes)
        return {"height": head.height, "block_hash": head.block_hash, "trades": head.trades,
                "ledger_root": merkle.root([merkle.leaf_hash(h) for h in hashes]).hex()}

    def block(self, height: int) -> dict[str, Any] | None:
        """Header, signatures and leaf hashes of block ``height``, or None."""
        row = self._reference.block(height) if isinstance(height, int) else None
        if row is None:
            return None
        blob = row[5]
        return {"height": row[0], "block_hash": row[1], "header": orjson.loads(row[2]),
                "signatures": orjson.loads(row[3]),
                "leaf_hashes": [blob[i:i + 32].hex() for i in range(0, len(blob), 32)]}

    def consistency(self, old_size: int, new_size: int) -> list[str]:
        """RFC 6962 consistency proof between the ledger of ``old_size`` blocks and of
        ``new_size`` blocks (leaves: the block hashes in height order).

        Raises ValueError unless ``1 <= old_size <= new_size <= height``.
        """
        with self._changed:
            hashes = list(self._block_hashes)
        if not 1 <= old_size <= new_size <= len(hashes):
            raise ValueError(f"need 1 <= old_size <= new_size <= {len(hashes)}, "
                             f"got {old_size}, {new_size}")
        leaves = [merkle.leaf_hash(h) for h in hashes[:new_size]]
        return [h.hex() for h in merkle.consistency_proof(leaves, old_size)]

    def ledger_root(self, size: int) -> str:
        """The root over the first ``size`` block hashes (to check a consistency proof)."""
        with self._changed:
            hashes = self._block_hashes[:size]
        if len(hashes) != size:
            raise ValueError(f"the ledger has fewer than {size} blocks")
        return merkle.root([merkle.leaf_hash(h) for h in hashes]).hex()
