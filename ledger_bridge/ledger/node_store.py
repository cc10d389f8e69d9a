"""One organisation's copy of the ledger: a SQLite file (WAL) under ``<data-dir>/<org>/``.

The store is a thin I/O shell: it writes a finished block in one transaction (so a reader
never sees half a block) and answers the few queries the ledger needs. It decides
nothing; building, signing and checking blocks happens elsewhere.

Tables: ``blocks`` (header, signatures, the leaf hashes for fast proofs), ``leaves`` (the
on-chain part of each entry, by global position ``seq``, found by record id through the
64-bit ``rid``), ``records`` (off-chain canonical record bytes, only for entries this
organisation may see). Each block row also holds its Merkle tree's inner nodes (so an
audit path is read, not recomputed) and its trace-key index (``key_index``, see
:mod:`.key_index`): one blob per block instead of a row per key per leaf, which keeps
commits fast. The price is that a lookup must name the blocks to search, and the blocks'
Bloom filters are what name them (the B-Merkle idea).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from itertools import accumulate
from pathlib import Path
from typing import NamedTuple

import orjson

from market_protocol import merkle

from .blocks import StoredTree
from .key_index import lookup

__all__ = ["NodeStore", "LeafRow", "LeafBatch", "RecordBatch", "pack_leaves", "pack_records", "BlockRow",
           "STORE_NAME"]

#: The writer's page cache, KiB: room for the record-id index of about a million leaves
#: (readers keep SQLite's default, so many reading threads do not multiply it).
CACHE_KIB = 16_384
#: Page size of a new store, bytes. A block's writes are mostly appended records of about
#: a kilobyte; 8 KiB pages halve the system calls of the WAL and its checkpoints against
#: SQLite's 4 KiB (measured: about 2 µs less system CPU per trade per node) and shorten
#: the overflow chains a proof or key lookup walks in a block's blobs. An existing file
#: keeps the size it was created with.
PAGE_BYTES = 8192
#: Pages of WAL before a checkpoint (64 MiB). Each checkpoint syncs the file; a 2,000-leaf
#: block is about 350 pages, so SQLite's default (1,000) would sync every few blocks.
WAL_CHECKPOINT_PAGES = 8_000
#: The file name of a node's store inside ``<data-dir>/<org>/``.
STORE_NAME = "ledger.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY,
    block_hash TEXT NOT NULL,
    header TEXT NOT NULL,
    signatures TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    leaf_hashes BLOB NOT NULL,
    key_index BLOB NOT NULL,
    inner_nodes BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS leaves (
    seq INTEGER PRIMARY KEY,
    record_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    height INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    record_hash BLOB NOT NULL,
    trace_keys TEXT NOT NULL,
    rid INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS leaves_by_rid ON leaves (rid);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    body BLOB NOT NULL
);
"""

#: (seq, record_id, kind, height, idx, record_hash, trace_keys JSON)
LeafRow = tuple[int, str, str, int, int, bytes, str]


class LeafBatch(NamedTuple):
    """A block's leaves as SQLite inserts them in one statement (see :meth:`NodeStore.
    write_block`): built once per block, shared by every node."""

    first_seq: int
    height: int
    #: the leaves' record hashes, 32 bytes each, in leaf order
    record_hashes: bytes
    #: JSON array, one ``[record_id, kind, trace_keys JSON as a string, rid]`` per leaf
    rows_json: bytes


class RecordBatch(NamedTuple):
    """The off-chain records one node keeps from a block, for one insert statement."""

    #: the canonical record bytes, concatenated
    bodies: bytes
    #: JSON array, one ``[leaf index, 1-based start in bodies, length]`` per record
    index_json: bytes


def pack_leaves(first_seq: int, height: int, record_hashes: Sequence[bytes],
                rows: Sequence[tuple[str, str, str, int]]) -> LeafBatch:
    """A :class:`LeafBatch` from each leaf's record hash and ``(record_id, kind, trace_keys
    JSON, rid)``, in leaf order: built once per block, shared by every node."""
    return LeafBatch(first_seq, height, b"".join(record_hashes), orjson.dumps(rows))


def pack_records(indexed_bodies: Iterable[tuple[int, bytes]]) -> RecordBatch:
    """A :class:`RecordBatch` from ``(leaf index, canonical bytes)`` pairs."""
    indexes, bodies = [], []
    for index, body in indexed_bodies:
        indexes.append(index)
        bodies.append(body)
    lengths = [len(body) for body in bodies]
    starts = accumulate(lengths, initial=1)
    return RecordBatch(b"".join(bodies),
                       orjson.dumps(list(zip(indexes, starts, lengths, strict=False))))


#: The leaves of a block in one statement: SQLite walks the JSON itself, so the whole
#: insert runs in C with the interpreter lock released instead of binding a Python tuple
#: per row (node threads then really run beside the orderer; see write_block).
_INSERT_LEAVES = (
    "INSERT INTO leaves (seq, record_id, kind, height, idx, record_hash, trace_keys, rid) "
    "SELECT ?1 + key, value ->> 0, value ->> 1, ?2, key, substr(?3, 32 * key + 1, 32), "
    "value ->> 2, value ->> 3 FROM json_each(?4)")
_INSERT_RECORDS = (
    "INSERT INTO records (seq, body) "
    "SELECT ?1 + (value ->> 0), substr(?2, value ->> 1, value ->> 2) FROM json_each(?3)")
#: (height, block_hash, header JSON, signatures JSON, first_seq, leaf_hashes)
BlockRow = tuple[int, str, str, str, int, bytes]
#: a BlockRow followed by the block's key index and its Merkle tree's inner nodes
BlockInsert = tuple[int, str, str, str, int, bytes, bytes, bytes]

_LEAF_COLUMNS = "seq, record_id, kind, height, idx, record_hash, trace_keys"
_BLOCK_COLUMNS = "height, block_hash, header, signatures, first_seq, leaf_hashes"


class NodeStore:
    """The SQLite file of one organisation's node. Safe to read from many threads; the
    ledger serialises writes."""

    def __init__(self, org: str, path: Path, *, readonly: bool = False) -> None:
        """``readonly`` opens an existing file for checking only: nothing is created or
        written, and a missing file raises FileNotFoundError."""
        self.org, self.path, self.readonly = org, path, readonly
        if readonly and not path.exists():
            raise FileNotFoundError(f"no node store at {path}")
        if not readonly:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = self._connect(cache_kib=CACHE_KIB)
        if not readonly:
            self._writer.executescript(SCHEMA)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = [self._writer]
        self._all_lock = threading.Lock()

    def _connect(self, cache_kib: int | None = None) -> sqlite3.Connection:
        if self.readonly:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                   check_same_thread=False, isolation_level=None)
            return conn
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.execute(f"PRAGMA page_size={PAGE_BYTES}")  # before WAL: fixed from then on
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        if cache_kib:
            conn.execute(f"PRAGMA cache_size=-{cache_kib}")
            conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            with self._all_lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()

    # -- writing --------------------------------------------------------------------------

    def write_block(self, block: BlockInsert, leaves: LeafBatch, records: RecordBatch) -> None:
        """Store a whole block in one transaction: all of it or none of it.

        Three statements, each a single step in SQLite: the interpreter lock is released
        for the whole of each, so three node threads write while the orderer builds the
        next block (a row at a time, each row would wait for the lock again).
        """
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"INSERT INTO blocks ({_BLOCK_COLUMNS}, key_index, inner_nodes) "
                         "VALUES (?,?,?,?,?,?,?,?)", block)
            conn.execute(_INSERT_LEAVES, (leaves.first_seq, leaves.height, leaves.record_hashes,
                                          leaves.rows_json))
            conn.execute(_INSERT_RECORDS, (leaves.first_seq, records.bodies, records.index_json))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def drop_blocks_above(self, height: int) -> None:
        """Remove every block above ``height`` with its leaves and records (one transaction)."""
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT min(first_seq) FROM blocks WHERE height > ?",
                               (height,)).fetchone()
            if row[0] is not None:
                conn.execute("DELETE FROM records WHERE seq >= ?", (row[0],))
                conn.execute("DELETE FROM leaves WHERE seq >= ?", (row[0],))
            conn.execute("DELETE FROM blocks WHERE height > ?", (height,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- reading --------------------------------------------------------------------------

    def last_block(self) -> BlockRow | None:
        return self._reader().execute(
            f"SELECT {_BLOCK_COLUMNS} FROM blocks ORDER BY height DESC LIMIT 1").fetchone()

    def block(self, height: int) -> BlockRow | None:
        return self._reader().execute(
            f"SELECT {_BLOCK_COLUMNS} FROM blocks WHERE height = ?", (height,)).fetchone()

    def block_headers(self) -> list[tuple[int, str]]:
        return self._reader().execute("SELECT height, header FROM blocks ORDER BY height").fetchall()

    def leaf(self, record_id: str, rid: int) -> LeafRow | None:
        return self._reader().execute(
            f"SELECT {_LEAF_COLUMNS} FROM leaves WHERE rid = ? AND record_id = ?",
            (rid, record_id)).fetchone()

    def leaves_between(self, first_seq: int, end_seq: int,
                       conn: sqlite3.Connection | None = None) -> list[LeafRow]:
        return (conn or self._reader()).execute(
            f"SELECT {_LEAF_COLUMNS} FROM leaves WHERE seq >= ? AND seq < ? ORDER BY seq",
            (first_seq, end_seq)).fetchall()

    def leaves_summary(self, first_seq: int, end_seq: int) -> str | None:
        """Every column of the leaves in ``[first_seq, end_seq)`` as one string, built inside
        SQLite: comparing two nodes' copies costs one fetch instead of a row each."""
        row = self._reader().execute(
            "SELECT group_concat(seq || ',' || record_id || ',' || kind || ',' || height || ',' "
            "|| idx || ',' || hex(record_hash) || ',' || trace_keys || ',' || rid, char(10)) "
            "FROM (SELECT * FROM leaves WHERE seq >= ? AND seq < ? ORDER BY seq)",
            (first_seq, end_seq)).fetchone()
        return row[0]

    def records_between(self, first_seq: int, end_seq: int,
                        conn: sqlite3.Connection | None = None) -> list[tuple[int, bytes]]:
        return (conn or self._reader()).execute(
            # CAST: a body someone re-typed as TEXT is still hashed as its UTF-8 bytes.
            "SELECT seq, CAST(body AS BLOB) FROM records WHERE seq >= ? AND seq < ? ORDER BY seq",
            (first_seq, end_seq)).fetchall()

    def record(self, seq: int) -> bytes | None:
        row = self._reader().execute("SELECT CAST(body AS BLOB) FROM records WHERE seq = ?",
                                     (seq,)).fetchone()
        return None if row is None else row[0]

    def known_record_ids(self, rids: Sequence[int]) -> set[str]:
        """Record ids already on this node among those with these ``rid`` digests."""
        found: set[str] = set()
        conn = self._reader()
        for start in range(0, len(rids), 500):
            chunk = rids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(row[0] for row in conn.execute(
                f"SELECT record_id FROM leaves WHERE rid IN ({marks})", chunk))
        return found

    def derived(self, height: int) -> tuple[bytes, bytes] | None:
        """``(key_index, inner_nodes)``: what the node derived from the block's leaves."""
        return self._reader().execute("SELECT key_index, inner_nodes FROM blocks "
                                      "WHERE height = ?", (height,)).fetchone()

    def block_head(self, height: int) -> tuple[str, str, str] | None:
        """``(block_hash, header, signatures)``: a block without its large columns."""
        return self._reader().execute(
            "SELECT block_hash, header, signatures FROM blocks WHERE height = ?",
            (height,)).fetchone()

    def audit_path(self, height: int, index: int) -> tuple[list[bytes], int]:
        """The audit path of leaf ``index`` of an existing block, and the tree size, read
        from the stored tree a few hashes at a time (a proof never loads a whole block)."""
        conn = self._reader()
        with conn.blobopen("blocks", "leaf_hashes", height, readonly=True) as leaves, \
                conn.blobopen("blocks", "inner_nodes", height, readonly=True) as inner:
            tree = StoredTree(leaves, inner)
            return merkle.inclusion_proof_from_levels(tree, index), len(tree[0])

    def key_lookup(self, height: int, key_id: int) -> list[int]:
        """Leaf indexes in block ``height`` whose trace keys have ``key_id``."""
        with self._reader().blobopen("blocks", "key_index", height, readonly=True) as blob:
            return lookup(blob, key_id)

    def leaves_at(self, seqs: Sequence[int]) -> list[LeafRow]:
        found: list[LeafRow] = []
        conn = self._reader()
        for start in range(0, len(seqs), 500):
            chunk = list(seqs[start:start + 500])
            marks = ",".join("?" * len(chunk))
            found += conn.execute(f"SELECT {_LEAF_COLUMNS} FROM leaves WHERE seq IN ({marks}) "
                                  "ORDER BY seq", chunk).fetchall()
        return found
