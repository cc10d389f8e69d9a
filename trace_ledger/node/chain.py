"""The deterministic block rule of one organisation's node, over its own store.

Each stream message makes at most one block: its entries in stream order, leaving out a
malformed entry, an entry whose ``record_id`` is already on this node's ledger (or earlier
in the message), and an entry this node's validation refuses (the refusal is stored with
the stream sequence and reason, and logged). A message with no admissible entry makes no
block. The header takes its time from the stream message's timestamp and records the
stream sequence, so every honest node computes the same headers and roots; each node signs
them with its own key only.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from market_protocol import canonical_json, merkle
from market_protocol.bloom import BloomFilter
from market_protocol.signing import public_key_raw_b64, sign

from ..block_builder import BlockBuild, KeyDigests, Queued, record_id_digest
from ..blocks import GENESIS_PREV_HASH, sign_header
from ..bloom_index import BloomIndex
from ..entries import LedgerEntry, LedgerEntryError
from ..node_store import STORE_NAME, NodeStore, pack_records
from ..rules.contract import check_trade_contract
from ..rules.entry_rules import check_entry
from ..stream import BatchFormatError, parse_batch
from .history import History
from .timings import StageTimings

__all__ = ["NodeChain", "Applied", "HEAD_SCHEMA"]

log = logging.getLogger(__name__)

HEAD_SCHEMA = "tracepay.node_head/1"


@dataclass(frozen=True, slots=True)
class Applied:
    """What one stream message did: the block it made (None: no block) and its refusals."""

    stream_seq: int
    height: int | None
    admitted: int
    skipped: int
    refused: list[tuple[int, str | None, str | None, str]]


class NodeChain:
    """The node's store, its chain head and the block rule. ``apply`` is called by one
    thread (the follower); reads may come from any thread."""

    def __init__(self, org: str, data_dir: Path, key: Ed25519PrivateKey,
                 gateway_key: Ed25519PublicKey | None) -> None:
        self.org, self.key, self.gateway_key = org, key, gateway_key
        self.store = NodeStore(org, data_dir / STORE_NAME)
        self.history = History(self.store)
        self._lock = threading.Lock()
        self._key_digests = KeyDigests()
        self._hashes: list[bytes] = []
        self._trades = 0
        self.blooms = BloomIndex()
        for height, header_text in self.store.block_headers():
            header = orjson.loads(header_text)
            self.blooms.add(height, BloomFilter.from_b64u(header["bloom"], header["bloom_k"]))
            self._hashes.append(bytes.fromhex(canonical_hash(header_text)))
            self._trades += header["count"]
        self._stream_seq = self.history.stream_seq()
        self.timings = StageTimings()

    def close(self) -> None:
        self.store.close()

    # -- the block rule ------------------------------------------------------------------
    @property
    def stream_seq(self) -> int:
        """The last stream sequence this node has committed (blocks and refusals)."""
        return self._stream_seq

    def apply(self, stream_seq: int, time_ms: int, body: bytes) -> Applied | None:
        """Commit what stream message ``stream_seq`` makes; None when it is already
        committed (a re-delivery after a crash or a lost ack: acknowledge and skip)."""
        if stream_seq <= self._stream_seq:
            return None
        refused: list[tuple[int, str | None, str | None, str]] = []
        with self.timings.stage("parse"):
            try:
                batch_id, entries = parse_batch(body)
            except BatchFormatError as exc:
                batch_id, entries = None, []
                refused.append((0, None, None, f"malformed batch: {exc}"))
        with self.timings.stage("validate"):
            admitted, skipped = self._admissible(entries, refused)
        height = None
        statements = self.history.statements(stream_seq, refused)
        if admitted:
            height = self._commit_block(admitted, stream_seq, time_ms, statements)
        else:
            with self.timings.stage("store"):
                self.store.execute(statements)
        self._stream_seq = stream_seq
        self.timings.count(len(entries))
        for position, record_id, kind, reason in refused:
            log.warning("REFUSED stream_seq=%d position=%d record_id=%s kind=%s batch=%s: %s",
                        stream_seq, position, record_id, kind, batch_id, reason)
        return Applied(stream_seq, height, len(admitted), skipped, refused)

    def _admissible(self, entries: list[LedgerEntry],
                    refused: list[tuple[int, str | None, str | None, str]]
                    ) -> tuple[list[Queued], int]:
        rids = [record_id_digest(e.record_id) for e in entries]
        known = self.store.known_record_ids(rids) if entries else set()
        seen: set[str] = set()
        admitted, skipped = [], 0
        for position, (entry, rid) in enumerate(zip(entries, rids, strict=True)):
            if entry.record_id in known or entry.record_id in seen:
                skipped += 1
                continue
            try:
                body = entry.check()
                reason = check_entry(entry, self.history, self._contract)
                if not reason:
                    self.history.admit(entry)
            except LedgerEntryError as exc:
                reason = f"malformed entry: {exc}"
            except Exception as exc:  # a rule that crashes refuses; the node goes on
                log.exception("validation failed on %s", entry.record_id)
                reason = f"validation failed: {type(exc).__name__}: {exc}"
            if reason:
                refused.append((position, entry.record_id, entry.kind, str(reason)))
                continue
            seen.add(entry.record_id)
            admitted.append(Queued(entry, body, rid))
        return admitted, skipped

    def _contract(self, trade: Any, device: Any) -> Any:
        if self.gateway_key is None:
            raise RuntimeError("the node has no gateway key (--gateway-key) to check trades by")
        with self.timings.stage("contract"):
            return check_trade_contract(trade, self.gateway_key,
                                        device or self.history.device_for_trade(trade))

    def _commit_block(self, batch: list[Queued], stream_seq: int, time_ms: int,
                      statements: list[tuple[str, Any]]) -> int:
        started = time.perf_counter()
        height = len(self._hashes) + 1
        prev = self._hashes[-1].hex() if self._hashes else GENESIS_PREV_HASH
        block = BlockBuild(batch, height, self._trades, prev, self._key_digests,
                           time_ms=time_ms, stream_seq=stream_seq)
        signatures = [sign_header(self.org, self.key, block.header)]
        row = (height, block.hash, canonical_json.dumps(block.header).decode(),
               orjson.dumps(signatures).decode(), self._trades, b"".join(block.leaf_hashes),
               block.key_index, block.inner_nodes)
        bodies = [q.body if q.entry.visible_to is None or self.org in q.entry.visible_to
                  else b"" for q in batch]
        records = pack_records(bodies)
        built = time.perf_counter()
        self.timings.add("block", built - started)
        self.store.write_block(row, block.leaves, records, statements)
        self.timings.add("store", time.perf_counter() - built)
        with self._lock:
            self._hashes.append(bytes.fromhex(block.hash))
            self._trades += len(batch)
            self.blooms.add(height, block.bloom)
        return height

    # -- the head ------------------------------------------------------------------------
    def block_hashes(self) -> list[bytes]:
        with self._lock:
            return list(self._hashes)

    def head(self) -> dict[str, Any]:
        """The node's signed tree head: its chain's top and the root over every block hash,
        signed with this node's key (what a cosigned checkpoint is later built from)."""
        with self._lock:
            hashes, trades, seq = list(self._hashes), self._trades, self._stream_seq
        body = {"schema": HEAD_SCHEMA, "org": self.org, "height": len(hashes),
                "block_hash": hashes[-1].hex() if hashes else GENESIS_PREV_HASH,
                "size": trades, "stream_seq": seq,
                "root": merkle.root([merkle.leaf_hash(h) for h in hashes]).hex()}
        return {**body, "signature": sign(self.key, canonical_json.dumps(body)),
                "public_key": public_key_raw_b64(self.key)}


def canonical_hash(header_text: str) -> str:
    """The block hash of a stored (canonical) header text."""
    return hashlib.sha256(header_text.encode()).hexdigest()
