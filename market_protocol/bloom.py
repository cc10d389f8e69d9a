"""Bloom filters over trace keys: a cheap "certainly not here" before any search.

Each ledger block carries one in its header (the B-Merkle idea), so a lookup skips every
block whose filter rules the key out without touching storage. The hashing is fixed and
derived from SHA-256 alone so that any verifier (Python, a browser) rebuilds the identical
bytes from a block's trace keys:

* ``d = SHA-256(utf8(key))``; ``h1 = d[0:8]`` and ``h2 = d[8:16] | 1`` as big-endian
  unsigned integers;
* bit ``i`` of ``k`` is ``(h1 + i * h2) mod m`` (Kirsch-Mitzenmacher double hashing);
* bit ``p`` lives in byte ``p // 8`` under mask ``1 << (p % 8)``; the filter travels as
  the base64url (unpadded) of its ``m / 8`` bytes, with ``k`` beside it.

``m`` is a power of two of at least 64 bits, so filters of similar blocks share a shape
and can be searched together. Pure: no I/O.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import math
import re
import struct
from collections.abc import Collection, Iterable

from .signing import b64u, unb64u

__all__ = ["BloomFilter", "BloomError", "key_digest", "positions", "size_for", "fill_pure",
           "DEFAULT_FP_RATE", "MIN_BITS"]

DEFAULT_FP_RATE = 0.01
MIN_BITS = 64
_B64U = re.compile(r"[A-Za-z0-9_-]*")


class BloomError(ValueError):
    """A filter's size, hash count or serialised form is unusable."""


def key_digest(key: str) -> bytes:
    """``SHA-256(utf8(key))``: computed once per key and shared by filter and index."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def positions(digest: bytes, m_bits: int, k: int) -> list[int]:
    """The ``k`` bit positions of a key (by its digest) in a filter of ``m_bits`` bits.

    Precondition: ``m_bits`` is a power of two (at most 2**64), so ``(h1 + i*h2) mod 2**64
    mod m`` equals ``((h1 mod m) + i * (h2 mod m)) mod m``: masking first keeps every
    intermediate a small integer.
    """
    low = m_bits - 1
    h1 = int.from_bytes(digest[:8], "big") & low
    h2 = (int.from_bytes(digest[8:16], "big") | 1) & low
    return [(h1 + i * h2) & low for i in range(k)]


def size_for(count: int, fp_rate: float = DEFAULT_FP_RATE) -> tuple[int, int]:
    """``(m_bits, k)`` keeping the false-positive rate at or below ``fp_rate`` for ``count`` keys.

    ``m`` is rounded up to a power of two (which only lowers the rate) and ``k`` depends on
    the rate alone, so blocks of similar size get filters of the same shape.
    """
    if not 0 < fp_rate < 1:
        raise BloomError(f"fp_rate must be between 0 and 1, got {fp_rate}")
    needed = math.ceil(max(count, 1) * -math.log(fp_rate) / math.log(2) ** 2)
    m_bits = max(MIN_BITS, 1 << (needed - 1).bit_length())
    return m_bits, max(1, round(-math.log2(fp_rate)))


class BloomFilter:
    """A fixed-size Bloom filter; ``m_bits`` a power of two >= 64, ``k`` >= 1."""

    __slots__ = ("m_bits", "k", "bits")

    def __init__(self, m_bits: int, k: int, bits: bytes | bytearray | None = None) -> None:
        if m_bits < MIN_BITS or m_bits & (m_bits - 1):
            raise BloomError(f"m_bits must be a power of two >= {MIN_BITS}, got {m_bits}")
        if not 1 <= k <= 64:
            raise BloomError(f"k must be in 1..64, got {k}")
        if bits is not None and len(bits) != m_bits // 8:
            raise BloomError(f"expected {m_bits // 8} bytes of bits, got {len(bits)}")
        self.m_bits, self.k = m_bits, k
        self.bits = bytearray(bits) if bits is not None else bytearray(m_bits // 8)

    @classmethod
    def for_keys(cls, keys: Iterable[str], fp_rate: float = DEFAULT_FP_RATE) -> BloomFilter:
        """A filter sized for, and holding, ``keys`` (duplicates count once)."""
        return cls.for_digests({key_digest(key) for key in keys}, fp_rate)

    @classmethod
    def for_digests(cls, digests: Collection[bytes],
                    fp_rate: float = DEFAULT_FP_RATE) -> BloomFilter:
        """As :meth:`for_keys`, from distinct keys' :func:`key_digest` computed elsewhere."""
        bloom = cls(*size_for(len(digests), fp_rate))
        bloom.add_digests(digests)
        return bloom

    @classmethod
    def from_b64u(cls, text: str, k: int) -> BloomFilter:
        """Parse the serialised form; raises BloomError when it is not a valid filter."""
        if not isinstance(text, str) or not _B64U.fullmatch(text):
            raise BloomError("bloom is not unpadded base64url text")
        raw = unb64u(text)
        return cls(len(raw) * 8, k, raw)

    def add(self, key: str) -> None:
        self.add_digest(key_digest(key))

    def add_digest(self, digest: bytes) -> None:
        self.add_digests((digest,))

    def add_digests(self, digests: Collection[bytes]) -> None:
        """Add many keys at once. ``digests`` are 32-byte :func:`key_digest` values.

        Filling a block's filter is on the ledger's commit path and in every verification.
        With NumPy installed (the ``ledger`` extra, which the project's setup installs) the
        positions of all keys come from one broadcast sum in unsigned 64-bit arithmetic
        (it wraps modulo ``2**64``, which ``m`` divides, so the positions are exactly
        :func:`positions`); without it, one Python step per key and bit sets the same
        bits. Both are pinned to :func:`positions` by the tests. Measured on a 6,000-key
        block (bench/bloom_fill.py): pure 1.4 us per key, NumPy 0.06, so a ledger node
        wants NumPy; the terminal and the shopper pages, which only read filters, do not
        need it, so it is an option of the package rather than a requirement.
        """
        count = len(digests)
        if not count:
            return
        joined = b"".join(digests)
        if len(joined) != 32 * count:
            raise BloomError("add_digests takes 32-byte SHA-256 digests")
        fill = _fill_numpy if _numpy_available() else fill_pure
        fill(self.bits, joined, self.m_bits, self.k)

    def might_contain_digest(self, digest: bytes) -> bool:
        bits = self.bits
        return all(bits[p >> 3] >> (p & 7) & 1 for p in positions(digest, self.m_bits, self.k))

    def __contains__(self, key: object) -> bool:
        """False means certainly absent; True means present or a false positive."""
        return isinstance(key, str) and self.might_contain_digest(key_digest(key))

    def to_b64u(self) -> str:
        return b64u(bytes(self.bits))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, BloomFilter) and (self.m_bits, self.k, self.bits)
                == (other.m_bits, other.k, other.bits))

    def __repr__(self) -> str:
        return f"BloomFilter(m_bits={self.m_bits}, k={self.k})"


def fill_pure(bits: bytearray, joined: bytes, m_bits: int, k: int) -> None:
    """Set in ``bits`` every key's positions; ``joined`` is the keys' digests end to end."""
    low = m_bits - 1
    steps = range(k)
    for first, second in struct.iter_unpack(">QQ16x", joined):
        h1, h2 = first & low, (second | 1) & low
        for i in steps:
            p = (h1 + i * h2) & low
            bits[p >> 3] |= 1 << (p & 7)


def _fill_numpy(bits: bytearray, joined: bytes, m_bits: int, k: int) -> None:
    """As :func:`fill_pure`, as arrays: bits packed least significant first."""
    import numpy as np

    words = np.frombuffer(joined, dtype=">u8").reshape(len(joined) // 32, 4)
    mask = np.uint64(m_bits - 1)
    h1 = words[:, 0] & mask
    h2 = (words[:, 1] | np.uint64(1)) & mask
    found = (h1[:, None] + np.arange(k, dtype=np.uint64)[None, :] * h2[:, None]) & mask
    bit_map = np.zeros(m_bits, dtype=np.uint8)
    bit_map[found.ravel()] = 1
    packed = np.packbits(bit_map, bitorder="little")
    bits[:] = (np.frombuffer(bytes(bits), dtype=np.uint8) | packed).tobytes()


@functools.cache
def _numpy_available() -> bool:
    return importlib.util.find_spec("numpy") is not None
