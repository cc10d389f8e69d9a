"""The stream's batch format: known answers, round trips and malformed bodies."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from trace_ledger import LedgerEntry
from trace_ledger.stream import (
    BATCH_SCHEMA,
    DUPLICATE_WINDOW_S,
    STREAM,
    SUBJECT_PREFIX,
    BatchFormatError,
    batch_body,
    parse_batch,
    stream_config,
)

ENTRIES = [
    LedgerEntry("trade", "t-1", {"amount_fen": 1250, "lot": "L1"}, ["tc1", "m1"], None),
    LedgerEntry("trade_private", "t-1/p", {"payer": "x"}, ["tc1"],
                ("wholesale_market", "retail_market")),
]
#: The canonical entry list written out by hand: keys sorted, no spaces.
CANONICAL_ENTRIES = (
    b'[{"kind":"trade","record":{"amount_fen":1250,"lot":"L1"},"record_id":"t-1",'
    b'"trace_keys":["tc1","m1"],"visible_to":null},'
    b'{"kind":"trade_private","record":{"payer":"x"},"record_id":"t-1/p",'
    b'"trace_keys":["tc1"],"visible_to":["wholesale_market","retail_market"]}]')
KNOWN_ID = "b1:4542edbed5a82f8c993ef109dcbf2a7430ab8698c6ff25e6cd4c86b7a06c6f76"


def test_constants_are_the_agreed_ones():
    assert STREAM == "LEDGER"
    assert SUBJECT_PREFIX == "ledger.tx."
    assert BATCH_SCHEMA == "tracepay.ledger_batch/1"
    assert DUPLICATE_WINDOW_S == 600


def test_batch_id_is_the_sha256_of_the_canonical_entries():
    assert "b1:" + hashlib.sha256(CANONICAL_ENTRIES).hexdigest() == KNOWN_ID
    batch_id, body = batch_body(ENTRIES)
    assert batch_id == KNOWN_ID
    assert body == (b'{"schema":"tracepay.ledger_batch/1","batch_id":"' + KNOWN_ID.encode()
                    + b'","entries":' + CANONICAL_ENTRIES + b"}")


def test_round_trip_gives_the_same_entries_and_id():
    batch_id, body = batch_body(ENTRIES)
    assert parse_batch(body) == (batch_id, ENTRIES)


def test_the_same_entries_make_the_same_id_and_order_matters():
    assert batch_body(list(ENTRIES))[0] == batch_body(ENTRIES)[0]
    assert batch_body(ENTRIES[::-1])[0] != batch_body(ENTRIES)[0]
    changed = [ENTRIES[0], LedgerEntry("trade_private", "t-1/p", {"payer": "y"}, ["tc1"],
                                       ("wholesale_market", "retail_market"))]
    assert batch_body(changed)[0] != KNOWN_ID


def test_body_member_order_does_not_matter_to_the_reader():
    batch_id, body = batch_body(ENTRIES)
    document = orjson.loads(body)
    reordered = orjson.dumps({"entries": document["entries"], "batch_id": batch_id,
                              "schema": BATCH_SCHEMA})
    assert parse_batch(reordered) == (batch_id, ENTRIES)


def test_an_empty_batch_or_a_float_cannot_be_published():
    with pytest.raises(BatchFormatError, match="at least one entry"):
        batch_body([])
    with pytest.raises(BatchFormatError, match="canonical"):
        batch_body([LedgerEntry("trade", "t-2", {"weight": 1.5}, [], None)])


def _body(**changes):
    document = orjson.loads(batch_body(ENTRIES)[1])
    document.update(changes)
    return orjson.dumps(document)


def _entry_body(**changes):
    document = orjson.loads(batch_body(ENTRIES)[1])
    document["entries"][0].update(changes)
    return orjson.dumps(document)


@pytest.mark.parametrize("body, message", [
    (b"", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (_body(schema="tracepay.ledger_batch/2"), "schema"),
    (_body(batch_id=42), "batch_id"),
    (_body(batch_id="sha:" + "0" * 64), "batch_id"),
    (_body(entries=[]), "non-empty list"),
    (_body(entries={"kind": "trade"}), "non-empty list"),
    (_body(entries=["trade"]), "entry 0: must be a JSON object"),
    (_body(batch_id="b1:" + "0" * 64), "does not match"),
    (_entry_body(record="x"), "record must be a JSON object"),
    (_entry_body(record_id=7), "must be strings"),
    (_entry_body(trace_keys="tc1"), "trace_keys"),
    (_entry_body(trace_keys=["tc1", 2]), "trace_keys"),
    (_entry_body(visible_to="retail_market"), "visible_to"),
    (_entry_body(extra=1), "members"),
])
def test_malformed_bodies_raise_a_clear_error(body, message):
    with pytest.raises(BatchFormatError, match=message):
        parse_batch(body)


def test_a_changed_entry_no_longer_matches_its_id():
    document = orjson.loads(batch_body(ENTRIES)[1])
    document["entries"][0]["record"]["amount_fen"] = 1
    with pytest.raises(BatchFormatError, match="does not match"):
        parse_batch(orjson.dumps(document))


def test_stream_config_keeps_everything_and_deduplicates_for_ten_minutes():
    config = stream_config(3).as_dict()
    assert config["name"] == "LEDGER" and config["subjects"] == ["ledger.tx.>"]
    assert config["num_replicas"] == 3 and config["storage"] == "file"
    assert config["retention"] == "limits"
    assert config["max_age"] == 0 and config["max_msgs"] == -1 and config["max_bytes"] == -1
    assert config["duplicate_window"] == 600 * 10**9
    assert stream_config(1).as_dict()["num_replicas"] == 1
