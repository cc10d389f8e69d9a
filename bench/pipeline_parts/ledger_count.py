"""Counting trades on the ledger itself: every node's blocks, leaf by leaf.

``bench/pipeline.py`` checks ``lost`` and ``duplicated`` here rather than trusting any
counter: each node's store is opened read-only and every leaf of every block is read; a
paid sale whose trade is on no leaf of a node is lost at that node, a trade id on more
than one leaf is duplicated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import Any

from trace_ledger.node_store import STORE_NAME, NodeStore

__all__ = ["count_trades_on_ledger"]


def _trade_leaves(store: NodeStore) -> Counter[str]:
    """How many leaves of kind ``trade`` each record id has on this node."""
    counts: Counter[str] = Counter()
    for height, _header in store.block_headers():
        row = store.block(height)
        if row is None:
            continue
        for leaf in store.block_leaves(height, row[4]):
            if leaf[2] == "trade":
                counts[leaf[1]] += 1
    return counts


def count_trades_on_ledger(bridge_dir: Path, expected: Collection[str]) -> dict[str, Any]:
    """Per node: trade leaves, distinct trades, expected trades missing, trades on more
    than one leaf; ``lost``/``duplicated`` are the worst node's."""
    nodes: dict[str, dict[str, int]] = {}
    for path in sorted((bridge_dir / "ledger").glob(f"*/{STORE_NAME}")):
        store = NodeStore(path.parent.name, path, readonly=True)
        try:
            counts = _trade_leaves(store)
        finally:
            store.close()
        nodes[path.parent.name] = {
            "trade_leaves": sum(counts.values()), "distinct_trades": len(counts),
            "lost": sum(1 for trade_id in expected if trade_id not in counts),
            "duplicated": sum(n - 1 for n in counts.values() if n > 1)}
    if not nodes:
        raise FileNotFoundError(f"no ledger node stores under {bridge_dir / 'ledger'}")
    return {"expected": len(expected), "nodes": nodes,
            "lost": max(node["lost"] for node in nodes.values()),
            "duplicated": max(node["duplicated"] for node in nodes.values())}
