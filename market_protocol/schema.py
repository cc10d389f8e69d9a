"""A tiny declarative record checker: clear reasons for bad input, no dependencies.

Each schema is a dict of field name -> ``Field``. ``check`` returns the record unchanged or
raises ``SchemaError`` naming the first bad field, so every service can answer bad input
with a 4xx that says exactly what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Field", "SchemaError", "check"]


class SchemaError(ValueError):
    """``path`` names the offending field, ``message`` says what was expected and found."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Field:
    kind: type | tuple[type, ...]
    required: bool = True
    nullable: bool = False
    minimum: int | None = None
    maximum: int | None = None
    pattern: str | None = None
    max_length: int | None = None
    choices: tuple[Any, ...] | None = None
    items: Mapping[str, Field] | Field | None = None
    min_items: int = 0
    max_items: int | None = None
    predicate: Callable[[Any], str | None] | None = field(default=None, compare=False)


def _type_ok(value: Any, kind: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool) and kind is not bool and not (
        isinstance(kind, tuple) and bool in kind
    ):
        return False
    return isinstance(value, kind)


def _check_value(spec: Field, value: Any, path: str) -> None:
    if value is None:
        if spec.nullable:
            return
        raise SchemaError(path, "must not be null")
    if not _type_ok(value, spec.kind):
        expected = getattr(spec.kind, "__name__", str(spec.kind))
        raise SchemaError(path, f"expected {expected}, found {type(value).__name__}")
    if spec.minimum is not None and value < spec.minimum:
        raise SchemaError(path, f"must be >= {spec.minimum}, found {value}")
    if spec.maximum is not None and value > spec.maximum:
        raise SchemaError(path, f"must be <= {spec.maximum}, found {value}")
    if spec.max_length is not None and len(value) > spec.max_length:
        raise SchemaError(path, f"longer than {spec.max_length}")
    if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
        raise SchemaError(path, f"does not match {spec.pattern}")
    if spec.choices is not None and value not in spec.choices:
        raise SchemaError(path, f"must be one of {list(spec.choices)}, found {value!r}")
    if isinstance(value, list):
        if len(value) < spec.min_items:
            raise SchemaError(path, f"needs at least {spec.min_items} item(s)")
        if spec.max_items is not None and len(value) > spec.max_items:
            raise SchemaError(path, f"has more than {spec.max_items} items")
        for index, item in enumerate(value):
            _check_nested(spec.items, item, f"{path}[{index}]")
    elif isinstance(value, dict) and spec.items is not None:
        _check_nested(spec.items, value, path)
    if spec.predicate is not None:
        problem = spec.predicate(value)
        if problem:
            raise SchemaError(path, problem)


def _check_nested(items: Mapping[str, Field] | Field | None, value: Any, path: str) -> None:
    if items is None:
        return
    if isinstance(items, Field):
        _check_value(items, value, path)
    else:
        check(items, value, path)


def check(schema: Mapping[str, Field], record: Any, path: str = "$") -> Any:
    """Validate ``record`` against ``schema``; unknown fields are refused."""
    if not isinstance(record, dict):
        raise SchemaError(path, f"expected an object, found {type(record).__name__}")
    for name, spec in schema.items():
        if name not in record:
            if spec.required:
                raise SchemaError(f"{path}.{name}", "is required")
            continue
        _check_value(spec, record[name], f"{path}.{name}")
    unknown = sorted(set(record) - set(schema))
    if unknown:
        raise SchemaError(f"{path}.{unknown[0]}", "is not a known field")
    return record
