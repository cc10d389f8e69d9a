"""Compare a Flask app's routes with its OpenAPI document, operation by operation.

Each service writes its OpenAPI document by hand (descriptions, schemas and examples a
generator cannot know), so a test holds the two together instead: every routed
(method, path) is documented and every documented one is routed. Paths compare in
OpenAPI's spelling (``/v1/orders/{order_id}``); HEAD and OPTIONS, which Flask adds on its
own, are left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["routed_operations", "documented_operations", "undocumented_and_unrouted"]

_METHODS = frozenset({"get", "put", "post", "delete", "patch"})
_CONVERTER = re.compile(r"<(?:[^:>]+:)?([^>]+)>")


def routed_operations(rules: Iterable[Any], *, ignore: Iterable[str] = ("static",)
                      ) -> set[tuple[str, str]]:
    """``(method, path)`` of each rule of ``app.url_map.iter_rules()``."""
    skipped = set(ignore)
    return {(method.lower(), _CONVERTER.sub(r"{\1}", rule.rule))
            for rule in rules if rule.endpoint not in skipped
            for method in rule.methods or () if method.lower() in _METHODS}


def documented_operations(document: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in document.get("paths", {}).items()
            for method in item if method in _METHODS}


def undocumented_and_unrouted(rules: Iterable[Any], document: Mapping[str, Any]
                              ) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(routed but not documented, documented but not routed)."""
    routed, documented = routed_operations(rules), documented_operations(document)
    return routed - documented, documented - routed
