"""RFC 6962 Merkle trees against published vectors, the RFC's recursive definition and
JSON cases of tampered proofs (tests/testdata/merkle/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from market_protocol import merkle

DATA = Path(__file__).parent / "testdata" / "merkle"
VECTORS = json.loads((DATA / "rfc6962_vectors.json").read_text())
TAMPERED = json.loads((DATA / "tampered_proofs.json").read_text())
LEAVES = [merkle.leaf_hash(bytes.fromhex(h)) for h in VECTORS["leaves_hex"]]


def hashes(hex_list):
    return [bytes.fromhex(h) for h in hex_list]


def mth(leaf_hashes):
    """RFC 6962 §2.1 word for word: split at the largest power of two below n."""
    if len(leaf_hashes) == 1:
        return leaf_hashes[0]
    k = 1
    while k * 2 < len(leaf_hashes):
        k *= 2
    return merkle.node_hash(mth(leaf_hashes[:k]), mth(leaf_hashes[k:]))


def test_prefixes_are_the_rfc_constants():
    assert (merkle.LEAF_PREFIX, merkle.NODE_PREFIX) == (0x00, 0x01)


def test_hasher_known_answers():
    expected = VECTORS["hasher"]
    assert merkle.empty_root().hex() == expected["empty_root"]
    assert merkle.root([]).hex() == expected["empty_root"]
    assert merkle.leaf_hash(b"").hex() == expected["empty_leaf"]
    assert merkle.leaf_hash(b"L123456").hex() == expected["leaf_L123456"]
    assert merkle.node_hash(b"N123", b"N456").hex() == expected["node_N123_N456"]


@pytest.mark.parametrize("size", range(9))
def test_roots_match_published_tree_heads(size):
    assert merkle.root(LEAVES[:size]).hex() == VECTORS["roots"][size]


@pytest.mark.parametrize("case", VECTORS["inclusion"], ids=lambda c: f"{c['leaf_index']}in{c['tree_size']}")
def test_inclusion_proofs_match_published_paths(case):
    tree = LEAVES[:case["tree_size"]]
    proof = merkle.inclusion_proof(tree, case["leaf_index"])
    assert [h.hex() for h in proof] == case["proof"]
    assert merkle.verify_inclusion(case["leaf_index"], case["tree_size"], tree[case["leaf_index"]],
                                   proof, bytes.fromhex(VECTORS["roots"][case["tree_size"]]))


@pytest.mark.parametrize("case", VECTORS["consistency"], ids=lambda c: f"{c['size1']}to{c['size2']}")
def test_consistency_proofs_match_published_proofs(case):
    proof = merkle.consistency_proof(LEAVES[:case["size2"]], case["size1"])
    assert [h.hex() for h in proof] == case["proof"]
    assert merkle.verify_consistency(case["size1"], case["size2"],
                                     bytes.fromhex(VECTORS["roots"][case["size1"]]),
                                     bytes.fromhex(VECTORS["roots"][case["size2"]]), proof)


@pytest.mark.parametrize("case", TAMPERED["inclusion"],
                         ids=lambda c: f"{c['leaf_index']}in{c['tree_size']}-{c['desc']}")
def test_tampered_inclusion_cases(case):
    try:
        proof = hashes(case["proof"])
    except ValueError:
        proof = [bytes.fromhex(case["proof"][0][:2])]
    ok = merkle.verify_inclusion(case["leaf_index"], case["tree_size"],
                                 bytes.fromhex(case["leaf_hash"]), proof,
                                 bytes.fromhex(case["root"]))
    assert ok is case["valid"]


@pytest.mark.parametrize("case", TAMPERED["consistency"],
                         ids=lambda c: f"{c['size1']}to{c['size2']}-{c['desc']}")
def test_tampered_consistency_cases(case):
    ok = merkle.verify_consistency(case["size1"], case["size2"], bytes.fromhex(case["root1"]),
                                   bytes.fromhex(case["root2"]), hashes(case["proof"]))
    assert ok is case["valid"]


def test_every_proof_in_every_tree_up_to_70_leaves():
    leaves = [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(70)]
    for n in range(1, 71):
        tree, root = leaves[:n], merkle.root(leaves[:n])
        assert root == mth(tree)
        levels = merkle.levels(tree)
        for i in range(n):
            proof = merkle.inclusion_proof(tree, i)
            assert merkle.inclusion_proof_from_levels(levels, i) == proof
            assert merkle.verify_inclusion(i, n, tree[i], proof, root)
            assert not merkle.verify_inclusion(i, n, leaves[(i + 1) % 70], proof, root)
        for old in range(1, n + 1):
            proof = merkle.consistency_proof(tree, old)
            assert merkle.verify_consistency(old, n, mth(tree[:old]), root, proof)


def test_preconditions_are_checked_first():
    with pytest.raises(merkle.MerkleError, match="outside a tree of 3"):
        merkle.inclusion_proof(LEAVES[:3], 3)
    with pytest.raises(merkle.MerkleError, match="old size 0"):
        merkle.consistency_proof(LEAVES[:3], 0)
    with pytest.raises(merkle.MerkleError, match="32-byte"):
        merkle.root_from_inclusion(0, 2, b"short", [LEAVES[1]])
    with pytest.raises(merkle.MerkleError, match="no leaves"):
        merkle.levels([])
    assert not merkle.verify_inclusion(-1, 8, LEAVES[0], [], LEAVES[0])
    assert not merkle.verify_consistency(5, 4, LEAVES[0], LEAVES[0], [])
