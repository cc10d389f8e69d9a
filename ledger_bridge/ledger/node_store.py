"""One organisation's copy of the ledger: a SQLite file (WAL) under ``<data-dir>/<org>/``.

The store is a thin I/O shell: it writes a finished block in one transaction (so a reader
never sees half a block) and answers the few queries the ledger needs. It decides
nothing; building, signing and checking blocks happens elsewhere.

Tables: ``blocks`` (header, signatures, the leaf hashes for fast proofs), ``leaves`` (the
on-chain part of each entry, by global position ``seq``), ``records`` (off-chain canonical
record bytes, only for entries this organisation may see) and ``trace_index`` (64-bit key
digest -> seq).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

__all__ = ["NodeStore", "LeafRow", "BlockRow", "STORE_NAME"]

#: The file name of a node's store inside ``<data-dir>/<org>/``.
STORE_NAME = "ledger.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY,
    block_hash TEXT NOT NULL,
    header TEXT NOT NULL,
    signatures TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    leaf_hashes BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS leaves (
    seq INTEGER PRIMARY KEY,
    record_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    height INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    record_hash BLOB NOT NULL,
    trace_keys TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS trace_index (
    key_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (key_id, seq)
) WITHOUT ROWID;
"""

#: (seq, record_id, kind, height, idx, record_hash, trace_keys JSON)
LeafRow = tuple[int, str, str, int, int, bytes, str]
#: (height, block_hash, header JSON, signatures JSON, first_seq, leaf_hashes)
BlockRow = tuple[int, str, str, str, int, bytes]

_LEAF_COLUMNS = "seq, record_id, kind, height, idx, record_hash, trace_keys"
_BLOCK_COLUMNS = "height, block_hash, header, signatures, first_seq, leaf_hashes"


class NodeStore:
    """The SQLite file of one organisation's node. Safe to read from many threads; the
    ledger serialises writes."""

    def __init__(self, org: str, path: Path) -> None:
        self.org, self.path = org, path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = self._connect()
        self._writer.executescript(SCHEMA)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = [self._writer]
        self._all_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
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

    def write_block(self, block: BlockRow, leaves: Sequence[LeafRow],
                    records: Iterable[tuple[int, bytes]],
                    index: Iterable[tuple[int, int]]) -> None:
        """Store a whole block in one transaction: all of it or none of it."""
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"INSERT INTO blocks ({_BLOCK_COLUMNS}) VALUES (?,?,?,?,?,?)", block)
            conn.executemany(f"INSERT INTO leaves ({_LEAF_COLUMNS}) VALUES (?,?,?,?,?,?,?)",
                             leaves)
            conn.executemany("INSERT INTO records (seq, body) VALUES (?,?)", records)
            conn.executemany("INSERT OR IGNORE INTO trace_index (key_id, seq) VALUES (?,?)",
                             index)
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

    def blocks(self) -> Iterator[BlockRow]:
        """Every block in height order, streamed (the file may hold millions of leaves)."""
        conn = self._connect()
        try:
            yield from conn.execute(f"SELECT {_BLOCK_COLUMNS} FROM blocks ORDER BY height")
        finally:
            conn.close()

    def block_headers(self) -> list[tuple[int, str]]:
        return self._reader().execute("SELECT height, header FROM blocks ORDER BY height").fetchall()

    def block_hashes(self, limit: int) -> list[str]:
        rows = self._reader().execute(
            "SELECT block_hash FROM blocks ORDER BY height LIMIT ?", (limit,)).fetchall()
        return [row[0] for row in rows]

    def leaf(self, record_id: str) -> LeafRow | None:
        return self._reader().execute(
            f"SELECT {_LEAF_COLUMNS} FROM leaves WHERE record_id = ?", (record_id,)).fetchone()

    def leaves_between(self, first_seq: int, end_seq: int,
                       conn: sqlite3.Connection | None = None) -> list[LeafRow]:
        return (conn or self._reader()).execute(
            f"SELECT {_LEAF_COLUMNS} FROM leaves WHERE seq >= ? AND seq < ? ORDER BY seq",
            (first_seq, end_seq)).fetchall()

    def records_between(self, first_seq: int, end_seq: int,
                        conn: sqlite3.Connection | None = None) -> list[tuple[int, bytes]]:
        return (conn or self._reader()).execute(
            "SELECT seq, body FROM records WHERE seq >= ? AND seq < ? ORDER BY seq",
            (first_seq, end_seq)).fetchall()

    def record(self, seq: int) -> bytes | None:
        row = self._reader().execute("SELECT body FROM records WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else row[0]

    def known_record_ids(self, record_ids: Sequence[str]) -> set[str]:
        """Those of ``record_ids`` already on this node (checked in chunks of 500)."""
        found: set[str] = set()
        conn = self._reader()
        for start in range(0, len(record_ids), 500):
            chunk = record_ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(row[0] for row in conn.execute(
                f"SELECT record_id FROM leaves WHERE record_id IN ({marks})", chunk))
        return found

    def seqs_for_key(self, key_id: int) -> list[LeafRow]:
        return self._reader().execute(
            f"SELECT {', '.join('l.' + c for c in _LEAF_COLUMNS.split(', '))} "
            "FROM trace_index t JOIN leaves l ON l.seq = t.seq WHERE t.key_id = ? ORDER BY t.seq",
            (key_id,)).fetchall()

    def key_in_block(self, key_id: int, first_seq: int, end_seq: int) -> bool:
        """One block's search for a key: what each block costs without a Bloom pre-check."""
        return self._reader().execute(
            "SELECT 1 FROM trace_index WHERE key_id = ? AND seq >= ? AND seq < ? LIMIT 1",
            (key_id, first_seq, end_seq)).fetchone() is not None
