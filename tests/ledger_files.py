"""Editing a ledger node's SQLite file directly, as an intruder with file access would.

Works on the stored layout (docs/ledger.md "Storage"): a block's leaves and records are
blobs of concatenated items with a blob of u32 little-endian end offsets beside each. Every
edit rewrites one block's blobs with ``sqlite3`` alone, so the tests that use it do not
depend on the code they check.
"""

from __future__ import annotations

import json
import sqlite3
import struct
from collections.abc import Callable
from pathlib import Path

from ledger_bridge.ledger.node_store import STORE_NAME

__all__ = ["node_file", "stored_leaves", "find_leaf", "edit_record", "edit_leaf", "delete_leaf", "drop_block"]


def node_file(data_dir: Path, org: str) -> Path:
    return data_dir / org / STORE_NAME


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


def _leaves(conn: sqlite3.Connection, height: int) -> tuple[bytes, list[bytes]]:
    hashes, rows, ends = conn.execute(
        "SELECT record_hashes, leaf_rows, row_ends FROM leaf_sets WHERE height = ?",
        (height,)).fetchone()
    return hashes, _split(rows, ends)


def stored_leaves(path: Path) -> list[tuple[int, int, str, str]]:
    """``(height, leaf index, record_id, kind)`` of every leaf in a node file, in order."""
    with sqlite3.connect(path) as conn:
        heights = [h for (h,) in conn.execute("SELECT height FROM leaf_sets ORDER BY height")]
        return [(height, index, *json.loads(row)[:2]) for height in heights
                for index, row in enumerate(_leaves(conn, height)[1])]


def find_leaf(conn: sqlite3.Connection, record_id: str) -> tuple[int, int]:
    """``(height, leaf index)`` of ``record_id``, by reading every stored leaf row."""
    for (height,) in conn.execute("SELECT height FROM leaf_sets ORDER BY height").fetchall():
        for index, row in enumerate(_leaves(conn, height)[1]):
            if json.loads(row)[0] == record_id:
                return height, index
    raise LookupError(f"no leaf {record_id!r} in this node file")


def edit_record(path: Path, record_id: str, edit: Callable[[bytes], bytes | str]) -> None:
    """Replace the off-chain record of ``record_id`` by ``edit(old)``. A ``str`` result
    stores its chunk of records as TEXT, as an edit made in SQL text functions would."""
    with sqlite3.connect(path) as conn:
        height, index = find_leaf(conn, record_id)
        first = 0
        for row in conn.execute("SELECT chunk, CAST(bodies AS BLOB), body_ends FROM "
                                "record_chunks WHERE height = ? ORDER BY chunk", (height,)):
            if index < first + len(row[2]) // 4:
                break
            first += len(row[2]) // 4
        else:
            raise LookupError(f"no record chunk holds leaf {index} of block {height}")
        chunk, bodies, ends = row
        items = _split(bodies, ends)
        assert items[index - first], f"this node keeps no record of {record_id}"
        new = edit(items[index - first])
        items[index - first] = new.encode() if isinstance(new, str) else new
        bodies, ends = _join(items)
        stored = bodies.decode() if isinstance(new, str) else bodies
        conn.execute("UPDATE record_chunks SET bodies = ?, body_ends = ? "
                     "WHERE height = ? AND chunk = ?", (stored, ends, height, chunk))


def edit_leaf(path: Path, record_id: str, *, record_hash: bytes | None = None,
              trace_keys: list[str] | None = None) -> None:
    """Change the on-chain record hash or the trace keys of ``record_id``'s leaf."""
    with sqlite3.connect(path) as conn:
        height, index = find_leaf(conn, record_id)
        hashes, rows = _leaves(conn, height)
        if record_hash is not None:
            hashes = hashes[:32 * index] + record_hash + hashes[32 * index + 32:]
        if trace_keys is not None:
            row = json.loads(rows[index])
            row[2] = json.dumps(trace_keys, separators=(",", ":"))
            rows[index] = json.dumps(row, separators=(",", ":")).encode()
        data, ends = _join(rows)
        conn.execute("UPDATE leaf_sets SET record_hashes = ?, leaf_rows = ?, row_ends = ? "
                     "WHERE height = ?", (hashes, data, ends, height))


def delete_leaf(path: Path, record_id: str) -> None:
    """Remove ``record_id``'s leaf (its row, its record hash and its id entry)."""
    with sqlite3.connect(path) as conn:
        height, index = find_leaf(conn, record_id)
        hashes, rows = _leaves(conn, height)
        del rows[index]
        data, ends = _join(rows)
        conn.execute("UPDATE leaf_sets SET record_hashes = ?, leaf_rows = ?, row_ends = ? "
                     "WHERE height = ?",
                     (hashes[:32 * index] + hashes[32 * index + 32:], data, ends, height))
        conn.execute("DELETE FROM leaf_ids WHERE height = ? AND idx = ?", (height, index))


def drop_block(path: Path, height: int) -> None:
    """Remove block ``height`` and everything stored with it, as if it was never written."""
    with sqlite3.connect(path) as conn:
        for table in ("leaf_ids", "record_chunks", "leaf_sets", "blocks"):
            conn.execute(f"DELETE FROM {table} WHERE height = ?", (height,))
