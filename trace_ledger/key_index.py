"""A block's trace-key index as one sorted, packed array: built once, searched by bisection.

A key's id here is the first 8 bytes of ``SHA-256(utf8(key))`` as an unsigned big-endian
integer (``key_id``); the leaf's trace keys are compared after the lookup, so a collision
costs a wasted read, never a wrong answer.

Each node keeps, per block, which leaves carry which trace key. Storing that as rows costs
a B-tree insert per key per leaf per node on the commit path; storing it as one blob per
block costs one write, and a lookup only ever opens the few blocks whose Bloom filter
admits the key. Layout: ``n`` unsigned 64-bit key ids ascending (little-endian), then the
``n`` matching leaf indexes as unsigned 32-bit. Pure: no I/O.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import and_, lshift, or_, rshift
from typing import Protocol

__all__ = ["build_key_index", "pack_key_index", "key_ids", "key_id", "lookup"]

_LOW32 = 0xFFFFFFFF
_LITTLE_ENDIAN = sys.byteorder == "little"


def key_id(digest: bytes) -> int:
    """A key's id in the index, from its ``SHA-256`` digest."""
    return int.from_bytes(digest[:8], "big")


def key_ids(digests: Sequence[bytes]) -> list[int]:
    """:func:`key_id` of many digests at once: their first eight bytes are read as one
    array instead of slicing and converting each digest in Python."""
    joined = b"".join(digests)
    if len(joined) != 32 * len(digests):
        raise ValueError("key ids are taken from 32-byte SHA-256 digests")
    lanes = array("Q")
    lanes.frombytes(joined)
    ids = lanes[::4]
    if _LITTLE_ENDIAN:
        ids.byteswap()
    return ids.tolist()


def pack_key_index(ids: Sequence[int], leaves: Sequence[int], *,
                   in_leaf_order: bool = False) -> bytes:
    """The stored form from parallel sequences of key ids and leaf indexes, one item per
    (key, leaf) pair: what :func:`build_key_index` makes of the zipped pairs, with every
    step a C-level pass and no Python object per pair beyond an int.

    A block builder gathers its pairs as flat lists in one walk over its leaves: no tuple
    per pair and no list per key, which matters as much as the arithmetic, since every
    container alive across a block build pushes the interpreter toward a full collection
    of the bridge's whole heap. Ids are below ``2**64``, leaf indexes below ``2**32``.

    ``in_leaf_order`` promises that no pair repeats and that each id's leaves come in
    ascending order (a builder walking its leaves in order, with no two of a leaf's keys
    sharing an id): then a stable sort of the positions by id alone is the whole order.
    Otherwise pairs are sorted as single integers ``id << 32 | leaf`` and repeats (two
    distinct keys whose ids collide, in one leaf) are stored once.
    """
    if len(ids) != len(leaves):
        raise ValueError(f"{len(ids)} key ids but {len(leaves)} leaf indexes")
    if in_leaf_order:
        order = sorted(range(len(ids)), key=ids.__getitem__)
        packed_ids = array("Q", list(map(ids.__getitem__, order)))
        indexes = array("I", list(map(leaves.__getitem__, order)))
    else:
        ordered = sorted(set(map(or_, map(lshift, ids, repeat(32)), leaves)))
        packed_ids = array("Q", list(map(rshift, ordered, repeat(32))))
        indexes = array("I", list(map(and_, ordered, repeat(_LOW32))))
    if not _LITTLE_ENDIAN:
        packed_ids.byteswap()
        indexes.byteswap()
    return packed_ids.tobytes() + indexes.tobytes()


def build_key_index(pairs: Iterable[tuple[int, int]]) -> bytes:
    """Pack ``(key_id, leaf_index)`` pairs (duplicates dropped) into the stored form.

    Pairs are sorted as single integers ``key_id << 32 | leaf_index``: one C-level sort
    of ints instead of a sort of tuples.
    """
    ordered = sorted({key << 32 | index for key, index in pairs})
    ids = array("Q", [value >> 32 for value in ordered])
    indexes = array("I", [value & _LOW32 for value in ordered])
    if not _LITTLE_ENDIAN:
        ids.byteswap()
        indexes.byteswap()
    return ids.tobytes() + indexes.tobytes()


class _Sliceable(Protocol):
    def __len__(self) -> int: ...
    def __getitem__(self, index: slice, /) -> bytes: ...


def lookup(data: _Sliceable, key_id: int) -> list[int]:
    """Leaf indexes carrying ``key_id``, by bisection over the stored form.

    ``data`` is the blob itself or anything that slices like it (an open ``sqlite3.Blob``),
    so a lookup reads about ``2 log2(n)`` small pieces instead of the whole index.
    """
    count = len(data) // 12
    low, high = 0, count
    while low < high:
        middle = (low + high) // 2
        if _id_at(data, middle) < key_id:
            low = middle + 1
        else:
            high = middle
    found = []
    while low < count and _id_at(data, low) == key_id:
        start = 8 * count + 4 * low
        found.append(int.from_bytes(data[start:start + 4], "little"))
        low += 1
    return found


def _id_at(data: _Sliceable, position: int) -> int:
    return int.from_bytes(data[8 * position:8 * position + 8], "little")
