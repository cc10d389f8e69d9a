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

import hashlib
import math
import re
import sys
from array import array
from collections import deque
from collections.abc import Collection, Iterable
from itertools import repeat
from operator import setitem

from .signing import b64u, unb64u

__all__ = ["BloomFilter", "BloomError", "key_digest", "positions", "size_for",
           "DEFAULT_FP_RATE", "MIN_BITS"]

DEFAULT_FP_RATE = 0.01
MIN_BITS = 64
_B64U = re.compile(r"[A-Za-z0-9_-]*")
_AS_DIGITS = bytes.maketrans(b"\x00\x01", b"01")
_LITTLE_ENDIAN = sys.byteorder == "little"


def _native_to_little(words: array) -> bytes:
    """The bytes of an array of 64-bit words, each stored little-endian."""
    if not _LITTLE_ENDIAN:
        words = array("Q", words)
        words.byteswap()
    return words.tobytes()


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
        """Add many keys at once, with the per-key arithmetic done on big integers.

        Filling a block's filter is on the ledger's commit path and in every verification;
        one Python step per key and bit costs more than all the hashing. Here ``h1`` and
        ``h2`` of every key sit in 64-bit lanes of one integer each, so the ``k`` positions
        of all keys come from ``k`` additions and masks (the lanes are cut from all digests
        joined and read as one array of words, not sliced digest by digest); the bits are
        then set through a byte-per-bit map turned into the packed filter by C-level
        conversions. The result is bit for bit what :func:`positions` prescribes (tests pin
        it). ``digests`` are 32-byte :func:`key_digest` values.
        """
        count = len(digests)
        if not count:
            return
        joined = b"".join(digests)
        if len(joined) != 32 * count:
            raise BloomError("add_digests takes 32-byte SHA-256 digests")
        words = array("Q")
        words.frombytes(joined)
        if _LITTLE_ENDIAN:
            words.byteswap()  # each word now holds its 8 digest bytes read big-endian
        # Lanes little-endian from here on: lane j is bits 64j..64j+63 of each integer.
        lane_low = int.from_bytes((self.m_bits - 1).to_bytes(8, "little") * count, "little")
        lane_one = int.from_bytes((1).to_bytes(8, "little") * count, "little")
        h1 = int.from_bytes(_native_to_little(words[0::4]), "little") & lane_low
        h2 = (int.from_bytes(_native_to_little(words[1::4]), "little") | lane_one) & lane_low
        found = array("Q")
        position = h1
        for _ in range(self.k):
            found.frombytes((position & lane_low).to_bytes(8 * count, "little"))
            position += h2
        if not _LITTLE_ENDIAN:
            found.byteswap()
        byte_map = bytearray(self.m_bits)
        # C-level scatter; operator.setitem costs a third of a bound __setitem__ per call
        deque(map(setitem, repeat(byte_map), found, repeat(1)), maxlen=0)
        packed = int(byte_map.translate(_AS_DIGITS)[::-1], 2)
        current = int.from_bytes(self.bits, "little")
        self.bits = bytearray((current | packed).to_bytes(self.m_bits // 8, "little"))

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
