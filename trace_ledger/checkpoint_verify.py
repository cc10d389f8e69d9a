"""Verifying one organisation node's directory against a cosigned checkpoint.

The node's own checks (hash chain, its signatures under its pinned key, roots, records)
cannot catch an insider who rewrote the store consistently and re-signed it with the
node's own key. The cosigned checkpoint can: its root over the first N block hashes was
signed by the quorum of organisations before, so a store whose first N block hashes give
another root was changed. The first differing block is then found against any other node
(its read API): each block hash it serves comes with an inclusion proof that is checked
against the cosigned root, so the other node need not be trusted either. Block hashes
chain (each header holds the previous hash), so the blocks that differ are a suffix and a
binary search over ``log2 N`` proofs names the first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from market_protocol import merkle
from market_protocol.signed_note import NoteError

from .cosigned import CheckpointTrust, Cosigned, check_cosigned, checkpoint_for
from .node_store import STORE_NAME, NodeStore
from .verify_jobs import verify_node_dirs

__all__ = ["verify_node_against_checkpoint", "verify_nodes_against_checkpoint",
           "store_block_hashes", "first_differing_block"]


def store_block_hashes(store_path: Path, org: str) -> list[bytes]:
    """The block hashes of a node store as its node computes them (SHA-256 of each stored
    canonical header), by height from 1."""
    store = NodeStore(org, store_path, readonly=True)
    try:
        return [hashlib.sha256(text.encode()).digest() for _, text in store.block_headers()]
    finally:
        store.close()


class _Proven:
    """Genuine block hashes read from other nodes, each proven against the cosigned root."""

    def __init__(self, urls: Sequence[str], size: int, root: bytes, timeout_s: float) -> None:
        self.urls, self.size, self.root, self.timeout_s = list(urls), size, root, timeout_s
        self.session = requests.Session()
        self.refused: list[str] = []

    def at(self, height: int) -> bytes:
        for url in list(self.urls):
            try:
                answer = self.session.get(f"{url.rstrip('/')}/v1/block-proof/{height}",
                                          params={"size": self.size}, timeout=self.timeout_s)
                found = answer.json()
                digest = bytes.fromhex(found["block_hash"])
                proof = [bytes.fromhex(h) for h in found["proof"]]
            except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
                self.refused.append(f"{url}: block {height}: {type(exc).__name__}")
                self.urls.remove(url)
                continue
            if merkle.verify_inclusion(height - 1, self.size, merkle.leaf_hash(digest), proof,
                                       self.root):
                return digest
            self.refused.append(f"{url}: block {height} is not in the cosigned tree")
            self.urls.remove(url)
        raise LookupError("no node proved its block hashes against the cosigned root")


def first_differing_block(local: Sequence[bytes], genuine: Any, size: int) -> int:
    """The first height in 1..size whose local hash is not the genuine one (``genuine(h)``),
    by binary search: the hashes chain, so once one differs every later one does.
    Precondition: some height differs."""
    low, high = 1, size
    while low < high:
        middle = (low + high) // 2
        if local[middle - 1] == genuine(middle):
            low = middle + 1
        else:
            high = middle
    return low


def verify_nodes_against_checkpoint(node_dirs: Mapping[str, Path],
                                    keys: Mapping[str, Ed25519PublicKey],
                                    trust: CheckpointTrust, note: str,
                                    reference_urls: Sequence[str] = ()) -> dict[str, Any]:
    """Several node directories against one checkpoint: each as
    :func:`verify_node_against_checkpoint`, and a directory whose first N block hashes
    give the cosigned root (so every one of them is genuine) names the first differing
    block of the others without asking any node."""
    try:
        cosigned: Cosigned | None = check_cosigned(note, trust)
    except NoteError:
        cosigned = None  # each report below says why
    genuine = []
    for org, directory in node_dirs.items():
        if cosigned is None:
            break
        size = cosigned.checkpoint.size
        hashes = store_block_hashes(Path(directory) / STORE_NAME, org)[:size]
        if len(hashes) == size and checkpoint_for(
                trust.origin, hashes).root_hash == cosigned.checkpoint.root_hash:
            genuine.append(hashes)
    reports = [verify_node_against_checkpoint(org, Path(directory), keys[org], trust, note,
                                              reference_urls, genuine=genuine[:1])
               for org, directory in node_dirs.items()]
    first = next((r["first_problem"] for r in reports if not r["ok"]), None)
    return {"ok": all(r["ok"] for r in reports), "anchored": True,
            "checkpoint": cosigned.to_dict() if cosigned else None,
            "first_problem": first, "nodes": reports}


def verify_node_against_checkpoint(org: str, node_dir: Path, key: Ed25519PublicKey,
                                   trust: CheckpointTrust, note: str,
                                   reference_urls: Sequence[str] = (),
                                   timeout_s: float = 5.0,
                                   genuine: Sequence[Sequence[bytes]] = ()) -> dict[str, Any]:
    """The JSON report of ``tracepay ledger verify --node ORG=DIR --checkpoint FILE``.
    ``genuine``: block hash lists already proven to give the cosigned root."""
    problems: list[dict[str, Any]] = []
    result: dict[str, Any] = {"anchored": True, "node": org, "checkpoint": None,
                              "first_differing_block": None}
    try:
        cosigned: Cosigned | None = check_cosigned(note, trust)
    except NoteError as exc:
        cosigned = None
        problems.append({"node": org, "height": None, "record_id": None,
                         "what": f"the checkpoint note does not verify: {exc}"})
    if cosigned is not None:
        result["checkpoint"] = cosigned.to_dict()
        if not cosigned.final:
            problems.append({"node": org, "height": None, "record_id": None,
                             "what": f"the checkpoint is not final: signed by "
                                     f"{cosigned.signed_by} and witnesses "
                                     f"{cosigned.witnessed_by}; the trust file needs "
                                     f"{trust.quorum} organisations and "
                                     f"{trust.witness_quorum} witnesses"})
    own = verify_node_dirs({org: node_dir}, {org: key})
    result.update({"blocks": own.blocks, "trades": own.trades,
                   "records_checked": own.records_checked})
    problems += [{"node": p.node, "height": p.height, "record_id": p.record_id,
                  "what": p.what} for p in own.problems]
    if cosigned is not None:
        problems += _against(org, node_dir, cosigned, reference_urls, timeout_s, result,
                             genuine)
    result["ok"] = not problems
    result["problems"] = problems
    first = problems[0] if problems else None
    result["first_problem"] = None if first is None else (
        f"node {first['node']}" + (f", block {first['height']}" if first["height"] else "")
        + f": {first['what']}")
    return result


def _against(org: str, node_dir: Path, cosigned: Cosigned, reference_urls: Sequence[str],
             timeout_s: float, result: dict[str, Any],
             genuine: Sequence[Sequence[bytes]]) -> list[dict[str, Any]]:
    size, root = cosigned.checkpoint.size, cosigned.checkpoint.root_hash
    local = store_block_hashes(node_dir / STORE_NAME, org)
    if len(local) < size:
        return [{"node": org, "height": len(local) + 1, "record_id": None,
                 "what": f"the store holds {len(local)} blocks; the cosigned checkpoint has "
                         f"{size} (blocks removed or never stored)"}]
    if checkpoint_for(cosigned.checkpoint.origin, local[:size]).root_hash == root:
        return []
    what = (f"its first {size} block hashes do not give the cosigned root "
            f"{root.hex()[:16]}... (the store was rewritten)")
    refused: list[str] = []
    if genuine:
        reference = genuine[0]

        def at(height: int) -> bytes:
            return reference[height - 1]
    elif reference_urls:
        proven = _Proven(reference_urls, size, root, timeout_s)
        at, refused = proven.at, proven.refused
    else:
        return [{"node": org, "height": None, "record_id": None,
                 "what": what + "; give --nodes to name the first differing block"}]
    try:
        height = first_differing_block(local, at, size)
    except LookupError as exc:
        return [{"node": org, "height": None, "record_id": None,
                 "what": f"{what}; {exc} ({'; '.join(refused)})"}]
    result["first_differing_block"] = height
    return [{"node": org, "height": height, "record_id": None,
             "what": f"block differs from the block {at(height).hex()[:16]}... "
                     f"under the cosigned checkpoint (size {size}): the store was "
                     "rewritten from here"}]
