"""Running a full verification: over read-only copies of the node files, and for a long
ledger in worker processes, each checking a range of heights.

Checking a million trades is CPU work (hashing every leaf and record, rebuilding every
Merkle tree, Bloom filter and key index), and blocks can be checked independently once each
range links its first block to the stored hash of the block before. Worker processes use
every core; their findings are merged back in chain order, so the first problem is still
the first bad block or record.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import astuple
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .node_store import STORE_NAME, NodeStore
from .signers import ORDERER
from .verification import Problem, VerifyReport, top_height, verify_nodes

__all__ = ["verify_data_dir", "verify_node_dirs", "verify_stores", "block_hashes", "PARALLEL_FROM_BLOCKS"]

#: Below this many blocks, starting worker processes costs more than it saves.
PARALLEL_FROM_BLOCKS = 64
MAX_PROBLEMS = 100


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _open(stores: Mapping[str, Path]) -> dict[str, NodeStore]:
    return {org: NodeStore(org, path, readonly=True) for org, path in stores.items()}


def _verify_range(stores: dict[str, str], raw_keys: dict[str, bytes], start: int,
                  end: int) -> tuple[list[tuple], int, int, int]:
    """Worker: check heights ``start..end``; plain tuples travel back to the parent."""
    nodes = _open({org: Path(path) for org, path in stores.items()})
    keys = {name: Ed25519PublicKey.from_public_bytes(raw) for name, raw in raw_keys.items()}
    try:
        report = verify_nodes(nodes, keys, ORDERER, MAX_PROBLEMS, start, end)
    finally:
        for node in nodes.values():
            node.close()
    return ([astuple(p) for p in report.problems], report.blocks, report.trades,
            report.records_checked)


def _ranges(top: int, parts: int) -> list[tuple[int, int]]:
    size = max(1, -(-top // parts))
    return [(first, min(top, first + size - 1)) for first in range(1, top + 1, size)]


def verify_stores(stores: Mapping[str, Path], keys: Mapping[str, Ed25519PublicKey],
                  workers: int | None = None,
                  parallel_from_blocks: int = PARALLEL_FROM_BLOCKS) -> VerifyReport:
    """Verify node files (opened read-only); in ``workers`` processes (default: one per
    CPU) once the ledger has ``parallel_from_blocks`` blocks."""
    started = time.monotonic()
    nodes = _open(stores)
    try:
        top = top_height(nodes)
        workers = workers or os.cpu_count() or 1
        if workers < 2 or top < parallel_from_blocks:
            report = verify_nodes(nodes, keys, ORDERER, MAX_PROBLEMS)
            report.seconds = time.monotonic() - started
            return report
    finally:
        for node in nodes.values():
            node.close()
    report = VerifyReport(ok=True)
    paths = {org: str(path) for org, path in stores.items()}
    raw_keys = {name: _raw(key) for name, key in keys.items()}
    context = multiprocessing.get_context("spawn")  # the caller may run threads: no fork
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        jobs = [pool.submit(_verify_range, paths, raw_keys, first, last)
                for first, last in _ranges(top, workers * 4)]
        for job in jobs:
            problems, blocks, trades, records = job.result()
            report.problems += [Problem(*p) for p in problems]
            report.blocks += blocks
            report.trades += trades
            report.records_checked += records
    del report.problems[MAX_PROBLEMS:]
    report.ok = not report.problems
    report.seconds = time.monotonic() - started
    return report


def verify_data_dir(data_dir: str | os.PathLike[str], keys: Mapping[str, Ed25519PublicKey],
                    workers: int | None = None,
                    parallel_from_blocks: int = PARALLEL_FROM_BLOCKS,
                    checkpoints: Sequence[str] = ()) -> VerifyReport:
    """Verify the ledger under ``data_dir`` against pinned ``keys`` (``{"orderer": key, org:
    key, ...}`` from the trust file, never from the data) and the block hashes of an earlier
    verification (``checkpoints``, by height from 1), without starting an orderer or
    creating files (what ``tracepay ledger verify`` runs). Every organisation named in
    ``keys`` must have a node store; raises FileNotFoundError when there is none at all."""
    if ORDERER not in keys:
        raise ValueError("the pinned keys must include the orderer's")
    root = Path(data_dir)
    orgs = [signer for signer in keys if signer != ORDERER]
    stores = {org: root / org / STORE_NAME for org in orgs}
    if not any(path.exists() for path in stores.values()):
        raise FileNotFoundError(f"no ledger under {root}: expected {stores[orgs[0]]}")
    present = {org: path for org, path in stores.items() if path.exists()}
    report = verify_stores(present, keys, workers, parallel_from_blocks)
    anchored = _against_checkpoints(present, checkpoints)
    missing = [Problem(org, None, None, f"node store {path} is missing")
               for org, path in stores.items() if org not in present]
    if missing or anchored:
        report.problems[:0] = missing + anchored
        del report.problems[MAX_PROBLEMS:]
        report.ok = False
    return report


def verify_node_dirs(node_dirs: Mapping[str, str | os.PathLike[str]],
                     keys: Mapping[str, Ed25519PublicKey]) -> VerifyReport:
    """Verify organisation nodes' directories (``{org: DIR}`` of ``tracepay ledger-node``)
    against each node's pinned key (``keys[org]``, never the key file in DIR): each store
    on its own (hash chain, its own signatures, roots, records), and the stores against
    each other (same blocks, same roots). Read-only."""
    started = time.monotonic()
    missing = [org for org in node_dirs if org not in keys]
    if missing:
        raise ValueError(f"no pinned key for node(s) {missing}")
    nodes = _open({org: Path(path) / STORE_NAME for org, path in node_dirs.items()})
    try:
        report = verify_nodes(nodes, keys, ORDERER, MAX_PROBLEMS, own_signatures=True)
    finally:
        for node in nodes.values():
            node.close()
    report.seconds = time.monotonic() - started
    return report


def _against_checkpoints(stores: Mapping[str, Path], checkpoints: Sequence[str]) -> list[Problem]:
    """Per node, the first block that differs from a checkpoint or is gone: a history
    rewritten (even re-signed with the genuine keys) or rolled back since it was seen."""
    if not checkpoints:
        return []
    found = []
    nodes = _open(stores)
    try:
        for org, node in nodes.items():
            for height, expected in enumerate(checkpoints, start=1):
                row = node.block(height)
                if row is None:
                    found.append(Problem(org, height, None, f"block is missing but was "
                                         f"checkpointed ({len(checkpoints)} blocks seen "
                                         "before: rolled back)"))
                    break
                if row[1] != expected:
                    found.append(Problem(org, height, None, f"block differs from the "
                                         f"checkpointed block {expected[:16]}... (history "
                                         "rewritten since it was verified)"))
                    break
    finally:
        for node in nodes.values():
            node.close()
    return found


def block_hashes(stores: Mapping[str, Path]) -> list[str]:
    """The block hashes of the first node, by height from 1: after a clean verification
    every node holds the same ones, and they become the next checkpoints."""
    nodes = _open(dict(list(stores.items())[:1]))
    try:
        node = next(iter(nodes.values()))
        hashes = []
        for height in range(1, top_height(nodes) + 1):
            row = node.block(height)
            if row is None:
                raise LookupError(f"block {height} is missing from {node.path}: verify first")
            hashes.append(row[1])
        return hashes
    finally:
        for node in nodes.values():
            node.close()
