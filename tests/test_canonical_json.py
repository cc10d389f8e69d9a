"""Canonical JSON refuses every float, wherever it hides, and names where it is."""

from __future__ import annotations

import math
import re
from collections import OrderedDict

import pytest

from market_protocol import canonical_json
from market_protocol.canonical_json import CanonicalJSONError


class Price(float):
    pass


class Lines(list):
    pass


class Pair(tuple):
    pass


@pytest.mark.parametrize(("value", "path"), [
    (1.5, "$"),
    ({"w": 2.0}, "$.w"),
    ({"a": [1, {"b": [2, 0.0]}]}, r"$.a[1].b[1]"),
    ({"t": (1, float("nan"))}, "$.t[1]"),
    ({"t": [float("inf")]}, "$.t[0]"),
    ({"t": [-math.inf]}, "$.t[0]"),
    ({"z": -0.0}, "$.z"),
    ({"p": Price(3)}, "$.p"),
    ({"d": OrderedDict(x=1, y=1e300)}, "$.d.y"),
    ({"l": Lines([1, 2, 3.25])}, "$.l[2]"),
    ({"p": Pair((0, (1, [0.5])))}, "$.p[1][1][0]"),
    ([[[[[[[1e-9]]]]]]], "$[0][0][0][0][0][0][0]"),
    (OrderedDict(a=[Price(1)]), "$.a[0]"),
])
def test_every_float_is_refused_with_its_path(value, path):
    with pytest.raises(CanonicalJSONError, match=re.escape(f"float at {path}:")):
        canonical_json.dumps(value)


@pytest.mark.parametrize("value", [{1: "a"}, {"a": {2: "b"}}, {(1, 2): 3}, {"s": {1, 2}},
                                   {"b": b"bytes"}, {"o": object()}, [{None: 1}]])
def test_non_string_keys_and_other_types_are_refused(value):
    with pytest.raises(CanonicalJSONError, match="not canonical JSON"):
        canonical_json.dumps(value)


def test_integers_strings_and_containers_encode_sorted_and_compact():
    value = {"z": [1, (2, 3), {"b": None, "a": True}], "é": "菜", "n": -(2**63), "f": False,
             "o": OrderedDict(y=1, x=2), "l": Lines(["q"])}
    assert canonical_json.dumps(value) == (
        '{"f":false,"l":["q"],"n":-9223372036854775808,"o":{"x":2,"y":1},'
        '"z":[1,[2,3],{"a":true,"b":null}],"é":"菜"}').encode()
    assert canonical_json.dumps([]) == b"[]" and canonical_json.dumps("x") == b'"x"'
