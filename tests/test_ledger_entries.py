"""LedgerEntry.check: every rule refuses with a message naming the field, and an entry
that passes yields exactly the shared canonical bytes of its record."""

from __future__ import annotations

import pytest

from market_protocol import ORGS, canonical_json
from trace_ledger.entries import (
    MAX_KEY_LENGTH,
    MAX_TRACE_KEYS,
    LedgerEntry,
    LedgerEntryError,
    canonical_record,
)

RECORD = {"b": [1, {"z": None, "a": True}], "a": "é", "n": -(2**62)}


def test_a_good_entry_yields_the_shared_canonical_bytes():
    body = LedgerEntry("trade", "dev1.2.s3/x:y-z_", RECORD, ["k"] * 3, (ORGS[0],)).check()
    assert type(body) is bytes
    assert body == canonical_json.dumps(RECORD) == canonical_record(RECORD)
    assert body.startswith(b'{"a":"\xc3\xa9","b":')
    limits = LedgerEntry("a" * 32, "r" * 128, {}, ["x" * MAX_KEY_LENGTH] * MAX_TRACE_KEYS, ())
    assert limits.check() == b"{}"


@pytest.mark.parametrize(("fields", "message"), [
    ({"kind": "Trade"}, "kind 'Trade'"),
    ({"kind": "a" * 33}, "kind"),
    ({"kind": ""}, "kind"),
    ({"kind": b"trade"}, "kind"),
    ({"kind": "trade\n"}, "kind"),
    ({"record_id": ""}, "record_id"),
    ({"record_id": "r" * 129}, "record_id"),
    ({"record_id": "-leading"}, "record_id"),
    ({"record_id": "has space"}, "record_id"),
    ({"record_id": 7}, "record_id"),
    ({"trace_keys": "k"}, "trace_keys must be a list"),
    ({"trace_keys": {"k"}}, "trace_keys must be a list"),
    ({"trace_keys": ["k"] * (MAX_TRACE_KEYS + 1)}, "at most 64 strings"),
    ({"trace_keys": ["k", ""]}, "trace key '' must be a non-empty"),
    ({"trace_keys": ["x" * (MAX_KEY_LENGTH + 1)]}, "at most 256 characters"),
    ({"trace_keys": ["k", 5]}, "trace key 5"),
    ({"trace_keys": [None]}, "trace key None"),
    ({"trace_keys": ["ok", "lot-\ud800"]}, r"trace key 'lot-\\ud800' is not valid Unicode"),
    ({"visible_to": ("retail_market", "bank")}, r"unknown orgs \['bank'\]"),
    ({"visible_to": [["retail_market"]]}, "unknown orgs"),
    ({"record": [1, 2]}, "record must be a JSON object"),
    ({"record": None}, "record must be a JSON object"),
    ({"record": {"w": 1.5}}, r"not canonical JSON: float at \$\.w"),
    ({"record": {"a": [{"b": (1, float("inf"))}]}}, r"float at \$\.a\[0\]\.b\[1\]"),
    ({"record": {1: "x"}}, "not canonical JSON"),
    ({"record": {"a": "\ud800"}}, "not canonical JSON"),
    ({"record": {"s": {1, 2}}}, "not canonical JSON"),
])
def test_each_rule_refuses_with_a_message_naming_the_field(fields, message):
    values = {"kind": "trade", "record_id": "r1", "record": {"ok": 1},
              "trace_keys": ["k"], "visible_to": None, **fields}
    with pytest.raises(LedgerEntryError, match=message):
        LedgerEntry(**values).check()


def test_an_entry_that_passes_check_can_be_cut_into_a_block():
    from trace_ledger.block_builder import BlockBuild, Queued, record_id_digest

    entry = LedgerEntry("trade", "r1", {"a": "\u00e9\U0001f96c"}, ["\U0001f96c", "\u00e9", "k"])
    block = BlockBuild([Queued(entry, entry.check(), record_id_digest("r1"))], 1, 0, "00" * 32)
    assert block.header["count"] == 1
