"""Checking every node's copy of the ledger, block by block, and naming what is wrong.

For each height, on each node: the header is canonical, at its own height and hashes to
the stored block hash; ``prev_hash`` links to the node's previous block; the orderer's and
every organisation's signature verify; the leaves recomputed from their stored columns
give the stored leaf hashes, the header's Merkle root and Bloom filter, and the block's
trace-key index (a tampered index would hide entries from a trace); every off-chain
record hashes to its leaf's ``record_hash``, and the node holds exactly the records the
signed header says it must (none missing, none kept from it); and the copy equals the
other nodes' copies, on chain and record by record.
Problems come out in chain order, so the first one names the first bad block or record.

A node whose on-chain copy equals an already checked node's skips the recomputation
(same bytes, same answer); its off-chain records are always checked, they are its own.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from market_protocol import canonical_json, merkle
from market_protocol.bloom import BloomError, BloomFilter, key_digest

from .blocks import GENESIS_PREV_HASH, block_hash, must_hold, pack_inner_nodes, verify_signature
from .entries import leaf_data
from .key_index import build_key_index, key_id
from .node_store import BlockRow, LeafRow, NodeStore

__all__ = ["Problem", "VerifyReport", "verify_nodes", "top_height"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: which node, which block, which record (when known), and what."""

    node: str
    height: int | None
    record_id: str | None
    what: str

    def __str__(self) -> str:
        where = [f"node {self.node}"]
        if self.height is not None:
            where.append(f"block {self.height}")
        if self.record_id is not None:
            where.append(f"record {self.record_id}")
        return f"{', '.join(where)}: {self.what}"


@dataclass(slots=True)
class VerifyReport:
    ok: bool
    problems: list[Problem] = field(default_factory=list)
    blocks: int = 0
    trades: int = 0
    records_checked: int = 0
    seconds: float = 0.0

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "blocks": self.blocks, "trades": self.trades,
                "records_checked": self.records_checked, "seconds": round(self.seconds, 3),
                "first_problem": str(self.first) if self.first else None,
                "problems": [asdict(p) for p in self.problems]}


@dataclass(slots=True)
class _Copy:
    """One node's block at one height, as read, plus what checking it found."""

    row: BlockRow
    header: dict[str, Any] | None = None
    leaves: list[LeafRow] = field(default_factory=list)
    derived: tuple[bytes, bytes] | None = None
    stored_leaves: list[tuple[int, bytes, bytes]] | None = None

    def same_as(self, other: _Copy, own_signatures: bool = False) -> bool:
        """Equal copies; with ``own_signatures`` (organisation nodes, each signing its own
        copy) the signatures column is left out of the comparison."""
        if own_signatures:
            mine, theirs = self.row[:3] + self.row[4:], other.row[:3] + other.row[4:]
            return (mine, self.leaves, self.derived) == (theirs, other.leaves, other.derived)
        return (self.row, self.leaves, self.derived) == (other.row, other.leaves, other.derived)


def _check_header(org: str, height: int, row: BlockRow, prev_hash: str) -> tuple[list[Problem], dict[str, Any] | None]:
    try:
        header = orjson.loads(row[2])
        canonical = canonical_json.dumps(header).decode()
    except (ValueError, TypeError) as exc:
        return [Problem(org, height, None, f"header is not valid JSON: {exc}")], None
    found = []
    if not isinstance(header, dict) or not isinstance(header.get("count"), int):
        return [Problem(org, height, None, "header is not a tracepay.block/1 object")], None
    if header.get("height") != height:
        found.append(Problem(org, height, None, f"stored at height {height} but the header says "
                             f"{header.get('height')} (blocks moved or reordered)"))
    if canonical != row[2]:
        found.append(Problem(org, height, None, "header is not in canonical form"))
    if block_hash(header) != row[1]:
        found.append(Problem(org, height, None, "stored block hash does not match the header"))
    if header.get("prev_hash") != prev_hash:
        found.append(Problem(org, height, None, f"prev_hash does not link to block {height - 1}"))
    return found, header


def _check_signatures(org: str, height: int, header: dict[str, Any], signatures_json: str,
                      keys: Mapping[str, Ed25519PublicKey], orderer: str) -> list[Problem]:
    try:
        signatures = {s["signer"]: s["sig"] for s in orjson.loads(signatures_json)}
    except (ValueError, TypeError, KeyError) as exc:
        return [Problem(org, height, None, f"signatures are unreadable: {exc}")]
    found = []
    for signer, key in keys.items():
        role = "orderer signature" if signer == orderer else f"endorsement by {signer}"
        sig = signatures.get(signer)
        if not isinstance(sig, str):
            found.append(Problem(org, height, None, f"{role} is missing"))
        elif not verify_signature(key, header, sig):
            found.append(Problem(org, height, None, f"{role} does not verify (forged or altered)"))
    return found


def _missing_leaves(org: str, height: int, header: dict[str, Any], leaves: Sequence[LeafRow],
                    others: Sequence[Sequence[LeafRow]]) -> list[Problem]:
    """Leaves the header counts but this copy lacks, named by the other copies where they
    hold them (a leaf's index is its position, so a removed leaf is found by its id)."""
    if len(leaves) >= header["count"]:
        return []
    present = {leaf[1] for leaf in leaves}
    fuller = max(others, key=len, default=[])
    if len(fuller) > len(leaves):
        return [Problem(org, height, leaf[1], f"leaf {leaf[4]} is missing")
                for leaf in fuller if leaf[1] not in present]
    return [Problem(org, height, None, f"leaf {i} is missing")
            for i in range(len(leaves), header["count"])]


def _check_leaves(org: str, height: int, copy: _Copy) -> list[Problem]:
    """Leaf data -> leaf hashes -> root, and trace keys -> Bloom filter and key index."""
    row, header, leaves = copy.row, copy.header or {}, copy.leaves
    found, hashes, keys, per_leaf = [], [], set(), []
    stored = row[5]
    for i, (_, record_id, kind, leaf_height, index, record_hash, keys_json) in enumerate(leaves):
        trace_keys = orjson.loads(keys_json)
        keys.update(trace_keys)
        per_leaf.append((index, trace_keys))
        computed = merkle.leaf_hash(leaf_data(kind, record_id, record_hash.hex(), trace_keys))
        hashes.append(computed)
        if (leaf_height, index) != (height, i) or computed != stored[32 * i:32 * i + 32]:
            found.append(Problem(org, height, record_id,
                                 "leaf does not match the block's leaf hashes (altered or moved)"))
    if len(stored) != 32 * header["count"]:
        found.append(Problem(org, height, None, "stored leaf hashes do not match the count"))
    tree = merkle.levels(hashes) if hashes else [[merkle.empty_root()]]
    if tree[-1][0].hex() != header.get("merkle_root"):
        found.append(Problem(org, height, None, "Merkle root does not match the stored leaves"))
    key_index, inner_nodes = copy.derived or (b"", b"")
    if pack_inner_nodes(tree) != inner_nodes:
        found.append(Problem(org, height, None, "stored Merkle tree does not match the leaves"))
    digests = {key: key_digest(key) for key in keys}
    try:
        expected = BloomFilter.from_b64u(str(header.get("bloom")), int(header.get("bloom_k", 0)))
        rebuilt = BloomFilter(expected.m_bits, expected.k)
        rebuilt.add_digests(set(digests.values()))
        if rebuilt != expected:
            found.append(Problem(org, height, None, "Bloom filter does not match the trace keys"))
    except BloomError as exc:
        found.append(Problem(org, height, None, f"Bloom filter is unusable: {exc}"))
    rebuilt_index = build_key_index((key_id(digests[key]), i) for i, entry_keys in per_leaf
                                    for key in entry_keys)
    if rebuilt_index != key_index:
        found.append(Problem(org, height, None, "trace-key index does not match the leaves"))
    return found


def _check_records(org: str, height: int, node: NodeStore, header: dict[str, Any],
                   leaves: Sequence[LeafRow]) -> tuple[list[Problem], dict[int, bytes], int]:
    """Every record this node keeps hashes to its leaf; the ones it keeps are exactly the
    ones the signed header says it must (a deleted record is as wrong as an altered one,
    a record kept from this organisation as wrong as a missing one). Returns the findings,
    ``{leaf index: SHA-256}`` of the records not already found bad (for comparing the
    copies, so a bad record is named once) and how many records were read."""
    by_index = {leaf[4]: leaf for leaf in leaves}
    found, digests, held = [], {}, set()
    records = node.block_records(height)
    for index, body in records:
        leaf = by_index.get(index)
        digest = hashlib.sha256(body).digest()
        held.add(index)
        if leaf is None:
            found.append(Problem(org, height, None, f"off-chain record of leaf {index} has no leaf"))
        elif digest != leaf[5]:
            found.append(Problem(org, height, leaf[1],
                                 "off-chain record does not match its on-chain hash"))
        else:
            digests[index] = digest
    try:
        expected = must_hold(header, org)
    except ValueError as exc:
        found.append(Problem(org, height, None, f"header's list of private records is "
                             f"unusable: {exc}"))
        return found, digests, len(records)
    if expected.symmetric_difference(held):
        for index in sorted(expected - held):
            leaf = by_index.get(index)
            found.append(Problem(org, height, leaf[1] if leaf else None,
                                 f"off-chain record of leaf {index} is missing (the block "
                                 "says this node holds it)"))
        for index in sorted(held - expected):
            leaf = by_index.get(index)
            found.append(Problem(org, height, leaf[1] if leaf else None,
                                 f"holds the off-chain record of leaf {index}, which the block "
                                 "keeps from this organisation"))
    return found, digests, len(records)


def _compare_records(height: int, held: Mapping[str, dict[int, bytes]],
                     leaves: Mapping[str, Sequence[LeafRow]]) -> list[Problem]:
    """Record by record: every node holding a leaf's record holds the same bytes as the
    first node that holds it (equal dicts, the usual case, cost one comparison)."""
    found: list[Problem] = []
    items = list(held.items())
    if len(items) < 2 or all(digests == items[0][1] for _, digests in items[1:]):
        return found
    first: dict[int, tuple[str, bytes]] = {}
    for org, digests in items:
        ids = {leaf[4]: leaf[1] for leaf in leaves.get(org, ())}
        for index, digest in sorted(digests.items()):
            seen = first.setdefault(index, (org, digest))
            if seen[1] != digest:
                found.append(Problem(org, height, ids.get(index),
                                     f"off-chain record differs from {seen[0]}'s copy"))
    return found


def top_height(nodes: Mapping[str, NodeStore]) -> int:
    """The highest block any node holds."""
    return max(((node.last_block() or (0,))[0] for node in nodes.values()), default=0)


def verify_nodes(nodes: Mapping[str, NodeStore], keys: Mapping[str, Ed25519PublicKey],
                 orderer: str = "orderer", max_problems: int = 100, start: int = 1,
                 end: int | None = None, own_signatures: bool = False) -> VerifyReport:
    """Check heights ``start`` to ``end`` (default: the top) on every node; stops collecting
    after ``max_problems`` findings.

    A range that does not start at 1 links its first block to each node's stored hash of
    the block before; the range holding that block checks the hash itself.

    ``own_signatures`` checks organisation nodes' stores, where each node signed its own
    copy: node *X*'s blocks must carry a valid signature by ``keys[X]``, and copies are
    compared without their signatures.
    """
    started = time.monotonic()
    report = VerifyReport(ok=True)
    end = top_height(nodes) if end is None else end
    prev = {org: _stored_hash(node, start - 1) for org, node in nodes.items()}
    for height in range(start, end + 1):
        _verify_height(height, nodes, keys, orderer, prev, report, own_signatures)
        if len(report.problems) >= max_problems:
            break
    report.ok = not report.problems
    report.seconds = time.monotonic() - started
    return report


def _stored_hash(node: NodeStore, height: int) -> str:
    if height < 1:
        return GENESIS_PREV_HASH
    row = node.block(height)
    return "" if row is None else row[1]  # a missing block is reported by its own range


def _load_leaves(height: int, nodes: Mapping[str, NodeStore], copies: dict[str, _Copy]) -> None:
    """Read the leaf rows: the first copy's always; the others' only when some copy differs
    from it (identical copies share its rows, so they are not read and parsed again)."""
    readable = [(org, c) for org, c in copies.items() if c.header is not None]
    if not readable:
        return
    reference = readable[0][1]
    fields = (reference.row, reference.derived, reference.stored_leaves)
    differs = any((c.row, c.derived, c.stored_leaves) != fields for _, c in readable)
    for org, copy in readable:
        if copy is reference or differs:
            copy.leaves = nodes[org].block_leaves(height, copy.row[4])
        else:
            copy.leaves = reference.leaves


def _verify_height(height: int, nodes: Mapping[str, NodeStore],
                   keys: Mapping[str, Ed25519PublicKey], orderer: str, prev: dict[str, str],
                   report: VerifyReport, own_signatures: bool = False) -> None:
    copies: dict[str, _Copy] = {}
    for org, node in nodes.items():
        row = node.block(height)
        if row is None:
            report.problems.append(Problem(org, height, None, "block is missing"))
            continue
        found, header = _check_header(org, height, row, prev[org])
        prev[org] = row[1]
        copy = copies[org] = _Copy(row, header)
        if header is not None:
            copy.stored_leaves = node.leaf_set(height)
            copy.derived = node.derived(height)
            signers = {org: keys[org]} if own_signatures else keys
            found += _check_signatures(org, height, header, row[3], signers, orderer)
        report.problems.extend(found)
    _load_leaves(height, nodes, copies)
    checked: list[_Copy] = []
    held: dict[str, dict[int, bytes]] = {}
    for org, copy in copies.items():
        if copy.header is None:
            continue
        twin = next((c for c in checked if c.same_as(copy, own_signatures)), None)
        if twin is None:
            others = [c.leaves for name, c in copies.items() if name != org]
            report.problems.extend(_missing_leaves(org, height, copy.header, copy.leaves, others))
            report.problems.extend(_check_leaves(org, height, copy))
            if checked:
                report.problems.append(Problem(org, height, None,
                                               f"copy differs from {next(iter(copies))}'s"))
            checked.append(copy)
        found, held[org], count = _check_records(org, height, nodes[org], copy.header,
                                                 copy.leaves)
        report.problems.extend(found)
        report.records_checked += count
    report.problems.extend(_compare_records(height, held, {org: c.leaves
                                                           for org, c in copies.items()}))
    reference = next(iter(copies.values()), None)
    if reference is not None and reference.header is not None:
        report.blocks += 1
        report.trades += reference.header["count"]
