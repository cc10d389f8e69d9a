"""RFC 6962 Merkle trees: leaf and node hashing, roots, inclusion and consistency proofs.

The ledger commits each block's leaves under one root, and the shopper's browser re-checks
an inclusion proof against that root, so every byte follows RFC 6962 §2.1 exactly (the
same trees as RFC 9162): a leaf hash is ``SHA-256(0x00 || data)``, a node hash is
``SHA-256(0x01 || left || right)``, and a tree of ``n`` leaves splits at the largest power
of two below ``n``. The prefixes keep a leaf from ever passing for an inner node.

Everything here works on lists of 32-byte leaf hashes, never on raw data, so a caller
hashes its leaves once and reuses them for the root and for every proof. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "LEAF_PREFIX", "NODE_PREFIX", "HASH_SIZE", "MerkleError",
    "leaf_hash", "node_hash", "empty_root", "root", "levels",
    "inclusion_proof", "inclusion_proof_from_levels", "root_from_inclusion", "verify_inclusion",
    "consistency_proof", "verify_consistency",
]

LEAF_PREFIX = 0x00
NODE_PREFIX = 0x01
HASH_SIZE = 32

_LEAF = bytes([LEAF_PREFIX])
_NODE = bytes([NODE_PREFIX])
_sha256 = hashlib.sha256


class MerkleError(ValueError):
    """A proof or its arguments are malformed (as opposed to simply not verifying)."""


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one leaf's data."""
    return _sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an inner node."""
    return _sha256(_NODE + left + right).digest()


def empty_root() -> bytes:
    """The root of a tree with no leaves: SHA-256 of the empty string (RFC 6962 §2.1)."""
    return _sha256(b"").digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (for ``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """``MTH(D[n])``, computed level by level.

    Pairing left to right and lifting a lone last node unchanged builds the same tree as
    RFC 6962's split at the largest power of two, without recursion or slicing.
    """
    if not leaf_hashes:
        return empty_root()
    level = list(leaf_hashes)
    sha256, node = _sha256, _NODE
    while len(level) > 1:
        paired = [sha256(node + left + right).digest()
                  for left, right in zip(level[::2], level[1::2], strict=False)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def levels(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaves first and ``[root]`` last, built as :func:`root` does.

    Kept by a server that answers many proofs for one tree: a path is then read off the
    levels instead of re-hashing the whole tree. Precondition: at least one leaf.
    """
    if not leaf_hashes:
        raise MerkleError("a tree with no leaves has no levels")
    built = [list(leaf_hashes)]
    sha256, node = _sha256, _NODE
    while len(built[-1]) > 1:
        level = built[-1]
        # zip over the even and odd slices: no per-pair indexing or call (a block's tree
        # is built on the commit path and again by every verification)
        paired = [sha256(node + left + right).digest()
                  for left, right in zip(level[::2], level[1::2], strict=False)]
        if len(level) % 2:
            paired.append(level[-1])
        built.append(paired)
    return built


def inclusion_proof_from_levels(tree_levels: Sequence[Sequence[bytes]], index: int) -> list[bytes]:
    """The same audit path as :func:`inclusion_proof`, read from :func:`levels`.

    A lone last node is lifted without a sibling, so that level adds nothing to the path.
    Precondition: ``0 <= index < len(tree_levels[0])``.
    """
    if not tree_levels or not 0 <= index < len(tree_levels[0]):
        raise MerkleError(f"leaf index {index} outside the tree")
    path = []
    for level in tree_levels[:-1]:
        if index ^ 1 < len(level):
            path.append(level[index ^ 1])
        index >>= 1
    return path


def _subtree_root(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    return root(leaf_hashes[start:end])


def _path(leaf_hashes: Sequence[bytes], m: int, start: int, end: int) -> list[bytes]:
    """RFC 6962 ``PATH(m, D[start:end])``, deepest sibling first."""
    if end - start == 1:
        return []
    k = _split(end - start)
    if m < k:
        return [*_path(leaf_hashes, m, start, start + k), _subtree_root(leaf_hashes, start + k, end)]
    return [*_path(leaf_hashes, m - k, start + k, end), _subtree_root(leaf_hashes, start, start + k)]


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``leaf_hashes``.

    Precondition: ``0 <= index < len(leaf_hashes)``.
    """
    if not 0 <= index < len(leaf_hashes):
        raise MerkleError(f"leaf index {index} outside a tree of {len(leaf_hashes)} leaves")
    return _path(leaf_hashes, index, 0, len(leaf_hashes))


def _check_hashes(hashes: Sequence[bytes], what: str) -> None:
    for position, value in enumerate(hashes):
        if not isinstance(value, bytes) or len(value) != HASH_SIZE:
            raise MerkleError(f"{what}[{position}] is not a {HASH_SIZE}-byte hash")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root implied by ``proof`` for ``leaf`` at ``index`` (RFC 9162 §2.1.3.2).

    Preconditions: ``0 <= index < size``, 32-byte hashes, and a proof of exactly the length
    the tree shape demands (a longer or shorter one is refused, not silently cut).
    """
    if not 0 <= index < size:
        raise MerkleError(f"leaf index {index} outside a tree of {size} leaves")
    _check_hashes([leaf, *proof], "hash")
    fn, sn, result = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            raise MerkleError("proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise MerkleError("proof is shorter than the tree is deep")
    return result


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     expected_root: bytes) -> bool:
    """True when ``proof`` shows ``leaf`` at ``index`` in the tree with ``expected_root``."""
    try:
        return root_from_inclusion(index, size, leaf, proof) == expected_root
    except MerkleError:
        return False


def _subproof(leaf_hashes: Sequence[bytes], m: int, start: int, end: int,
              whole: bool) -> list[bytes]:
    """RFC 6962 ``SUBPROOF(m, D[start:end], b)``."""
    n = end - start
    if m == n:
        return [] if whole else [_subtree_root(leaf_hashes, start, end)]
    k = _split(n)
    if m <= k:
        return [*_subproof(leaf_hashes, m, start, start + k, whole),
                _subtree_root(leaf_hashes, start + k, end)]
    return [*_subproof(leaf_hashes, m - k, start + k, end, False),
            _subtree_root(leaf_hashes, start, start + k)]


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Proof that the first ``old_size`` leaves are a prefix of ``leaf_hashes``.

    Precondition: ``0 < old_size <= len(leaf_hashes)`` (RFC 6962 §2.1.2 defines no proof
    from the empty tree: every tree extends it).
    """
    if not 0 < old_size <= len(leaf_hashes):
        raise MerkleError(f"old size {old_size} must be in 1..{len(leaf_hashes)}")
    return _subproof(leaf_hashes, old_size, 0, len(leaf_hashes), True)


def _consistency_path(old_size: int, proof: Sequence[bytes], old_root: bytes) -> list[bytes]:
    """Prepend the old root when the old tree is a complete subtree (RFC 9162 §2.1.4.2)."""
    if old_size & (old_size - 1) == 0:
        return [old_root, *proof]
    return list(proof)


def _roots_from_consistency(old_size: int, new_size: int, old_root: bytes,
                            proof: Sequence[bytes]) -> tuple[bytes, bytes]:
    path = _consistency_path(old_size, proof, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    if not path:
        raise MerkleError("consistency proof is empty")
    fr = sr = path[0]
    for node in path[1:]:
        if sn == 0:
            raise MerkleError("consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(node, fr), node_hash(node, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, node)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise MerkleError("consistency proof is shorter than the tree is deep")
    return fr, sr


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """True when ``proof`` shows the tree ``old_root`` is a prefix of the tree ``new_root``.

    Preconditions: ``0 < old_size <= new_size``; equal sizes need an empty proof and equal
    roots. Malformed input answers False rather than raising, as a verifier should.
    """
    if not 0 < old_size <= new_size:
        return False
    try:
        _check_hashes([old_root, new_root, *proof], "hash")
        if old_size == new_size:
            return not proof and old_root == new_root
        return _roots_from_consistency(old_size, new_size, old_root, proof) == (old_root, new_root)
    except MerkleError:
        return False
