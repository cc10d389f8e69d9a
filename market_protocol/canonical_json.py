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


def _reject_floats(value: Any, path: str = "$") -> None:
    if isinstance(value, float):
        raise CanonicalJSONError(f"float at {path}: use integer minor units or grams")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalJSONError(f"non-string key {key!r} at {path}")
            _reject_floats(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _reject_floats(item, f"{path}[{index}]")


def dumps(value: Any) -> bytes:
    """Encode ``value`` canonically. Raises CanonicalJSONError for floats."""
    _reject_floats(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def loads(data: bytes | str) -> Any:
    """Decode JSON; raises ``orjson.JSONDecodeError`` (a ValueError) on malformed input."""
    return orjson.loads(data)
