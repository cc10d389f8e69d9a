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

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable

__all__ = ["KeyIndex", "build_key_index", "key_id"]

_LOW32 = 0xFFFFFFFF


def key_id(digest: bytes) -> int:
    """A key's id in the index, from its ``SHA-256`` digest."""
    return int.from_bytes(digest[:8], "big")


def build_key_index(pairs: Iterable[tuple[int, int]]) -> bytes:
    """Pack ``(key_id, leaf_index)`` pairs (duplicates dropped) into the stored form.

    Pairs are sorted as single integers ``key_id << 32 | leaf_index``: one C-level sort
    of ints instead of a sort of tuples.
    """
    ordered = sorted({key << 32 | index for key, index in pairs})
    ids = array("Q", [value >> 32 for value in ordered])
    indexes = array("I", [value & _LOW32 for value in ordered])
    return ids.tobytes() + indexes.tobytes()


class KeyIndex:
    """A parsed block key index: ``lookup(key_id)`` gives the leaf indexes carrying it."""

    __slots__ = ("ids", "indexes")

    def __init__(self, blob: bytes) -> None:
        if len(blob) % 12:
            raise ValueError(f"a key index is 12 bytes per entry; got {len(blob)} bytes")
        count = len(blob) // 12
        self.ids = array("Q")
        self.ids.frombytes(blob[:8 * count])
        self.indexes = array("I")
        self.indexes.frombytes(blob[8 * count:])

    def lookup(self, key_id: int) -> list[int]:
        start = bisect_left(self.ids, key_id)
        end = bisect_right(self.ids, key_id, start)
        return list(self.indexes[start:end])
