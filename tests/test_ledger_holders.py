"""Which nodes must hold each off-chain record is committed in the signed block header, and
verify checks absence as hard as presence: a record deleted from a node's SQLite file, on
one node or on all of them, is named; so is a private record put on a node it is kept from.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from ledger_files import edit_record, node_file, pinned_keys

from market_protocol import ORGS
from service_base.testing import tracepay_command
from trace_ledger import Ledger, LedgerEntry, verify_data_dir
from trace_ledger.trust import write_trust_file

ONLY_RETAIL = ("retail_market",)


def entry(i: int) -> LedgerEntry:
    record = {"trade_id": f"t{i}", "amount_fen": 1000 + i}
    return LedgerEntry("trade", f"t{i}", record, [f"code-{i}"],
                       ONLY_RETAIL if i % 5 == 0 else None)


@pytest.fixture
def ledger_dir(tmp_path):
    path = tmp_path / "bridge" / "ledger"
    with Ledger.open(path, block_max=4, block_timeout_s=30) as ledger:
        ledger.submit([entry(i) for i in range(12)])
        ledger.flush()
        headers = [ledger.block(h)["header"] for h in (1, 2, 3)]
    assert [h.get("private") for h in headers] == [
        [[0, ["retail_market"]]], [[1, ["retail_market"]]], [[2, ["retail_market"]]]]
    pinned_keys(path)
    return path


def problems(ledger_dir):
    report = verify_data_dir(ledger_dir, pinned_keys(ledger_dir))
    return [(p.node, p.height, p.record_id, p.what) for p in report.problems]


def test_a_ledger_with_private_records_verifies(ledger_dir):
    report = verify_data_dir(ledger_dir, pinned_keys(ledger_dir))
    assert report.ok, report.problems
    assert report.records_checked == 12 * 3 - 3 * 2  # t0, t5, t10 on the retail node only


def test_a_record_deleted_from_one_node_is_named(ledger_dir):
    edit_record(node_file(ledger_dir, "wholesale_market"), "t6", lambda _: b"")
    assert problems(ledger_dir) == [
        ("wholesale_market", 2, "t6",
         "off-chain record of leaf 2 is missing (the block says this node holds it)")]


def test_a_record_deleted_from_every_node_is_named_on_each(ledger_dir):
    for org in ORGS:
        edit_record(node_file(ledger_dir, org), "t9", lambda _: b"")
    assert [(node, record_id) for node, _, record_id, _ in problems(ledger_dir)] == [
        (org, "t9") for org in ORGS]


def test_a_private_record_deleted_from_its_only_holder_is_named(ledger_dir):
    edit_record(node_file(ledger_dir, "retail_market"), "t5", lambda _: b"")
    found = problems(ledger_dir)
    assert [(n, h, r) for n, h, r, _ in found] == [("retail_market", 2, "t5")]
    assert "is missing" in found[0][3]


def test_a_private_record_put_on_a_node_it_is_kept_from_is_named(ledger_dir):
    body = json.dumps({"amount_fen": 1000, "trade_id": "t0"}, separators=(",", ":")).encode()
    edit_record(node_file(ledger_dir, "production_base"), "t0", lambda _: body,
                keeps_it=False)
    assert problems(ledger_dir) == [
        ("production_base", 1, "t0", "holds the off-chain record of leaf 0, which the block "
         "keeps from this organisation")]


@pytest.mark.slow  # runs tracepay as a process
def test_the_cli_names_a_deleted_record(ledger_dir, tmp_path):
    trust = write_trust_file(ledger_dir, tmp_path / "trust.json")
    edit_record(node_file(ledger_dir, "retail_market"), "t10", lambda _: b"")
    completed = subprocess.run(tracepay_command(
        "ledger", "verify", "--data-dir", str(ledger_dir.parent), "--trust", str(trust)),
        capture_output=True, text=True, timeout=120)
    assert completed.returncode == 1
    assert "node retail_market, block 3, record t10: off-chain record of leaf 2 is missing" \
        in completed.stderr
