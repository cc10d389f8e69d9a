"""One organisation's copy of the ledger: a SQLite file (WAL) under ``<data-dir>/<org>/``.

The store is a thin I/O shell: it writes a finished block in one transaction (so a reader
never sees half a block) and answers the few queries the ledger needs. It decides
nothing; building, signing and checking blocks happens elsewhere.

A block is stored as a handful of rows, not a row per entry, the way block files beside a
transaction index store a chain: a commit then costs a few large sequential writes and
one small index insert per entry, instead of several B-tree inserts per entry.

- ``blocks``: header, signatures, the leaf hashes, the Merkle tree's inner nodes (so an
  audit path is read, not recomputed) and the trace-key index (:mod:`.key_index`). A
  lookup must name the blocks to search; the blocks' Bloom filters name them (B-Merkle).
- ``leaf_chunks``: the on-chain part of each entry, in chunks of ``LEAF_CHUNK``
  consecutive leaves: ``record_hashes`` (32 bytes per leaf, in leaf order) and
  ``leaf_rows`` (a JSON array with one ``[record_id, kind, trace keys as JSON text, rid]``
  per leaf).
- ``record_chunks``: the off-chain canonical records this organisation may see, in chunks
  of ``RECORD_CHUNK`` consecutive leaves: concatenated in leaf order in ``bodies``, with
  ``body_ends`` as above (an entry whose record this node does not keep has an empty span:
  a canonical record is never empty).
- ``leaf_ids``: ``rid`` (64-bit digest of the record id) -> (height, leaf index), to find
  an entry by its record id and to refuse duplicates.

Chunks are sized to fit a page, so one leaf or record is one small row read: SQLite
reaches an offset inside a larger value by walking its chain of overflow pages.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from itertools import groupby
from pathlib import Path

from market_protocol import merkle

from .blocks import StoredTree
from .key_index import lookup
from .store_chunks import (
    LEAF_CHUNK,
    RECORD_CHUNK,
    LeafBatch,
    LeafRow,
    RecordBatch,
    end_offsets,
    pack_leaves,
    pack_records,
    parse_leaves,
    span,
)

__all__ = ["NodeStore", "LeafRow", "LeafBatch", "RecordBatch", "pack_leaves", "pack_records",
           "BlockRow", "STORE_NAME"]

#: The writer's page cache, KiB: room for the record-id index of about a million leaves
#: (readers keep SQLite's default, so many reading threads do not multiply it).
CACHE_KIB = 16_384
#: Page size of a new store, bytes. A block is written as a few hundred rows of about
#: 10 KB; on 32 KiB pages the WAL's frames and the checkpoints' copies are a quarter as
#: many as on 8 KiB pages (measured: a node's write of a 2,000-trade block about half the
#: CPU). An existing file keeps its page size.
PAGE_BYTES = 32_768
#: Bytes written to the WAL between checkpoints (64 MiB). Checkpoints copy the WAL into
#: the file and sync it: a thread of the store's own runs them, so a node's block write
#: never stalls on one (a checkpoint inside a write took 185-270 ms where a write takes
#: 60, and the orderer waited). Each checkpoint syncs, so they should be rare.
WAL_CHECKPOINT_BYTES = 64 << 20
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
CREATE TABLE IF NOT EXISTS leaf_chunks (
    height INTEGER NOT NULL,
    chunk INTEGER NOT NULL,
    record_hashes BLOB NOT NULL,
    leaf_rows BLOB NOT NULL,
    PRIMARY KEY (height, chunk)
);
CREATE TABLE IF NOT EXISTS record_chunks (
    height INTEGER NOT NULL,
    chunk INTEGER NOT NULL,
    bodies BLOB NOT NULL,
    body_ends BLOB NOT NULL,
    PRIMARY KEY (height, chunk)
);
CREATE TABLE IF NOT EXISTS leaf_ids (
    rid INTEGER NOT NULL,
    height INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    PRIMARY KEY (rid, height, idx)
) WITHOUT ROWID;
"""



#: (height, block_hash, header JSON, signatures JSON, first_seq, leaf_hashes)
BlockRow = tuple[int, str, str, str, int, bytes]
#: a BlockRow followed by the block's key index and its Merkle tree's inner nodes
BlockInsert = tuple[int, str, str, str, int, bytes, bytes, bytes]

_BLOCK_COLUMNS = "height, block_hash, header, signatures, first_seq, leaf_hashes"
#: the block's leaf ids in one statement: SQLite walks the JSON itself, so the insert runs
#: in C with the interpreter lock released (node threads run beside the orderer)
_INSERT_LEAF_IDS = "INSERT INTO leaf_ids (rid, height, idx) SELECT value, ?1, key FROM json_each(?2)"
#: all of a block's chunks in one statement each, cut out of one blob by ``substr``
_INSERT_LEAF_CHUNKS = (
    "INSERT INTO leaf_chunks (height, chunk, record_hashes, leaf_rows) "
    f"SELECT ?1, value ->> 0, substr(?2, {32 * LEAF_CHUNK} * (value ->> 0) + 1, "
    f"{32 * LEAF_CHUNK}), substr(?3, value ->> 1, value ->> 2) FROM json_each(?4)")
_INSERT_RECORD_CHUNKS = (
    "INSERT INTO record_chunks (height, chunk, bodies, body_ends) "
    # ifnull: SQLite's substr of an empty blob is NULL (a node keeping no record of a block)
    f"SELECT ?1, value ->> 0, ifnull(substr(?2, value ->> 1, value ->> 2), x''), "
    f"substr(?3, {4 * RECORD_CHUNK} * (value ->> 0) + 1, {4 * RECORD_CHUNK}) FROM json_each(?4)")


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
        self._unchecked_bytes = 0
        self._checkpoint_due = threading.Event()
        self._closing = False
        self._checkpointer: threading.Thread | None = None
        if not readonly:
            self._checkpointer = threading.Thread(target=self._checkpoint_loop, daemon=True,
                                                  name=f"ledger-checkpoint-{org}")
            self._checkpointer.start()

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
            conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread does it
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _checkpoint_loop(self) -> None:
        """Copy the WAL into the file whenever writes have added enough to it, beside the
        writer (PASSIVE: it never waits for the writer or for readers)."""
        conn = self._connect()
        try:
            while True:
                self._checkpoint_due.wait()
                self._checkpoint_due.clear()
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                if self._closing:
                    return
        finally:
            conn.close()

    def close(self) -> None:
        if self._checkpointer is not None:
            self._closing = True
            self._checkpoint_due.set()
            self._checkpointer.join()
            self._checkpointer = None
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()

    # -- writing --------------------------------------------------------------------------

    def write_block(self, block: BlockInsert, leaves: LeafBatch, records: RecordBatch,
                    also: Sequence[tuple[str, Sequence]] = ()) -> None:
        """Store a whole block in one transaction: all of it or none of it.

        Five statements, each a single step in SQLite (the chunks are cut out of one blob
        inside SQLite): the interpreter lock is released for the whole of each, so three
        node threads write while the orderer builds the next block. A statement per chunk
        would take the lock back at every row, and the orderer would wait for it.
        ``also`` are further statements of the caller's own tables committed in the same
        transaction (a node's view of history and its stream position).
        """
        conn, height = self._writer, leaves.height
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"INSERT INTO blocks ({_BLOCK_COLUMNS}, key_index, inner_nodes) "
                         "VALUES (?,?,?,?,?,?,?,?)", block)
            conn.execute(_INSERT_LEAF_CHUNKS, (height, leaves.record_hashes, leaves.rows,
                                               leaves.chunks_json))
            conn.execute(_INSERT_RECORD_CHUNKS, (height, records.bodies, records.body_ends,
                                                 records.chunks_json))
            conn.execute(_INSERT_LEAF_IDS, (height, leaves.rids_json))
            for statement, parameters in also:
                conn.execute(statement, parameters)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        self._unchecked_bytes += len(leaves.rows) + len(records.bodies) + len(block[5]) * 4
        if self._unchecked_bytes >= WAL_CHECKPOINT_BYTES:
            self._unchecked_bytes = 0
            self._checkpoint_due.set()

    def execute(self, statements: Sequence[tuple[str, Sequence]]) -> None:
        """Run ``statements`` in one write transaction (a caller's own tables)."""
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement, parameters in statements:
                conn.execute(statement, parameters)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def query(self, statement: str, parameters: Sequence = ()) -> list[tuple]:
        """Rows of a read query (a caller's own tables), on this thread's reader."""
        return self._reader().execute(statement, parameters).fetchall()

    def drop_blocks_above(self, height: int) -> None:
        """Remove every block above ``height`` with its leaves and records (one transaction)."""
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            for table in ("leaf_ids", "record_chunks", "leaf_chunks", "blocks"):
                conn.execute(f"DELETE FROM {table} WHERE height > ?", (height,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- reading blocks -------------------------------------------------------------------

    def last_block(self) -> BlockRow | None:
        return self._reader().execute(
            f"SELECT {_BLOCK_COLUMNS} FROM blocks ORDER BY height DESC LIMIT 1").fetchone()

    def block(self, height: int) -> BlockRow | None:
        return self._reader().execute(
            f"SELECT {_BLOCK_COLUMNS} FROM blocks WHERE height = ?", (height,)).fetchone()

    def block_headers(self) -> list[tuple[int, str]]:
        return self._reader().execute("SELECT height, header FROM blocks ORDER BY height").fetchall()

    def derived(self, height: int) -> tuple[bytes, bytes] | None:
        """``(key_index, inner_nodes)``: what the node derived from the block's leaves."""
        return self._reader().execute("SELECT key_index, inner_nodes FROM blocks "
                                      "WHERE height = ?", (height,)).fetchone()

    def block_head(self, height: int) -> tuple[str, str, str]:
        """``(block_hash, header, signatures)``: a block without its large columns. For a
        block known to exist (a leaf was read from it); LookupError when it does not."""
        row = self._reader().execute(
            "SELECT block_hash, header, signatures FROM blocks WHERE height = ?",
            (height,)).fetchone()
        if row is None:
            raise LookupError(f"block {height} is not in the node store at {self.path}")
        return row

    def audit_path(self, height: int, index: int) -> tuple[list[bytes], int]:
        """The audit path of leaf ``index`` of an existing block, and the tree size, read
        from the stored tree a few hashes at a time (a proof never loads a whole block)."""
        conn = self._reader()
        with conn.blobopen("blocks", "leaf_hashes", height, readonly=True) as leaves, \
                conn.blobopen("blocks", "inner_nodes", height, readonly=True) as inner:
            # typeshed types a Blob's slice as int; it is bytes (as StoredTree reads it)
            tree = StoredTree(leaves, inner)  # type: ignore[arg-type]
            return merkle.inclusion_proof_from_levels(tree, index), len(tree[0])

    def key_lookup(self, height: int, key_id: int) -> list[int]:
        """Leaf indexes in block ``height`` whose trace keys have ``key_id``."""
        with self._reader().blobopen("blocks", "key_index", height, readonly=True) as blob:
            return lookup(blob, key_id)  # type: ignore[arg-type]  # Blob slices are bytes

    # -- reading leaves and records -------------------------------------------------------

    def leaf_set(self, height: int) -> list[tuple[int, bytes, bytes]]:
        """The chunks of a block's leaves as stored: comparing two nodes' copies compares
        these bytes."""
        return self._reader().execute(
            "SELECT chunk, CAST(record_hashes AS BLOB), CAST(leaf_rows AS BLOB) "
            "FROM leaf_chunks WHERE height = ? ORDER BY chunk", (height,)).fetchall()

    def block_leaves(self, height: int, first_seq: int) -> list[LeafRow]:
        """Every leaf of block ``height`` (which starts at ``first_seq``), in leaf order.

        A row that does not parse is left out, so a damaged block shows as missing leaves.
        """
        leaves: list[LeafRow] = []
        for chunk, hashes, rows in self.leaf_set(height):
            leaves += parse_leaves(height, first_seq, chunk * LEAF_CHUNK, hashes, rows)
        return leaves

    def has_leaves(self, height: int) -> bool:
        return self._reader().execute("SELECT 1 FROM leaf_chunks WHERE height = ?",
                                      (height,)).fetchone() is not None

    def leaves_at(self, locations: Iterable[tuple[int, int]]) -> list[LeafRow]:
        """The leaves at ``(height, index)`` locations, in the order given (each stored
        chunk read once); a location that does not exist is left out."""
        conn, found = self._reader(), []
        for (height, chunk), group in groupby(
                locations, key=lambda location: (location[0], location[1] // LEAF_CHUNK)):
            row = conn.execute(
                "SELECT b.first_seq, CAST(c.record_hashes AS BLOB), CAST(c.leaf_rows AS BLOB) "
                "FROM leaf_chunks AS c JOIN blocks AS b USING (height) "
                "WHERE c.height = ? AND c.chunk = ?", (height, chunk)).fetchone()
            if row is None:
                continue
            stored = {leaf[4]: leaf for leaf in parse_leaves(height, row[0], chunk * LEAF_CHUNK,
                                                              row[1], row[2])}
            found += [stored[index] for _, index in group if index in stored]
        return found

    def leaf(self, record_id: str, rid: int) -> LeafRow | None:
        """The leaf of ``record_id`` (whose digest is ``rid``), or None."""
        locations = self._reader().execute(
            "SELECT height, idx FROM leaf_ids WHERE rid = ? ORDER BY height, idx",
            (rid,)).fetchall()
        return next((leaf for leaf in self.leaves_at(locations) if leaf[1] == record_id), None)

    def known_record_ids(self, rids: Sequence[int]) -> set[str]:
        """Record ids already on this node among those with these ``rid`` digests."""
        conn, locations = self._reader(), []
        for start in range(0, len(rids), 500):
            chunk = rids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            locations += conn.execute(
                f"SELECT height, idx FROM leaf_ids WHERE rid IN ({marks})", chunk).fetchall()
        return {leaf[1] for leaf in self.leaves_at(sorted(locations))}

    def block_records(self, height: int) -> list[tuple[int, bytes]]:
        """``(leaf index, canonical bytes)`` of every record this node keeps of a block."""
        found = []
        for chunk, bodies, ends in self._reader().execute(
                # CAST: bodies someone re-typed as TEXT are still read as their UTF-8 bytes.
                "SELECT chunk, CAST(bodies AS BLOB), CAST(body_ends AS BLOB) FROM record_chunks "
                "WHERE height = ? ORDER BY chunk", (height,)):
            start = 0
            for offset, end in enumerate(end_offsets(ends[:len(ends) // 4 * 4])):
                if end > start:
                    found.append((chunk * RECORD_CHUNK + offset, bodies[start:end]))
                start = max(start, end)
        return found

    def record(self, height: int, index: int) -> bytes | None:
        """The record of leaf ``index`` of block ``height``, or None if this node does not
        keep it."""
        row = self._reader().execute(
            "SELECT CAST(bodies AS BLOB), CAST(body_ends AS BLOB) FROM record_chunks "
            "WHERE height = ? AND chunk = ?", (height, index // RECORD_CHUNK)).fetchone()
        offset = index % RECORD_CHUNK
        if row is None or len(row[1]) < 4 * offset + 4:
            return None
        start, end = span(row[1], offset)
        return row[0][start:end] if end > start else None
