"""Canonical JSON: the one byte form that is hashed, MACed and signed.

Every party that hashes or signs a record must produce the same bytes for it, so the
encoding is fixed: keys sorted, no insignificant whitespace, UTF-8, and no floats
(money and weights are integers; a float would make the bytes platform dependent).
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["dumps", "loads", "CanonicalJSONError"]


class CanonicalJSONError(ValueError):
    """Raised when a value cannot be put in canonical form (floats, non-string keys, ...)."""


_SCALARS = frozenset({str, int, bool, type(None)})


def _contains_float(value: Any) -> bool:
    """Fast test on the hot path: one type check per string or integer, recursion only
    into containers. Subclasses of dict, list and tuple are searched too (the encoder
    writes them as their base types); they leave the fast path, which is for plain ones.

    (Measured against a stack-based walk, a pre-check of each container's item types
    and an inlined second level: this plain recursion was the fastest on trade records.)
    """
    kind = type(value)
    if kind is dict:
        items = value.values()
    elif kind is list or kind is tuple:
        items = value
    elif kind in _SCALARS:
        return False
    elif isinstance(value, float):
        return True
    elif isinstance(value, dict):
        items = value.values()
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        return False
    for item in items:  # noqa: SIM110 - a plain loop beats any() over a generator here
        if type(item) not in _SCALARS and _contains_float(item):
            return True
    return False


def _float_path(value: Any, path: str = "$") -> str | None:
    """Where the first float is, for the error message (only called once one exists)."""
    if isinstance(value, float):
        return path
    if isinstance(value, dict):
        pairs = ((f"{path}.{key}", item) for key, item in value.items())
    elif isinstance(value, (list, tuple)):
        pairs = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    else:
        return None
    for item_path, item in pairs:
        found = _float_path(item, item_path)
        if found:
            return found
    return None


def dumps(value: Any) -> bytes:
    """Encode ``value`` canonically. Raises CanonicalJSONError for floats and non-string keys."""
    if _contains_float(value):
        raise CanonicalJSONError(f"float at {_float_path(value)}: use integer minor units or grams")
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        raise CanonicalJSONError(f"not canonical JSON: {exc}") from exc


def loads(data: bytes | str) -> Any:
    """Decode JSON; raises ``orjson.JSONDecodeError`` (a ValueError) on malformed input."""
    return orjson.loads(data)
