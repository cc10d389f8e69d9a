"""Editing a ledger node's SQLite file directly, as an intruder with file access would.

Works on the stored layout (docs/ledger.md "Storage"): a block's leaves and records are
stored in chunks of consecutive leaves (leaf rows as a JSON array beside their record
hashes; records concatenated beside a blob of u32 little-endian end offsets). Every edit rewrites one chunk with ``sqlite3``
alone, so the tests that use it do not depend on the code they check.
"""

from __future__ import annotations

import json
import sqlite3
import struct
from collections.abc import Callable
from pathlib import Path

from trace_ledger.node_store import LEAF_CHUNK, RECORD_CHUNK, STORE_NAME
from trace_ledger.trust import load_trust_file, write_trust_file

__all__ = ["node_file", "stored_leaves", "edit_record", "edit_leaf", "delete_leaf",
           "drop_block", "pinned_keys"]


def node_file(data_dir: Path, org: str) -> Path:
    return data_dir / org / STORE_NAME


def pinned_keys(data_dir: Path) -> dict:
    """The keys a deployment pins: the trust file written beside (never inside) the ledger
    directory from the nodes' public keys, read back as a verifier would."""
    path = data_dir.parent / f"{data_dir.name}-trust.json"
    if not path.exists():
        write_trust_file(data_dir, path)
    return load_trust_file(path)


def _split(data: bytes, ends_blob: bytes) -> list[bytes]:
    ends = struct.unpack(f"<{len(ends_blob) // 4}I", ends_blob)
    items, start = [], 0
    for end in ends:
        items.append(data[start:end])
        start = max(start, end)
    return items


def _join(items: list[bytes]) -> tuple[bytes, bytes]:
    ends, total = [], 0
    for item in items:
        total += len(item)
        ends.append(total)
    return b"".join(items), struct.pack(f"<{len(ends)}I", *ends)


def _chunks(conn: sqlite3.Connection) -> list[tuple[int, int, bytes, list[list]]]:
    """``(height, chunk, record hashes, leaf rows)`` of every stored chunk of leaves."""
    return [(height, chunk, hashes, json.loads(rows)) for height, chunk, hashes, rows
            in conn.execute("SELECT height, chunk, record_hashes, leaf_rows "
                            "FROM leaf_chunks ORDER BY height, chunk")]


def stored_leaves(path: Path) -> list[tuple[int, int, str, str]]:
    """``(height, leaf index, record_id, kind)`` of every leaf in a node file, in order."""
    with sqlite3.connect(path) as conn:
        return [(height, chunk * LEAF_CHUNK + offset, *row[:2])
                for height, chunk, _, rows in _chunks(conn) for offset, row in enumerate(rows)]


def _find(conn: sqlite3.Connection, record_id: str) -> tuple[int, int, int, bytes, list[list]]:
    """``(height, chunk, offset, record hashes, rows)`` of the chunk holding ``record_id``."""
    for height, chunk, hashes, rows in _chunks(conn):
        for offset, row in enumerate(rows):
            if row[0] == record_id:
                return height, chunk, offset, hashes, rows
    raise LookupError(f"no leaf {record_id!r} in this node file")


def _write_leaves(conn: sqlite3.Connection, height: int, chunk: int, hashes: bytes,
                  rows: list[list]) -> None:
    conn.execute("UPDATE leaf_chunks SET record_hashes = ?, leaf_rows = ? "
                 "WHERE height = ? AND chunk = ?",
                 (hashes, json.dumps(rows, separators=(",", ":")).encode(), height, chunk))


def edit_record(path: Path, record_id: str, edit: Callable[[bytes], bytes | str], *,
                keeps_it: bool = True) -> None:
    """Replace the off-chain record of ``record_id`` by ``edit(old)``. A ``str`` result
    stores its chunk of records as TEXT, as an edit made in SQL text functions would.
    ``edit`` returning ``b""`` deletes the record; ``keeps_it=False`` allows adding one to
    a node that keeps none of it."""
    with sqlite3.connect(path) as conn:
        height, chunk, offset, _, _ = _find(conn, record_id)
        index = chunk * LEAF_CHUNK + offset
        bodies, ends = conn.execute(
            "SELECT CAST(bodies AS BLOB), body_ends FROM record_chunks "
            "WHERE height = ? AND chunk = ?", (height, index // RECORD_CHUNK)).fetchone()
        items = _split(bodies, ends)
        position = index % RECORD_CHUNK
        assert items[position] or not keeps_it, f"this node keeps no record of {record_id}"
        new = edit(items[position])
        items[position] = new.encode() if isinstance(new, str) else new
        bodies, ends = _join(items)
        conn.execute("UPDATE record_chunks SET bodies = ?, body_ends = ? "
                     "WHERE height = ? AND chunk = ?",
                     (bodies.decode() if isinstance(new, str) else bodies, ends, height,
                      index // RECORD_CHUNK))


def edit_leaf(path: Path, record_id: str, *, record_hash: bytes | None = None,
              trace_keys: list[str] | None = None) -> None:
    """Change the on-chain record hash or the trace keys of ``record_id``'s leaf."""
    with sqlite3.connect(path) as conn:
        height, chunk, offset, hashes, rows = _find(conn, record_id)
        if record_hash is not None:
            hashes = hashes[:32 * offset] + record_hash + hashes[32 * offset + 32:]
        if trace_keys is not None:
            rows[offset][2] = json.dumps(trace_keys, separators=(",", ":"))
        _write_leaves(conn, height, chunk, hashes, rows)


def delete_leaf(path: Path, record_id: str) -> None:
    """Remove ``record_id``'s leaf (its row, its record hash and its id entry)."""
    with sqlite3.connect(path) as conn:
        height, chunk, offset, hashes, rows = _find(conn, record_id)
        del rows[offset]
        _write_leaves(conn, height, chunk, hashes[:32 * offset] + hashes[32 * offset + 32:], rows)
        conn.execute("DELETE FROM leaf_ids WHERE height = ? AND idx = ?",
                     (height, chunk * LEAF_CHUNK + offset))


def drop_block(path: Path, height: int) -> None:
    """Remove block ``height`` and everything stored with it, as if it was never written."""
    with sqlite3.connect(path) as conn:
        for table in ("leaf_ids", "record_chunks", "leaf_chunks", "blocks"):
            conn.execute(f"DELETE FROM {table} WHERE height = ?", (height,))
