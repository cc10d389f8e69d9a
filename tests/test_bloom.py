"""Bloom filters over trace keys: fixed bytes, no false negatives, the promised FP rate."""

from __future__ import annotations

import hashlib

import pytest

from market_protocol.bloom import (
    BloomError,
    BloomFilter,
    fill_pure,
    key_digest,
    positions,
    size_for,
)


def test_positions_follow_the_documented_double_hashing():
    digest = hashlib.sha256(b"t4kq2m7c9x0a").digest()
    assert key_digest("t4kq2m7c9x0a") == digest
    h1 = int.from_bytes(digest[:8], "big")
    h2 = int.from_bytes(digest[8:16], "big") | 1
    assert positions(digest, 1024, 3) == [h1 % 1024, (h1 + h2) % 2**64 % 1024,
                                          (h1 + 2 * h2) % 2**64 % 1024]


def test_a_known_filter_has_known_bytes():
    bloom = BloomFilter(64, 2)
    bloom.add("a")
    # SHA-256("a") = ca978112ca1bbdca fac231b39a23dc4d ...: h1 % 64 = 0x0a = 10, (h1 + h2) % 64 = 10 + 0x0d = 23
    assert [p for p in range(64) if bloom.bits[p >> 3] >> (p & 7) & 1] == [10, 23]
    assert bloom.to_b64u() == "AASAAAAAAAA"
    assert BloomFilter.from_b64u("AASAAAAAAAA", 2) == bloom


def test_no_false_negatives_and_about_the_promised_false_positive_rate():
    keys = [f"lot-{i}" for i in range(2000)]
    bloom = BloomFilter.for_keys(keys)
    assert all(key in bloom for key in keys)
    false_hits = sum(f"absent-{i}" in bloom for i in range(20000))
    assert false_hits / 20000 < 0.01


def test_sizes_are_powers_of_two_and_k_depends_on_the_rate_only():
    assert size_for(0) == (64, 7)
    m_bits, k = size_for(2000)
    assert m_bits == 32768 and k == 7
    assert size_for(2000, 0.001)[1] == 10
    with pytest.raises(BloomError):
        size_for(10, 1.5)


def test_serialisation_round_trips_and_bad_forms_are_refused():
    bloom = BloomFilter.for_keys(["a", "b", "c"])
    again = BloomFilter.from_b64u(bloom.to_b64u(), bloom.k)
    assert again == bloom and "b" in again
    with pytest.raises(BloomError, match="power of two"):
        BloomFilter.from_b64u("AAAA", 7)  # 24 bits
    with pytest.raises(BloomError, match="k must be"):
        BloomFilter(64, 0)
    with pytest.raises(BloomError, match="bytes of bits"):
        BloomFilter(64, 3, b"\x00")
    with pytest.raises(BloomError, match="base64url"):
        BloomFilter.from_b64u("!!!!", 7)
    assert 42 not in bloom


@pytest.mark.parametrize(("count", "m_bits", "k"), [(1, 64, 1), (7, 64, 10), (300, 4096, 7),
                                                     (2000, 32768, 10), (50, 2**20, 13)])
def test_filling_many_keys_at_once_sets_exactly_the_prescribed_bits(count, m_bits, k):
    digests = [key_digest(f"key-{count}-{i}") for i in range(count)]
    expected = bytearray(m_bits // 8)
    for digest in digests:
        for p in positions(digest, m_bits, k):
            expected[p >> 3] |= 1 << (p & 7)
    bulk = BloomFilter(m_bits, k)
    bulk.add_digests(digests)
    assert bulk.bits == expected
    one_by_one = BloomFilter(m_bits, k)
    for digest in digests:
        one_by_one.add_digest(digest)
    assert one_by_one == bulk
    pure = bytearray(m_bits // 8)
    fill_pure(pure, b"".join(digests), m_bits, k)
    assert pure == expected


def test_without_numpy_the_pure_path_fills_the_same_bits(monkeypatch):
    """NumPy is an optional extra: a filter made without it is byte for byte the same."""
    import market_protocol.bloom as bloom_module

    digests = [key_digest(f"no-numpy-{i}") for i in range(3000)]
    with_numpy = BloomFilter.for_digests(digests)
    monkeypatch.setattr(bloom_module, "_numpy_available", lambda: False)
    monkeypatch.setattr(bloom_module, "_fill_numpy", None)  # would raise if it were called
    without = BloomFilter.for_digests(digests)
    assert without == with_numpy
    assert all(f"no-numpy-{i}" in without for i in range(3000))


def test_bulk_filling_a_set_of_digests_into_a_used_filter_adds_the_prescribed_bits():
    first = [key_digest(f"first-{i}") for i in range(500)]
    later = {key_digest(f"later-{i}") for i in range(6500)}
    m_bits, k = size_for(7000, 0.001)
    expected = bytearray(m_bits // 8)
    for digest in [*first, *later]:
        for p in positions(digest, m_bits, k):
            expected[p >> 3] |= 1 << (p & 7)
    bloom = BloomFilter(m_bits, k)
    bloom.add_digests(first)
    bloom.add_digests(later)
    assert bloom.bits == expected


def test_bulk_filling_refuses_digests_that_are_not_sha256_sized():
    bloom = BloomFilter(64, 3)
    with pytest.raises(BloomError, match="32-byte"):
        bloom.add_digests([key_digest("a"), b"\x01" * 16])
    assert bloom.bits == bytearray(8)
