"""The block key index: the one-pass builder gives the bytes of the pairwise reference."""

from __future__ import annotations

import hashlib
import random

import pytest

from market_protocol.bloom import BloomFilter, key_digest
from trace_ledger.block_builder import BLOOM_FP_RATE, BlockBuild, Queued, record_id_digest
from trace_ledger.entries import LedgerEntry
from trace_ledger.key_index import build_key_index, key_id, key_ids, lookup, pack_key_index


@pytest.mark.parametrize("seed", range(12))
def test_packing_flat_pairs_matches_the_pairwise_builder(seed):
    rng = random.Random(seed)
    ids = [rng.getrandbits(64) for _ in range(rng.randint(1, 400))]
    ids += [0, 2**64 - 1, 2**63]  # the ends of the unsigned range and the sign bit
    pairs = [(rng.choice(ids), rng.randrange(3000)) for _ in range(rng.randint(1, 2500))]
    pairs += [(ids[0], leaf) for leaf in range(0, 3000, 7)]  # one key shared by many leaves
    pairs += pairs[:50]  # the same pair twice
    rng.shuffle(pairs)
    packed = pack_key_index([ident for ident, _ in pairs], [leaf for _, leaf in pairs])
    assert packed == build_key_index(pairs)
    for ident in rng.sample(ids, 20):
        assert lookup(packed, ident) == sorted({leaf for i, leaf in pairs if i == ident})


@pytest.mark.parametrize("seed", range(6))
def test_pairs_walked_in_leaf_order_pack_alike_either_way(seed):
    rng = random.Random(seed)
    key_ids_pool = [rng.getrandbits(64) for _ in range(rng.randint(1, 500))] + [0, 2**64 - 1]
    pairs = [(ident, leaf) for leaf in range(rng.randint(1, 1500))
             for ident in rng.sample(key_ids_pool, rng.randint(0, min(6, len(key_ids_pool))))]
    ids, leaves = [ident for ident, _ in pairs], [leaf for _, leaf in pairs]
    expected = build_key_index(pairs)
    assert pack_key_index(ids, leaves, in_leaf_order=True) == expected
    assert pack_key_index(ids, leaves) == expected


def test_distinct_keys_whose_ids_collide_share_one_run():
    # Four keys, two of them with the same 64-bit id (crafted: the builder is given ids,
    # not keys), and leaf 4 carrying both of those.
    runs = {"a": (500, [1, 4, 9]), "b": (7, [2]), "c": (500, [0, 4, 12]), "d": (900, [4])}
    pairs = [(ident, leaf) for ident, leaves in runs.values() for leaf in leaves]
    packed = pack_key_index([ident for ident, _ in pairs], [leaf for _, leaf in pairs])
    assert packed == build_key_index(pairs)
    assert lookup(packed, 500) == [0, 1, 4, 9, 12]
    assert len(packed) == 12 * 7  # leaf 4 under id 500 is stored once


def test_an_empty_block_and_mismatched_inputs():
    assert pack_key_index([], []) == build_key_index([]) == b""
    with pytest.raises(ValueError, match="leaf indexes"):
        pack_key_index([1, 2], [0])


def test_key_ids_of_many_digests_equal_key_id_of_each():
    digests = [key_digest(f"lot-{i}") for i in range(300)]
    assert key_ids(digests) == [key_id(d) for d in digests]
    assert key_ids([]) == []
    with pytest.raises(ValueError, match="32-byte"):
        key_ids([b"\x00" * 16])


def _queued(i: int, keys: list[str]) -> Queued:
    entry = LedgerEntry("trade", f"t{i}", {"n": i}, keys)
    return Queued(entry, entry.check(), record_id_digest(entry.record_id))


@pytest.mark.parametrize("seed", range(4))
def test_a_built_block_indexes_and_filters_exactly_its_leaves_keys(seed):
    rng = random.Random(seed)
    pool = [f"k{n}" for n in range(rng.randint(1, 300))] + ["shared", "é-lot", 'q"uote']
    batch = []
    for i in range(rng.randint(1, 600)):
        keys = rng.sample(pool, rng.randint(0, min(6, len(pool))))
        keys += keys[:rng.randint(0, 2)] + ["shared"] * rng.randint(0, 2)  # repeats in a leaf
        batch.append(_queued(i, keys))
    block = BlockBuild(batch, 3, 100, "ab" * 32)
    pairs = [(key_id(key_digest(key)), i) for i, q in enumerate(batch)
             for key in q.entry.trace_keys]
    assert block.key_index == build_key_index(pairs)
    every_key = {key for q in batch for key in q.entry.trace_keys}
    assert block.bloom == BloomFilter.for_keys(every_key, BLOOM_FP_RATE)


def test_record_id_digests_are_the_signed_big_endian_head_of_sha256():
    import hashlib

    for record_id in ["t1", "dev001.12345.s00012345", "é/x", "r" * 128]:
        digest = hashlib.sha256(record_id.encode()).digest()
        assert record_id_digest(record_id) == int.from_bytes(digest[:8], "big", signed=True)
    assert {record_id_digest(f"t{i}") < 0 for i in range(64)} == {True, False}


@pytest.mark.parametrize("odd_id", [None, 'id/"1"', "back\\slash", "tab\there", "\x00"])
def test_leaf_hashes_are_those_of_the_leaf_data(odd_id):
    from market_protocol import canonical_json, merkle
    from trace_ledger.entries import leaf_data

    batch = [_queued(i, [f"lot-{i % 3}", "m1", "é", 'q"k\\']) for i in range(40)]
    if odd_id is not None:  # not an id check() lets through: the general path must serve
        entry = LedgerEntry("trade", odd_id, {"n": 1}, ["k"])
        batch.append(Queued(entry, canonical_json.dumps(entry.record), 0))
    block = BlockBuild(batch, 1, 0, "00" * 32)
    assert block.leaf_hashes == [
        merkle.leaf_hash(leaf_data(q.entry.kind, q.entry.record_id,
                                   hashlib.sha256(q.body).hexdigest(), q.entry.trace_keys))
        for q in batch]


def test_a_block_whose_key_ids_collide_indexes_them_as_the_pairwise_form(monkeypatch):
    from trace_ledger import block_builder

    def tiny_ids(digests):  # four ids for many keys: collisions, also within one leaf
        return [digest[0] % 4 for digest in digests]

    monkeypatch.setattr(block_builder, "key_ids", tiny_ids)
    rng = random.Random(5)
    batch = [_queued(i, rng.sample([f"k{n}" for n in range(40)], rng.randint(0, 5)))
             for i in range(300)]
    block = BlockBuild(batch, 1, 0, "00" * 32)
    pairs = [(key_digest(key)[0] % 4, i) for i, q in enumerate(batch) for key in q.entry.trace_keys]
    assert block.key_index == build_key_index(pairs)
    assert len(block.key_index) < 12 * len(pairs)  # repeated (id, leaf) pairs stored once
