"""Backward and forward traces over the allocation graph, and the recalls they imply.

Backward: a sale line drew on lots its seller bought; those purchase lines drew on lots the
upstream seller bought; and so on to the production base. Forward: a lot fed sale lines; a
sale to a business became that business's lot, which fed its sales; and so on to shoppers.
Every link carries the quantity that moved, so the figures of each layer add up:
for any lot, Σ drawn by its sales + remaining on hand = its amount.

The walk is iterative with a visited set, so neither deep chains nor a corrupt cycle can
blow the stack or loop.
"""

from __future__ import annotations

import csv
import io
from collections import deque
from collections.abc import Iterable
from typing import Any, Protocol

__all__ = ["backward", "forward", "recalls_for", "recall_csv", "RECALL_COLUMNS", "MAX_DEPTH"]

MAX_DEPTH = 64


class GraphReader(Protocol):
    def line(self, lot_id: str) -> dict[str, Any] | None: ...
    def trade(self, trade_id: str) -> dict[str, Any] | None: ...
    def draws_of(self, lot_id: str) -> list[dict[str, Any]]: ...
    def draws_from(self, source_lot_id: str) -> list[dict[str, Any]]: ...
    def allocation(self, lot_id: str) -> dict[str, Any] | None: ...
    def rapid_tests(self, lot_ids: Iterable[str]) -> list[dict[str, Any]]: ...


def _party(trade: dict[str, Any], side: str) -> dict[str, Any]:
    party = trade[side]
    if "merchant_id" in party:
        return {"merchant_id": party["merchant_id"], "name": party["name"], "org": party["org"]}
    return {"kind": "shopper"}


def _link(store: GraphReader, lot_id: str, depth: int, **extra: Any) -> dict[str, Any] | None:
    line = store.line(lot_id)
    if line is None:
        return None
    trade = store.trade(line["trade_id"])
    if trade is None:
        return None
    public_line = trade["lines"][line["line"]]
    allocation = store.allocation(lot_id)
    return {
        "depth": depth, "lot_id": lot_id, "trade_id": trade["trade_id"],
        "trace_code": trade["trace_code"], "sold_at_ms": trade["sold_at_ms"],
        "seller": _party(trade, "seller"), "buyer": _party(trade, "buyer"),
        "product": line["product"], "name": public_line["name"], "measure": line["measure"],
        "amount": line["amount"], "remaining": line["remaining"], "lot": line["label"],
        "origin": line["origin"],
        "unmatched": allocation["unmatched"] if allocation else None, **extra,
    }


def backward(store: GraphReader, lot_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Upstream links of the given sale lines, depth first, each with ``drawn`` (the amount
    of that upstream lot the downstream line ``for_lot_id`` took)."""
    links: list[dict[str, Any]] = []
    stack = [(lot_id, 0) for lot_id in reversed(list(lot_ids))]
    seen: set[tuple[str, str]] = set()
    while stack:
        lot_id, depth = stack.pop()
        if depth >= MAX_DEPTH:
            continue
        for draw in reversed(store.draws_of(lot_id)):
            edge = (lot_id, draw["source_lot_id"])
            if edge in seen:
                continue
            seen.add(edge)
            link = _link(store, draw["source_lot_id"], depth + 1, for_lot_id=lot_id,
                         drawn=draw["amount"])
            if link is not None:
                links.append(link)
                stack.append((draw["source_lot_id"], depth + 1))
    links.sort(key=lambda link: (link["depth"], link["for_lot_id"], link["lot_id"]))
    return links


def forward(store: GraphReader, lot_ids: Iterable[str]) -> dict[str, Any]:
    """Every downstream sale line of the given lots, with the amount each drew and, for
    each lot on the way, how much of it is still on hand."""
    rows: list[dict[str, Any]] = []
    lots: dict[str, dict[str, Any]] = {}
    frontier = deque((lot_id, 0) for lot_id in lot_ids)
    seen: set[str] = set()
    while frontier:
        lot_id, depth = frontier.popleft()
        if lot_id in seen or depth >= MAX_DEPTH:
            continue
        seen.add(lot_id)
        here = _link(store, lot_id, depth)
        if here is None:
            continue
        draws = store.draws_from(lot_id)
        lots[lot_id] = {"lot_id": lot_id, "holder": here["buyer"], "product": here["product"],
                        "measure": here["measure"], "amount": here["amount"],
                        "drawn": sum(d["amount"] for d in draws),
                        "remaining": here["remaining"]}
        for draw in draws:
            link = _link(store, draw["lot_id"], depth + 1, from_lot_id=lot_id,
                         drawn=draw["amount"])
            if link is None:
                continue
            rows.append(link)
            if "merchant_id" in link["buyer"]:
                frontier.append((draw["lot_id"], depth + 1))
    return {"lots": list(lots.values()), "sales": rows}


def recalls_for(store: GraphReader, lot_ids: Iterable[str],
                upstream: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Failed rapid tests on the sale's own lots or any lot upstream of them."""
    involved = list(dict.fromkeys([*lot_ids, *(link["lot_id"] for link in upstream)]))
    return [{"lot_id": test["lot_id"], "test_id": test["test_id"], "result": test["result"],
             "values": test["values"], "inspector": test["inspector"],
             "tested_at_ms": test["tested_at_ms"], "reason": test.get("note")}
            for test in store.rapid_tests(involved) if test["result"] == "fail"]


RECALL_COLUMNS = ("depth", "from_lot_id", "lot_id", "trace_code", "sold_at_ms",
                  "seller_id", "seller_name", "buyer_id", "buyer_name", "product", "measure",
                  "drawn", "line_amount")


def recall_csv(sales: Iterable[dict[str, Any]], sort_by: str = "depth") -> str:
    """The regulator's recall list: one row per downstream sale line, sortable by column."""
    if sort_by not in RECALL_COLUMNS:
        raise ValueError(f"sort must be one of {', '.join(RECALL_COLUMNS)}")
    rows = [{
        "depth": sale["depth"], "from_lot_id": sale["from_lot_id"], "lot_id": sale["lot_id"],
        "trace_code": sale["trace_code"], "sold_at_ms": sale["sold_at_ms"],
        "seller_id": sale["seller"]["merchant_id"], "seller_name": sale["seller"]["name"],
        "buyer_id": sale["buyer"].get("merchant_id", ""),
        "buyer_name": sale["buyer"].get("name", "shopper"), "product": sale["product"],
        "measure": sale["measure"], "drawn": sale["drawn"], "line_amount": sale["amount"],
    } for sale in sales]
    rows.sort(key=lambda row: (row[sort_by], row["depth"], row["lot_id"]))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=RECALL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
