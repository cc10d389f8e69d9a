"""Turn the bridge's trace answer into what a shopper reads: a farm → wholesale → stall timeline.

Pure: takes the JSON of ``GET /v1/trace/<code>`` (docs/protocol.md §7) and returns plain
dicts for the templates. The bridge's public view is read defensively -- a missing field
shows as blank rather than failing the page -- because a shopper at a stall is better
served by a partial trace than by an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["STAGES", "build_timeline", "collect_recalls", "collect_tests", "proof_rows",
           "published_keys", "format_quantity", "record_lines"]

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


def _dicts(value: Any) -> list[dict[str, Any]]:
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
        "lot": _first(line, "lot", "lot_id", "lot_code", default=""),
        "amount_fen": _first(line, "amount_fen"),
    } for line in lines]


def _measure_text(item: Mapping[str, Any], field: str = "amount") -> str:
    amount = _first(item, field, "weight_g", "quantity")
    if _first(item, "measure") == "piece":
        return format_quantity(pieces=amount)
    return format_quantity(grams=amount)


def _step(item: Mapping[str, Any], fallback_stage: str) -> dict[str, Any]:
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
        "lines": lines,
        "tests": collect_tests([item]),
    }


def build_timeline(trace: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Upstream links first (farm, then wholesale), the traced record itself last."""
    steps = [_step(link, "unknown") for link in _dicts(trace.get("chain"))]
    record = trace.get("record")
    if isinstance(record, Mapping):
        steps.append(_step(record, "retail_market"))
    rank = {stage: index for index, stage in enumerate(STAGES)}
    return sorted(steps, key=lambda s: (rank.get(s["stage"], len(STAGES)), s["date_ms"] or 0))


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
    rows = []
    for item in items:
        for key in ("rapid_tests", "tests"):
            rows.extend(_test_row(test) for test in _dicts(_first(item, key)))
    return rows


def collect_recalls(trace: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{
        "lot": _first(recall, "lot", "lot_id", "lot_code", default=""),
        "product": _first(recall, "product_name", "product", default=""),
        "reason": _first(recall, "reason", "finding", "message", default="")
        or _values_text(_first(recall, "values", default="")),
        "date_ms": _first(recall, "tested_at_ms", "at_ms", "recalled_at_ms", "time_ms"),
    } for recall in _dicts(trace.get("recalls"))]


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

    Accepts a flat ``{signer: key}`` map, nesting under ``keys``/``nodes``, or per-signer
    objects carrying the raw key (``public_key_raw``, ``raw``, ``public_key``).
    """
    if not isinstance(keys, Mapping):
        return {}
    for wrapper in ("keys", "nodes", "public_keys"):
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
