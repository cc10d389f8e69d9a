"""The ledger: solo ordering in-process over three organisations' nodes.

``submit`` has every node endorse each entry (run the caller's rules) and queues the
endorsed ones; the orderer cuts a block when ``block_max`` entries wait or the oldest has
waited ``block_timeout_s``. Cutting hashes the records, builds the Merkle root and Bloom
filter, collects the orderer's and every node's signature over the header, and writes the
block to each node's own SQLite file, each in one transaction. A node keeps a full record
only if its organisation is in the entry's ``visible_to``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from market_protocol import ORGS, canonical_json, merkle
from market_protocol.bloom import BloomFilter, key_digest

from .block_builder import BlockBuild, KeyDigests, Queued, record_id_digest
from .blocks import (
    GENESIS_PREV_HASH,
    block_hash,
    sign_header,
)
from .bloom_index import BloomIndex
from .entries import LedgerEntry, Location, Receipt, StoredEntry, leaf_data
from .key_index import key_id
from .node_process import NodeProcess
from .node_store import STORE_NAME, NodeStore, RecordBatch, pack_records
from .signers import load_signers, public_keys
from .verification import VerifyReport
from .verify_jobs import verify_stores

__all__ = ["Ledger", "Endorse", "LedgerStoreError", "SWITCH_INTERVAL_S"]


class LedgerStoreError(RuntimeError):
    """A node could not store a block. The block was never acknowledged; reopening the
    ledger drops the partial copies so that its entries are ordered again."""

log = logging.getLogger(__name__)

#: The interpreter switch interval (seconds) for a process that commits to the ledger.
#: Node threads hand SQLite whole statements and need the interpreter lock only between
#: them; at Python's default of 5 ms each hand-back can wait that long behind the
#: orderer's Python work (a node's block write took 34 us of wall time per trade for 5 of
#: CPU; 15-17 at 0.5-1 ms). Process-wide, so the process's owner sets it: the bridge does.
SWITCH_INTERVAL_S = 0.001

#: A node's endorsement rule: ``None`` to endorse, or the reason it refuses.
Endorse = Callable[[LedgerEntry], "str | None"]


@dataclass(frozen=True, slots=True)
class _Head:
    height: int = 0
    block_hash: str = GENESIS_PREV_HASH
    trades: int = 0


@dataclass(slots=True)
class _InFlight:
    """A block whose nodes are still storing it."""

    writes: list[Future[None]]
    block: BlockBuild
    head: _Head
    batch: list[Queued]


class Ledger:
    """See the module docstring. Thread-safe; open with :meth:`open`, end with :meth:`close`."""

    def __init__(self, data_dir: Path, block_max: int, block_timeout_s: float,
                 endorse: Endorse | None, orgs: Sequence[str] = ORGS,
                 node_processes: bool = False) -> None:
        if block_max < 1:
            raise ValueError(f"block_max must be at least 1, got {block_max}")
        if block_timeout_s <= 0:
            raise ValueError(f"block_timeout_s must be positive, got {block_timeout_s}")
        self.data_dir, self.orgs = data_dir, tuple(orgs)
        self.block_max, self.block_timeout_s, self.endorse = block_max, block_timeout_s, endorse
        self.nodes = {org: NodeStore(org, data_dir / org / STORE_NAME) for org in self.orgs}
        self._signers = load_signers(data_dir, self.orgs)
        self._pending: OrderedDict[str, Queued] = OrderedDict()
        self._key_digests = KeyDigests()
        self._writing: dict[str, Queued] = {}
        self._inflight: _InFlight | None = None
        self._oldest = 0.0
        self._changed = threading.Condition(threading.RLock())
        self._closing = False
        self._failure: LedgerStoreError | None = None
        self._pool = ThreadPoolExecutor(len(self.orgs), thread_name_prefix="ledger-node")
        self._head, self._blooms = _Head(), BloomIndex()
        self._block_hashes: list[bytes] = []
        self._load()
        self._tip = self._head
        self._writers = ({org: NodeProcess(org, node.path) for org, node in self.nodes.items()}
                         if node_processes else None)
        self._stored: queue.SimpleQueue[_InFlight | None] = queue.SimpleQueue()
        self._timer = threading.Thread(target=self._cut_on_timeout, name="ledger-orderer",
                                       daemon=True)
        self._timer.start()
        self._publisher = threading.Thread(target=self._publish_stored, name="ledger-publisher",
                                           daemon=True)
        self._publisher.start()

    @classmethod
    def open(cls, data_dir: str | os.PathLike[str], block_max: int = 500,
             block_timeout_s: float = 0.2, endorse: Endorse | None = None,
             node_processes: bool = False) -> Ledger:
        """Open (creating on first use) the ledger under ``data_dir``.

        ``node_processes`` runs each organisation's node writes in a process of its own
        (:mod:`.node_process`): commits then use more than one core, at the price of three
        processes started on opening (about a second). For a long-running bridge.
        """
        return cls(Path(data_dir), block_max, block_timeout_s, endorse,
                   node_processes=node_processes)

    def _load(self) -> None:
        self._settle_heights()
        reference = self.nodes[self.orgs[0]]
        for height, header_text in reference.block_headers():
            header = orjson.loads(header_text)
            self._blooms.add(height, BloomFilter.from_b64u(header["bloom"], header["bloom_k"]))
            self._block_hashes.append(bytes.fromhex(block_hash(header)))
            self._head = _Head(height, self._block_hashes[-1].hex(),
                               self._head.trades + header["count"])

    def _settle_heights(self) -> None:
        """After a crash while the nodes were storing a block, bring them back to the
        highest block all of them hold.

        A block is acknowledged (``flush`` returns, the caller answers its sender) only
        once every node has stored it, so a block some node lacks was never acknowledged:
        its sender delivers it again, and dropping the partial copies is what lets it be
        ordered again instead of clashing with them. Only that shape is settled: one block
        at most (one is stored at a time), and nothing of it on the nodes that lack it.
        Anything else is not a crash; it is left as found for ``verify`` to name.
        """
        heights = {org: (node.last_block() or (0,))[0] for org, node in self.nodes.items()}
        common, top = min(heights.values()), max(heights.values())
        if common == top:
            return
        ahead = [org for org, height in heights.items() if height == top]
        behind = [org for org, height in heights.items() if height == common]
        crash = top == common + 1 and not any(self.nodes[org].has_leaves(top) for org in behind)
        if not crash:
            log.error("ledger nodes disagree (heights %s) in a way a crash does not explain; "
                      "leaving them as found: run `tracepay ledger verify`", heights)
            return
        for org in ahead:
            log.warning("node %s holds block %d, which not every node stored (heights %s); "
                        "dropping it so its entries are ordered again", org, top, heights)
            self.nodes[org].drop_blocks_above(common)

    def close(self) -> None:
        """Cut a last block from whatever waits, stop the orderer and close the files."""
        with self._changed:
            if self._closing:
                return
            self._closing = True
            self._changed.notify_all()
        self._timer.join()
        if self._failure is None:
            self.flush()
        self._pool.shutdown()
        for writer in (self._writers or {}).values():
            writer.close()
        self._stored.put(None)
        self._publisher.join()
        for node in self.nodes.values():
            node.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- submitting and ordering ------------------------------------------------------------

    def submit(self, entries: Sequence[LedgerEntry]) -> list[Receipt]:
        """Endorse and queue ``entries``; idempotent on ``record_id``.

        Raises LedgerEntryError (nothing queued) when any entry is malformed.
        """
        checked = [Queued(entry, entry.check(), record_id_digest(entry.record_id))
                   for entry in entries]
        receipts = []
        with self._changed:
            self._check_usable()
            was_empty = not self._pending
            known = self._reference.known_record_ids([q.rid for q in checked])
            for queued in checked:
                record_id = queued.entry.record_id
                if record_id in known or record_id in self._pending or record_id in self._writing:
                    receipts.append(Receipt(record_id, "duplicate"))
                    continue
                refusals = self._endorsements(queued.entry)
                if refusals:
                    receipts.append(Receipt(record_id, "refused", refusals))
                    continue
                if not self._pending:
                    self._oldest = time.monotonic()
                self._pending[record_id] = queued
                receipts.append(Receipt(record_id, "accepted"))
            while len(self._pending) >= self.block_max:
                self._cut()
            if was_empty and self._pending:
                # The orderer sleeps without a deadline only while nothing waits; once
                # entries wait it sleeps until the oldest one's timeout, which later
                # entries do not move. Waking it on every submit cost a thread switch and
                # a lock hand-over per trade (about 55 µs of CPU per trade on the orderer).
                self._changed.notify_all()
        return receipts

    def _endorsements(self, entry: LedgerEntry) -> dict[str, str]:
        """Each node runs the rule itself; a rule that crashes refuses, with the reason."""
        if self.endorse is None:
            return {}
        refusals = {}
        for org in self.orgs:
            try:
                reason = self.endorse(entry)
            except Exception as exc:  # a broken rule must not take the orderer down
                log.exception("endorsement rule failed at %s for %s", org, entry.record_id)
                reason = f"endorsement rule failed: {type(exc).__name__}: {exc}"
            if reason:
                refusals[org] = str(reason)
        return refusals

    def flush(self) -> None:
        """Cut blocks now from everything that waits, and wait until every node has them."""
        with self._changed:
            self._check_usable()
            while self._pending:
                self._cut()
            self._finish_inflight()

    def pending(self) -> int:
        """Entries accepted but not yet readable from every node."""
        with self._changed:
            return len(self._pending) + len(self._writing)

    def _cut_on_timeout(self) -> None:
        with self._changed:
            while not self._closing:
                if not self._pending:
                    self._changed.wait()
                    continue
                wait = self._oldest + self.block_timeout_s - time.monotonic()
                if self._failure is not None:
                    self._changed.wait()
                    continue
                if wait > 0:
                    self._changed.wait(wait)
                    continue
                try:
                    self._cut()
                except Exception:
                    log.exception("cutting a block failed; entries stay queued")
                    self._changed.wait(self.block_timeout_s)

    def _cut(self) -> None:
        """Order and sign one block from the oldest queued entries and start the nodes'
        writes. Caller holds the lock.

        The writes run while the caller goes on (building the next block overlaps storing
        this one); the block becomes readable once every node has stored it. The next cut
        first waits for them, so each node stores blocks strictly in order.
        """
        batch = [self._pending[rid] for rid in list(self._pending)[:self.block_max]]
        tip = self._tip
        height, first_seq = tip.height + 1, tip.trades
        block = BlockBuild(batch, height, first_seq, tip.block_hash, self._key_digests)
        signatures = [sign_header(signer, key, block.header)
                      for signer, key in self._signers.items()]
        block_row = (height, block.hash, canonical_json.dumps(block.header).decode(),
                     orjson.dumps(signatures).decode(), first_seq, b"".join(block.leaf_hashes),
                     block.key_index, block.inner_nodes)
        self._finish_inflight()
        writes = self._start_writes(block_row, block, batch)
        for queued in batch:
            del self._pending[queued.entry.record_id]
            self._writing[queued.entry.record_id] = queued
        self._oldest = time.monotonic()
        self._tip = _Head(height, block.hash, first_seq + len(batch))
        inflight = self._inflight = _InFlight(writes, block, self._tip, batch)
        for write in writes:
            write.add_done_callback(lambda _: self._publish_when_stored(inflight))

    def _start_writes(self, block_row: tuple, block: BlockBuild,
                      batch: list[Queued]) -> list[Future[None]]:
        records = self._visible_records(batch)
        if self._writers is None:
            return [self._pool.submit(node.write_block, block_row, block.leaves, records[org])
                    for org, node in self.nodes.items()]
        shared = NodeProcess.pack((block_row, block.leaves))
        return [self._pool.submit(writer.write_block, shared, NodeProcess.pack(records[org]))
                for org, writer in self._writers.items()]

    def _finish_inflight(self) -> None:
        """Wait for the block being stored, then make it readable. Caller holds the lock."""
        inflight = self._inflight
        if inflight is None:
            return
        for write in inflight.writes:
            try:
                write.result()
            except Exception as exc:
                self._failure = LedgerStoreError(
                    f"a node failed to store block {inflight.head.height} ({exc}); the ledger "
                    "accepts nothing more until it is reopened, which drops the partial block")
                raise self._failure from exc
        self._publish(inflight)

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _publish_when_stored(self, inflight: _InFlight) -> None:
        """Run as each node finishes; the last one to finish publishes the block."""
        if not all(write.done() for write in inflight.writes):
            return
        failed = [write.exception() for write in inflight.writes if write.exception()]
        if failed:
            log.error("a node failed to store block %d: %s", inflight.head.height, failed[0])
            return
        self._stored.put(inflight)  # never wait for the lock here: this is a writer thread

    def _publish_stored(self) -> None:
        """The publisher thread: makes blocks readable as their writes finish."""
        while (inflight := self._stored.get()) is not None:
            with self._changed:
                self._publish(inflight)

    def _publish(self, inflight: _InFlight) -> None:
        """Make a stored block readable (once). Caller holds the lock."""
        if self._inflight is not inflight:
            return
        self._inflight = None
        self._head = inflight.head
        self._block_hashes.append(bytes.fromhex(inflight.block.hash))
        self._blooms.add(inflight.head.height, inflight.block.bloom)
        for queued in inflight.batch:
            self._writing.pop(queued.entry.record_id, None)
        self._changed.notify_all()

    def _visible_records(self, batch: list[Queued]) -> dict[str, RecordBatch]:
        """Each node's off-chain records of a block: packed once when every node keeps
        every record, per node when some entries are for their parties only."""
        bodies = [q.body for q in batch]
        private = [(i, q.entry.visible_to) for i, q in enumerate(batch)
                   if q.entry.visible_to is not None]
        if not private:
            return dict.fromkeys(self.orgs, pack_records(bodies))
        packed = {}
        for org in self.orgs:
            kept = bodies.copy()
            for i, visible_to in private:
                if org not in visible_to:
                    kept[i] = b""
            packed[org] = pack_records(kept)
        return packed

    # -- reading ----------------------------------------------------------------------------

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

    def public_keys(self) -> dict[str, str]:
        """``{"orderer": b64u, org: b64u, ...}``: raw Ed25519 public keys."""
        return public_keys(self._signers)

    def verify(self, workers: int | None = None) -> VerifyReport:
        """Check every node from block 1 up (see :mod:`.verification`), in ``workers``
        processes (default: one per CPU) when the ledger is long."""
        with self._changed:
            self.flush()
        return verify_stores({org: node.path for org, node in self.nodes.items()},
                             {name: key.public_key() for name, key in self._signers.items()},
                             workers)
