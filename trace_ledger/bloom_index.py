"""Every block's Bloom filter, held in memory and transposed for one-pass checks.

A lookup has to ask each block's filter "might this key be here?". Asking them one by one
costs a Python loop per block; instead, filters of the same shape are stored by byte
column: column ``q`` is one big integer whose byte ``j`` is byte ``q`` of block ``j``'s
filter. Checking a key against all blocks is then ``k`` shifts and ANDs of big integers,
and an absent key is usually ruled out by the first one or two.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from market_protocol.bloom import BloomFilter, positions

__all__ = ["BloomIndex"]


@dataclass
class _Shape:
    m_bits: int
    k: int
    heights: list[int] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    columns: list[int] | None = None
    ones: int = 0

    def build(self) -> list[int]:
        """Transpose the filters in bulk: a strided slice per byte column; the columns."""
        width = self.m_bits // 8
        joined = b"".join(self.raw)
        self.columns = [int.from_bytes(joined[q::width], "little") for q in range(width)]
        self.ones = int.from_bytes(b"\x01" * len(self.raw), "little")
        return self.columns

    def append(self, height: int, bits: bytes) -> None:
        j = len(self.heights)
        self.heights.append(height)
        self.raw.append(bits)
        if self.columns is None:
            return
        shift = 8 * j
        columns = self.columns
        for q, byte in enumerate(bits):
            if byte:
                columns[q] |= byte << shift
        self.ones |= 1 << shift

    def candidates(self, digest: bytes) -> list[int]:
        columns = self.columns if self.columns is not None else self.build()
        ones, hit = self.ones, -1
        for p in positions(digest, self.m_bits, self.k):
            hit &= columns[p >> 3] >> (p & 7) & ones
            if not hit:
                return []
        flags = hit.to_bytes(len(self.heights), "little")
        found, j = [], flags.find(1)
        while j >= 0:
            found.append(self.heights[j])
            j = flags.find(1, j + 1)
        return found


class BloomIndex:
    """Heights of the blocks whose filter might hold a key."""

    def __init__(self) -> None:
        self._shapes: dict[tuple[int, int], _Shape] = {}
        self._lock = threading.Lock()

    def add(self, height: int, bloom: BloomFilter) -> None:
        """Blocks must be added in height order."""
        with self._lock:
            shape = self._shapes.setdefault((bloom.m_bits, bloom.k), _Shape(bloom.m_bits, bloom.k))
            shape.append(height, bytes(bloom.bits))

    def candidates(self, digest: bytes) -> list[int]:
        """Heights (ascending) of blocks that may hold the key with this digest."""
        with self._lock:
            found = [h for shape in self._shapes.values() for h in shape.candidates(digest)]
        return sorted(found)

    def __len__(self) -> int:
        return sum(len(shape.heights) for shape in self._shapes.values())
