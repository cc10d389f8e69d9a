"""Tampering with a node's SQLite file is caught by verify, which names the first bad thing.

Each test edits the real file with sqlite3 (directly or through ``ledger_files``), as an
intruder with file access would.
"""

from __future__ import annotations

import sqlite3

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from ledger_files import delete_leaf, edit_leaf, edit_record, node_file, pinned_keys

from market_protocol import canonical_json
from market_protocol.signing import sign
from trace_ledger import Ledger, LedgerEntry, verify_data_dir
from trace_ledger.ledger import STORE_NAME


def entry(i: int) -> LedgerEntry:
    record = {"trade_id": f"t{i}", "amount_fen": 1000 + i, "lot": f"lot-{i % 3}"}
    return LedgerEntry("trade", f"t{i}", record, [f"code-{i}", f"lot-{i % 3}"])


@pytest.fixture
def data_dir(tmp_path):
    with Ledger.open(tmp_path, block_max=4, block_timeout_s=30) as ledger:
        ledger.submit([entry(i) for i in range(14)])
        ledger.flush()
        assert ledger.verify().ok
    pinned_keys(tmp_path)  # pinned at deployment, before any tampering
    return tmp_path


def tamper(data_dir, org: str, sql: str, params=()) -> None:
    with sqlite3.connect(data_dir / org / STORE_NAME) as conn:
        assert conn.execute(sql, params).rowcount >= 1


def first_problem(data_dir):
    report = verify_data_dir(data_dir, pinned_keys(data_dir))
    assert not report.ok
    return report.first


def test_a_clean_ledger_verifies(data_dir):
    report = verify_data_dir(data_dir, pinned_keys(data_dir))
    assert report.ok and report.problems == []
    assert (report.blocks, report.trades, report.records_checked) == (4, 14, 42)


def test_an_edited_off_chain_record_is_named(data_dir):
    edited = canonical_json.dumps({"trade_id": "t6", "amount_fen": 1, "lot": "lot-0"})
    edit_record(node_file(data_dir, "wholesale_market"), "t6", lambda _: edited)
    problem = first_problem(data_dir)
    assert (problem.node, problem.height, problem.record_id) == ("wholesale_market", 2, "t6")
    assert "off-chain record does not match its on-chain hash" in problem.what


def test_a_record_edited_as_text_in_sql_is_named_not_a_crash(data_dir):
    edit_record(node_file(data_dir, "retail_market"), "t3",
                lambda body: body.decode().replace("lot-", "lot_"))
    problem = first_problem(data_dir)
    assert (problem.node, problem.record_id) == ("retail_market", "t3")
    assert "off-chain record does not match its on-chain hash" in problem.what


def test_a_record_retyped_as_text_but_unchanged_still_verifies(data_dir):
    tamper(data_dir, "retail_market",
           "UPDATE record_chunks SET bodies = CAST(bodies AS TEXT) WHERE height = 1")
    edit_record(node_file(data_dir, "production_base"), "t5", lambda body: body.decode())
    assert verify_data_dir(data_dir, pinned_keys(data_dir)).ok


def test_an_edit_made_on_every_node_is_still_caught(data_dir):
    edited = canonical_json.dumps({"trade_id": "t1", "amount_fen": 1, "lot": "lot-1"})
    for org in ("production_base", "wholesale_market", "retail_market"):
        edit_record(node_file(data_dir, org), "t1", lambda _: edited)
    report = verify_data_dir(data_dir, pinned_keys(data_dir))
    assert [(p.node, p.record_id) for p in report.problems] == [
        ("production_base", "t1"), ("wholesale_market", "t1"), ("retail_market", "t1")]


def test_an_edited_record_with_its_leaf_rehashed_breaks_the_merkle_root(data_dir):
    edited = canonical_json.dumps({"trade_id": "t5", "amount_fen": 1, "lot": "lot-2"})
    import hashlib
    edit_record(node_file(data_dir, "retail_market"), "t5", lambda _: edited)
    edit_leaf(node_file(data_dir, "retail_market"), "t5",
              record_hash=hashlib.sha256(edited).digest())
    problem = first_problem(data_dir)
    assert (problem.node, problem.height, problem.record_id) == ("retail_market", 2, "t5")
    assert "leaf does not match" in problem.what


def test_reordered_blocks_are_named(data_dir):
    org = "production_base"
    tamper(data_dir, org, "UPDATE blocks SET height = -2 WHERE height = 2")
    tamper(data_dir, org, "UPDATE blocks SET height = 2 WHERE height = 3")
    tamper(data_dir, org, "UPDATE blocks SET height = 3 WHERE height = -2")
    problem = first_problem(data_dir)
    assert (problem.node, problem.height) == (org, 2)
    assert "header says 3" in problem.what


def test_a_forged_endorsement_is_named(data_dir):
    org = "retail_market"
    with sqlite3.connect(data_dir / org / STORE_NAME) as conn:
        header, signatures = conn.execute(
            "SELECT header, signatures FROM blocks WHERE height = 3").fetchone()
        forged = [dict(s) for s in canonical_json.loads(signatures)]
        for s in forged:
            if s["signer"] == "wholesale_market":
                s["sig"] = sign(Ed25519PrivateKey.generate(), header.encode())
        conn.execute("UPDATE blocks SET signatures = ? WHERE height = 3",
                     (canonical_json.dumps(forged).decode(),))
    problem = first_problem(data_dir)
    assert (problem.node, problem.height, problem.record_id) == (org, 3, None)
    assert problem.what == "endorsement by wholesale_market does not verify (forged or altered)"


def test_a_deleted_leaf_is_named(data_dir):
    delete_leaf(node_file(data_dir, "wholesale_market"), "t9")
    report = verify_data_dir(data_dir, pinned_keys(data_dir))
    problem = report.first
    assert (problem.node, problem.height, problem.record_id) == ("wholesale_market", 3, "t9")
    assert problem.what == "leaf 1 is missing"
    assert any("Merkle root" in p.what for p in report.problems)


def test_an_edited_header_is_named(data_dir):
    with sqlite3.connect(data_dir / "production_base" / STORE_NAME) as conn:
        header = canonical_json.loads(
            conn.execute("SELECT header FROM blocks WHERE height = 4").fetchone()[0])
        header["time_ms"] += 1
        conn.execute("UPDATE blocks SET header = ? WHERE height = 4",
                     (canonical_json.dumps(header).decode(),))
    problem = first_problem(data_dir)
    assert (problem.node, problem.height) == ("production_base", 4)
    assert problem.what == "stored block hash does not match the header"


def test_a_missing_block_is_named(data_dir):
    tamper(data_dir, "retail_market", "DELETE FROM blocks WHERE height = 2")
    problem = first_problem(data_dir)
    assert (problem.node, problem.height, problem.what) == ("retail_market", 2, "block is missing")


def test_a_changed_trace_key_breaks_leaf_and_bloom(data_dir):
    edit_leaf(node_file(data_dir, "production_base"), "t0", trace_keys=["code-0", "lot-9"])
    report = verify_data_dir(data_dir, pinned_keys(data_dir))
    assert (report.first.node, report.first.height, report.first.record_id) == (
        "production_base", 1, "t0")
    assert any("Bloom" in p.what for p in report.problems)


def test_verify_refuses_a_directory_without_a_ledger(tmp_path):
    with pytest.raises(FileNotFoundError, match="no ledger"):
        verify_data_dir(tmp_path / "empty", {name: Ed25519PrivateKey.generate().public_key()
                                             for name in ("orderer", "production_base")})
    assert not (tmp_path / "empty").exists()


def test_a_tampered_key_index_is_named(data_dir):
    tamper(data_dir, "wholesale_market", "UPDATE blocks SET key_index = x'' WHERE height = 2")
    problem = first_problem(data_dir)
    assert (problem.node, problem.height) == ("wholesale_market", 2)
    assert problem.what == "trace-key index does not match the leaves"


def test_a_tampered_stored_merkle_tree_is_named(data_dir):
    tamper(data_dir, "retail_market",
           "UPDATE blocks SET inner_nodes = zeroblob(length(inner_nodes)) WHERE height = 4")
    problem = first_problem(data_dir)
    assert (problem.node, problem.height) == ("retail_market", 4)
    assert problem.what == "stored Merkle tree does not match the leaves"


@pytest.mark.slow  # worker processes
def test_verifying_in_worker_processes_finds_the_same_first_problem(data_dir):
    clean = verify_data_dir(data_dir, pinned_keys(data_dir), workers=2,
                            parallel_from_blocks=1)
    assert clean.ok and (clean.blocks, clean.trades, clean.records_checked) == (4, 14, 42)
    tamper(data_dir, "production_base", "DELETE FROM blocks WHERE height = 3")
    edit_record(node_file(data_dir, "retail_market"), "t13", lambda _: b"{}")
    parallel = verify_data_dir(data_dir, pinned_keys(data_dir), workers=2,
                               parallel_from_blocks=1)
    inline = verify_data_dir(data_dir, pinned_keys(data_dir), workers=1)
    assert parallel.problems == inline.problems
    assert (parallel.first.node, parallel.first.height, parallel.first.what) == (
        "production_base", 3, "block is missing")
    assert ("retail_market", 4, "t13") in [(p.node, p.height, p.record_id)
                                           for p in parallel.problems]
