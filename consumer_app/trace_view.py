"""Turn the bridge's trace answer into what a shopper reads: a farm → wholesale → stall timeline.

Pure: takes the JSON of ``GET /v1/trace/<code>`` (docs/protocol.md §7) and returns plain
dicts for the templates. The bridge's public view is read defensively -- a missing field
shows as blank rather than failing the page -- because a shopper at a stall is better
served by a partial trace than by an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["STAGES", "build_timeline", "collect_recalls", "collect_tests", "proof_rows",
           "published_keys", "format_quantity", "record_lines", "stock_rows"]

#: Supply-chain order of the organisations that sign the ledger.
STAGES = ("production_base", "wholesale_market", "retail_market")


def _first(mapping: Any, *keys: str, default: Any = None) -> Any:
    if not isinstance(mapping, Mapping):
        return default
    for key in keys:
        value = mapping.get(key)
        if value not in (None, ""):
            return value
    return default


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def format_quantity(grams: Any = None, pieces: Any = None) -> str:
    """``1250`` g -> ``'1.25 kg'``; ``350`` -> ``'350 g'``; pieces -> ``'3 ×'``. Integers only."""
    if isinstance(grams, int) and not isinstance(grams, bool):
        if grams >= 1000:
            whole, rest = divmod(grams, 1000)
            return f"{whole}.{rest:03d}".rstrip("0").rstrip(".") + " kg"
        return f"{grams} g"
    if isinstance(pieces, int) and not isinstance(pieces, bool):
        return f"{pieces} ×"
    return ""


def _seller(item: Mapping[str, Any]) -> Mapping[str, Any]:
    seller = _first(item, "seller", "party", "merchant", default={})
    return seller if isinstance(seller, Mapping) else {"name": str(seller)}


def record_lines(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The goods lines of a trade-like record, whether flat or nested under ``sale``."""
    lines = _dicts(_first(record, "lines", "items", default=None))
    if not lines:
        lines = _dicts(_first(_first(record, "sale", default={}), "lines", default=None))
    return [{
        "name": _first(line, "name", "product_name", "product", "product_code", default=""),
        "quantity_text": format_quantity(_first(line, "weight_g", "grams"),
                                         _first(line, "quantity", "pieces")),
        "origin": _first(line, "origin", "place", default=""),
        # The vendor's own lot label; the bridge's internal lot ids mean nothing to a shopper.
        "lot": _first(line, "lot", "lot_code", default=""),
        "amount_fen": _first(line, "amount_fen"),
    } for line in lines]


def _measure_text(item: Mapping[str, Any], field: str = "amount") -> str:
    amount = _first(item, field, "weight_g", "quantity")
    if _first(item, "measure") == "piece":
        return format_quantity(pieces=amount)
    return format_quantity(grams=amount)


def _tests_of(tests: list[Mapping[str, Any]], lot_ids: list[Any]) -> list[Mapping[str, Any]]:
    wanted = {lot_id for lot_id in lot_ids if lot_id}
    return [test for test in tests if test.get("lot_id") in wanted
            or wanted & set(test.get("lot_ids") or ())]


def _step(item: Mapping[str, Any], fallback_stage: str,
          extra_tests: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    seller = _seller(item)
    stage = _first(item, "org", "stage", default=None) or _first(seller, "org",
                                                                 default=fallback_stage)
    lines = record_lines(item)
    if not lines and _first(item, "name", "product", "product_name", "product_code"):
        lines = [{"name": _first(item, "name", "product_name", "product", "product_code",
                                 default=""),
                  "quantity_text": _measure_text(item),
                  "drawn_text": _measure_text(item, "drawn") if "drawn" in item else "",
                  "origin": _first(item, "origin", "place", default=""),
                  "lot": _first(item, "lot", "lot_id", "lot_code", default=""),
                  "amount_fen": None}]
    return {
        "stage": stage if stage in STAGES else "unknown",
        "seller": _first(seller, "name", "merchant_id", default=""),
        "place": _first(item, "place", "location", default="") or _first(
            seller, "place", "location", "address", default=""),
        "date_ms": _first(item, "sold_at_ms", "confirmed_at_ms", "at_ms", "time_ms",
                          "paid_at_ms", "received_at_ms", "created_at_ms"),
        "trace_code": _first(item, "trace_code", default=""),
        "trade_id": _first(item, "trade_id", default=None),
        "lines": lines,
        "tests": collect_tests([item, {"rapid_tests": list(extra_tests)}]),
    }


def build_timeline(trace: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Upstream links first (farm, then wholesale), the traced record itself last."""
    tests = _dicts(trace.get("rapid_tests"))
    steps = [_step(link, "unknown", _tests_of(tests, [link.get("lot_id")]))
             for link in _dicts(trace.get("chain"))]
    record = trace.get("record")
    if isinstance(record, Mapping):
        own = [line.get("lot_id") for line in _dicts(record.get("lines"))]
        steps.append(_step(record, "retail_market", _tests_of(tests, own)))
    rank = {stage: index for index, stage in enumerate(STAGES)}
    return sorted(_merge_by_trade(steps),
                  key=lambda s: (rank.get(s["stage"], len(STAGES)), s["date_ms"] or 0))


def _merge_by_trade(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One step per upstream sale: a farm's cabbage and tomato lines sold together are one
    event for the shopper, not two."""
    merged: dict[Any, dict[str, Any]] = {}
    for position, step in enumerate(steps):
        key = step.pop("trade_id") or ("#", position)
        if key in merged:
            merged[key]["lines"].extend(step["lines"])
            merged[key]["tests"].extend(t for t in step["tests"] if t not in merged[key]["tests"])
        else:
            merged[key] = step
    return list(merged.values())


def _test_row(test: Mapping[str, Any]) -> dict[str, Any]:
    result = str(_first(test, "result", "outcome", "status", default="")).lower()
    passed = _first(test, "passed", default=None)
    if isinstance(passed, bool):
        result = "pass" if passed else "fail"
    return {
        "lot": _first(test, "lot", "lot_id", "lot_code", default=""),
        "name": _first(test, "test", "name", "kind", "method", "analyte", default=""),
        "value": _values_text(_first(test, "value", "values", "reading", default="")),
        "result": "fail" if result in ("fail", "failed", "positive", "bad") else
                  ("pass" if result in ("pass", "passed", "negative", "ok") else result),
        "date_ms": _first(test, "tested_at_ms", "at_ms", "time_ms", "recorded_at_ms"),
        "inspector": _first(test, "inspector", "by", default=""),
    }


def _values_text(values: Any) -> str:
    """Test readings as one short line: ``{"pesticide_inhibition_pct": 62}`` -> ``'... 62'``."""
    if isinstance(values, Mapping):
        return ", ".join(f"{key} {value}" for key, value in values.items())
    if isinstance(values, list):
        return ", ".join(str(value) for value in values)
    return "" if values is None else str(values)


def collect_tests(items: Iterable[Any]) -> list[dict[str, Any]]:
    """Rapid-test results attached to any of ``items`` (links or the record itself)."""
    rows: list[dict[str, Any]] = []
    for item in items:
        for key in ("rapid_tests", "tests"):
            rows.extend(_test_row(test) for test in _dicts(_first(item, key)))
    return rows


def collect_recalls(trace: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Recalls named as the shopper knows the goods: product name and the vendor's lot label
    (looked up in the chain and the record), not the bridge's internal lot id."""
    known: dict[str, Mapping[str, Any]] = {}
    given = trace.get("record")
    record: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    for item in [*_dicts(trace.get("chain")), *_dicts(record.get("lines"))]:
        if isinstance(item.get("lot_id"), str):
            known.setdefault(item["lot_id"], item)
    rows = []
    for recall in _dicts(trace.get("recalls")):
        lot_id = _first(recall, "lot_id", default="")
        source = known.get(lot_id, {})
        rows.append({
            "lot": _first(source, "lot", default="") or _first(recall, "lot", "lot_id",
                                                                  "lot_code", default=""),
            "product": _first(recall, "product_name", "product", default="")
            or _first(source, "name", "product", default=""),
        "reason": _first(recall, "reason", "finding", "message", default="")
        or _values_text(_first(recall, "values", default="")),
        "date_ms": _first(recall, "tested_at_ms", "at_ms", "recalled_at_ms", "time_ms"),
        })
    return rows


def proof_rows(trace: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per inclusion proof: which record, and the block it sits in."""
    rows = []
    for proof in _dicts(trace.get("proofs")):
        block = _first(proof, "block", default={})
        header = _first(block, "header", default={})
        leaf = _first(proof, "leaf", default={})
        rows.append({
            "record_id": _first(leaf, "record_id", default=""),
            "kind": _first(leaf, "kind", default=""),
            "height": _first(header, "height"),
            "block_hash": _first(block, "block_hash", default=""),
            "merkle_root": _first(header, "merkle_root", default=""),
            "leaf_index": _first(proof, "leaf_index"),
            "tree_size": _first(proof, "tree_size"),
            "time_ms": _first(header, "time_ms"),
            "signers": [s.get("signer", "") for s in _dicts(_first(block, "signatures"))],
        })
    return rows


def published_keys(keys: Any) -> dict[str, str]:
    """``{signer: raw Ed25519 key, base64url}`` from the bridge's ``GET /v1/keys``.

    Accepts a flat ``{signer: key}`` map, nesting under ``keys``/``nodes`` (or
    ``node_keys``, as a trust file of organisation nodes has them), or per-signer
    objects carrying the raw key (``public_key_raw``, ``raw``, ``public_key``).
    """
    if not isinstance(keys, Mapping):
        return {}
    for wrapper in ("keys", "node_keys", "nodes", "public_keys"):
        if isinstance(keys.get(wrapper), Mapping):
            return published_keys(keys[wrapper])
        if isinstance(keys.get(wrapper), list):
            return published_keys({_first(item, "signer", "org", "name", default=""): item
                                   for item in _dicts(keys[wrapper])})
    found: dict[str, str] = {}
    for signer, value in keys.items():
        raw = value if isinstance(value, str) else _first(
            value, "public_key_raw", "raw", "public_key", "key", default=None)
        if isinstance(raw, str) and len(raw) == 43 and not raw.startswith("-----"):
            found[str(signer)] = raw
    return found


def stock_rows(stock: Any) -> list[dict[str, Any]]:
    """Rows of ``GET /v1/stalls/<id>/stock``: each lot on hand, who sold it, which farm."""
    lots = _first(stock, "lots", "stock", default=[]) if isinstance(stock, Mapping) else stock
    rows = []
    for lot in _dicts(lots):
        origins = _dicts(lot.get("origins"))
        farms = [_first(_first(o, "seller", default={}), "name", default="") for o in origins]
        places = [o["origin"] for o in origins if o.get("origin")]
        rows.append({
            "product": _first(lot, "name", "product_name", "product", default=""),
            "quantity_text": _measure_text(lot, "remaining"),
            "origin": ", ".join(dict.fromkeys(places)) or _first(lot, "origin", default=""),
            "farm": ", ".join(dict.fromkeys(f for f in farms if f)),
            "supplier": _first(_first(lot, "bought_from", "supplier", default={}), "name",
                               default=""),
            "lot": _first(lot, "label", "lot", "lot_id", default=""),
            "received_at_ms": _first(lot, "received_at_ms"),
            "tests": collect_tests([lot]),
            "recalled": bool(_dicts(lot.get("recalls"))) or lot.get("recalled") is True,
        })
    return rows
