"""The chunked row formats of a node's store: pure packing and parsing, no I/O.

A block's leaves are stored ``LEAF_CHUNK`` to a row (their record hashes side by side and
their rows as one JSON array) and its records ``RECORD_CHUNK`` to a row (concatenated,
with u32 end offsets), so that one leaf or record is one small row read
(:mod:`.node_store` explains why). Packing and parsing are apart from the SQLite shell so
that the formats can be checked on their own.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Sequence
from itertools import accumulate
from typing import NamedTuple

import orjson

__all__ = ["LEAF_CHUNK", "RECORD_CHUNK", "LeafRow", "LeafBatch", "RecordBatch",
           "pack_leaves", "pack_records", "parse_leaves", "span", "end_offsets"]

#: Leaves per stored chunk of leaf rows (about 10 KB for trades) and of records (about
#: 9 KB of trade records): well inside a page, so a page holds several chunks (16-record
#: chunks left pages half empty: 2,370 bytes per trade per node against 1,690 at 8).
LEAF_CHUNK = 64
RECORD_CHUNK = 8

#: (seq, record_id, kind, height, idx, record_hash, trace_keys JSON)
LeafRow = tuple[int, str, str, int, int, bytes, str]


class LeafBatch(NamedTuple):
    """A block's leaves in their stored form (see the module docstring): built once per
    block, shared by every node."""

    first_seq: int
    height: int
    #: every leaf's record hash (32 bytes), in leaf order
    record_hashes: bytes
    #: the chunks' ``leaf_rows`` JSON arrays, concatenated
    rows: bytes
    #: JSON array with one ``[chunk, 1-based start in rows, length]`` per chunk
    chunks_json: bytes
    #: JSON array of the leaves' rids, in leaf order (SQLite walks it for ``leaf_ids``)
    rids_json: bytes


class RecordBatch(NamedTuple):
    """The off-chain records one node keeps from a block."""

    #: the kept canonical records, concatenated in leaf order
    bodies: bytes
    #: per leaf, the end offset of its record within its chunk's bodies (u32
    #: little-endian; a record not kept ends where the previous one did)
    body_ends: bytes
    #: JSON array with one ``[chunk, 1-based start in bodies, length]`` per chunk
    chunks_json: bytes


def _u32(values: Iterable[int]) -> bytes:
    packed = array("I", values)
    if sys.byteorder != "little":  # pragma: no cover - the stored form is little-endian
        packed.byteswap()
    return packed.tobytes()


def end_offsets(data: bytes) -> array:
    ends = array("I")
    ends.frombytes(data)
    if sys.byteorder != "little":  # pragma: no cover
        ends.byteswap()
    return ends


def _chunk_spans(parts: Sequence[bytes]) -> bytes:
    """``[[chunk, 1-based start, length], ...]`` of ``parts`` laid end to end (SQLite's
    ``substr`` counts from 1)."""
    starts = accumulate(map(len, parts), initial=1)
    return orjson.dumps([[chunk, start, len(part)]
                         for chunk, (start, part) in enumerate(zip(starts, parts, strict=False))])


def pack_leaves(first_seq: int, height: int, record_hashes: Sequence[bytes],
                rows: Sequence[tuple[str, str, str, int]]) -> LeafBatch:
    """A :class:`LeafBatch` from each leaf's record hash and ``(record_id, kind, trace_keys
    JSON, rid)``, in leaf order: a C-level join and encoding per chunk."""
    parts = [orjson.dumps(rows[start:start + LEAF_CHUNK])
             for start in range(0, len(rows), LEAF_CHUNK)]
    return LeafBatch(first_seq, height, b"".join(record_hashes), b"".join(parts),
                     _chunk_spans(parts), orjson.dumps([row[3] for row in rows]))


def pack_records(bodies: Sequence[bytes]) -> RecordBatch:
    """A :class:`RecordBatch` from each leaf's canonical record, or ``b""`` where this node
    keeps only the hash. Runs once per node per block on the commit path: the lengths are
    summed once, and only the per-chunk steps are Python loops."""
    lengths = list(map(len, bodies))
    ends: list[int] = []
    for start in range(0, len(lengths), RECORD_CHUNK):
        ends += accumulate(lengths[start:start + RECORD_CHUNK])
    bases = [0, *accumulate(ends[RECORD_CHUNK - 1::RECORD_CHUNK])]
    if len(ends) % RECORD_CHUNK:
        bases.append(bases[-1] + ends[-1])
    return RecordBatch(b"".join(bodies), _u32(ends), orjson.dumps(
        [[chunk, base + 1, bases[chunk + 1] - base] for chunk, base in enumerate(bases[:-1])]))


def span(ends: bytes, index: int) -> tuple[int, int]:
    """``(start, end)`` of item ``index`` from its u32 little-endian end offsets."""
    end = int.from_bytes(ends[4 * index:4 * index + 4], "little")
    return (int.from_bytes(ends[4 * index - 4:4 * index], "little") if index else 0), end


def parse_leaves(height: int, first_seq: int, first_index: int, record_hashes: bytes,
                  rows: bytes) -> list[LeafRow]:
    """The leaves of one stored chunk; a chunk or row that does not parse yields nothing
    for the leaves it held, so a damaged chunk shows as missing leaves."""
    try:
        parsed = orjson.loads(rows)
    except ValueError:
        return []
    leaves = []
    for offset, row in enumerate(parsed if isinstance(parsed, list) else ()):
        try:
            record_id, kind, keys_json, _ = row
        except (ValueError, TypeError):
            continue
        index = first_index + offset
        leaves.append((first_seq + index, record_id, kind, height, index,
                       record_hashes[32 * offset:32 * offset + 32], keys_json))
    return leaves
