"""The ledger: solo ordering in-process over three organisations' nodes.

``submit`` has every node endorse each entry (run the caller's rules) and queues the
endorsed ones; the orderer cuts a block when ``block_max`` entries wait or the oldest has
waited ``block_timeout_s``. Cutting hashes the records, builds the Merkle root and Bloom
filter, collects the orderer's and every node's signature over the header, and writes the
block to each node's own SQLite file, each in one transaction. A node keeps a full record
only if its organisation is in the entry's ``visible_to``.
"""

from __future__ import annotations

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

import orjson

from market_protocol import ORGS, canonical_json
from market_protocol.bloom import BloomFilter

from .block_builder import BlockBuild, KeyDigests, Queued, record_id_digest
from .blocks import (
    GENESIS_PREV_HASH,
    block_hash,
    sign_header,
)
from .bloom_index import BloomIndex
from .entries import LedgerEntry, Receipt
from .ledger_reads import LedgerReads
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


class Ledger(LedgerReads):
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
