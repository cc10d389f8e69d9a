"""The ledger as the bridge uses it: submit, cut, find, prove, with real SQLite files."""

from __future__ import annotations

import hashlib

import pytest
from ledger_files import drop_block

from market_protocol import merkle
from market_protocol.bloom import BloomFilter
from market_protocol.signing import unb64u
from service_base.testing import wait_until
from trace_ledger import Ledger, LedgerEntry, LedgerEntryError


def entry(i: int, *, visible_to=None, keys=None) -> LedgerEntry:
    record = {"trade_id": f"t{i}", "amount_fen": 100 + i, "seller": "stall-7"}
    return LedgerEntry("trade", f"t{i}", record, keys or [f"code-{i}", "stall-7"], visible_to)


@pytest.fixture
def ledger(tmp_path):
    with Ledger.open(tmp_path / "ledger", block_max=4, block_timeout_s=30) as opened:
        yield opened


def test_blocks_are_cut_by_count_and_by_flush(ledger):
    receipts = ledger.submit([entry(i) for i in range(6)])
    assert [r.status for r in receipts] == ["accepted"] * 6
    wait_until(lambda: ledger.head()["height"] == 1)  # readable once every node stored it
    assert ledger.pending() == 2
    ledger.flush()
    head = ledger.head()
    assert (head["height"], head["trades"]) == (2, 6)
    assert ledger.block(2)["header"]["count"] == 2
    assert ledger.block(3) is None


def test_blocks_are_cut_by_timeout(tmp_path):
    with Ledger.open(tmp_path, block_max=100, block_timeout_s=0.05) as timed:
        timed.submit([entry(1)])
        wait_until(lambda: timed.head()["height"] == 1)


def test_submit_is_idempotent_on_record_id(ledger):
    ledger.submit([entry(1)])
    assert ledger.submit([entry(1)])[0].status == "duplicate"  # still queued
    ledger.flush()
    assert ledger.submit([entry(1), entry(2)])[0].status == "duplicate"  # committed
    ledger.flush()
    assert ledger.head()["trades"] == 2


def test_malformed_entries_are_refused_before_anything_is_queued(ledger):
    bad = LedgerEntry("trade", "t9", {"weight": 1.5}, ["k"])
    with pytest.raises(LedgerEntryError, match="float"):
        ledger.submit([entry(1), bad])
    with pytest.raises(LedgerEntryError, match="record_id"):
        ledger.submit([LedgerEntry("trade", "", {}, ["k"])])
    with pytest.raises(LedgerEntryError, match="visible_to"):
        ledger.submit([entry(3, visible_to=("nobody",))])
    assert ledger.pending() == 0


def test_endorsement_runs_on_every_node_and_reports_refusals(tmp_path):
    calls = []

    def endorse(e):
        calls.append(e.record_id)
        return "amount does not add up" if e.record["amount_fen"] == 101 else None

    with Ledger.open(tmp_path, block_max=10, block_timeout_s=30, endorse=endorse) as led:
        ok, refused = led.submit([entry(0), entry(1)])
        assert ok.status == "accepted"
        assert refused.status == "refused"
        assert refused.refusals == dict.fromkeys(led.orgs, "amount does not add up")
        assert calls.count("t0") == 3
        led.flush()
        assert led.get("t1") is None and led.head()["trades"] == 1


def test_locate_finds_every_entry_with_a_key_in_chain_order(ledger):
    ledger.submit([entry(i) for i in range(9)])
    ledger.flush()
    found = ledger.locate("stall-7")
    assert [loc.record_id for loc in found] == [f"t{i}" for i in range(9)]
    assert [(loc.height, loc.index) for loc in found][:5] == [(1, 0), (1, 1), (1, 2), (1, 3), (2, 0)]
    assert [loc.record_id for loc in ledger.locate("code-5")] == ["t5"]
    assert ledger.locate("code-99") == []
    assert ledger.locate("code-5", bloom=False) == ledger.locate("code-5")


def test_private_records_stay_with_the_orgs_allowed_to_see_them(ledger):
    ledger.submit([entry(1, visible_to=("retail_market",)), entry(2)])
    ledger.flush()
    private = ledger.get("t1")
    assert private.held_by == ("retail_market",)
    assert private.record == {"trade_id": "t1", "amount_fen": 101, "seller": "stall-7"}
    assert ledger.get("t1", org="production_base").record is None
    assert ledger.get("t2").held_by == ledger.orgs
    assert ledger.proof("t1", org="wholesale_market")["record_canonical"] is None


def test_proof_checks_out_the_way_a_browser_checks_it(ledger):
    ledger.submit([entry(i) for i in range(7)])
    ledger.flush()
    keys = ledger.public_keys()
    proof = ledger.proof("t6")
    canonical = proof["record_canonical"].encode()
    assert hashlib.sha256(canonical).hexdigest() == proof["leaf"]["record_hash"]
    leaf = merkle.leaf_hash(
        b'{"kind":"trade","record_hash":"' + proof["record_hash"].encode()
        + b'","record_id":"t6","trace_keys":["code-6","stall-7"]}')
    assert leaf.hex() == proof["leaf_hash"]
    header = proof["block"]["header"]
    assert merkle.verify_inclusion(proof["leaf_index"], proof["tree_size"], leaf,
                                   [bytes.fromhex(h) for h in proof["audit_path"]],
                                   bytes.fromhex(header["merkle_root"]))
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from market_protocol import canonical_json
    signed = canonical_json.dumps(header)
    assert hashlib.sha256(signed).hexdigest() == proof["block"]["block_hash"]
    for signature in proof["block"]["signatures"]:
        public = Ed25519PublicKey.from_public_bytes(unb64u(keys[signature["signer"]]))
        public.verify(unb64u(signature["sig"]), signed)  # raises if wrong
    assert {s["signer"] for s in proof["block"]["signatures"]} == {"orderer", *ledger.orgs}
    bloom = BloomFilter.from_b64u(header["bloom"], header["bloom_k"])
    assert "code-6" in bloom and "stall-7" in bloom


def test_unknown_records_have_no_proof(ledger):
    assert ledger.proof("nope") is None and ledger.get("nope") is None


def test_consistency_proof_links_old_and_new_ledger_heads(ledger):
    for i in range(7):
        ledger.submit([entry(i)])
        ledger.flush()
    old_root, new_root = ledger.ledger_root(3), ledger.head()["ledger_root"]
    proof = [bytes.fromhex(h) for h in ledger.consistency(3, 7)]
    assert merkle.verify_consistency(3, 7, bytes.fromhex(old_root), bytes.fromhex(new_root), proof)
    assert not merkle.verify_consistency(3, 7, bytes.fromhex(ledger.ledger_root(2)),
                                         bytes.fromhex(new_root), proof)
    with pytest.raises(ValueError):
        ledger.consistency(5, 9)


def test_reopening_keeps_the_chain_and_its_keys(tmp_path):
    with Ledger.open(tmp_path, block_max=2, block_timeout_s=30) as first:
        first.submit([entry(i) for i in range(5)])
        keys, head = first.public_keys(), None
    with Ledger.open(tmp_path, block_max=2, block_timeout_s=30) as again:
        head = again.head()
        assert (head["height"], head["trades"]) == (3, 5)
        assert again.public_keys() == keys
        assert again.submit([entry(4)])[0].status == "duplicate"
        assert [loc.record_id for loc in again.locate("code-4")] == ["t4"]
        again.submit([entry(5)])
        again.flush()
        assert again.verify().ok


def test_stored_tree_gives_the_rfc_audit_path_for_every_leaf():
    from trace_ledger.blocks import StoredTree, pack_inner_nodes

    leaves = [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(45)]
    for n in range(1, 46):
        tree = merkle.levels(leaves[:n])
        stored = StoredTree(b"".join(leaves[:n]), pack_inner_nodes(tree))
        for i in range(n):
            assert merkle.inclusion_proof_from_levels(stored, i) == merkle.inclusion_proof(
                leaves[:n], i)
    with pytest.raises(ValueError, match="inner nodes"):
        StoredTree(b"".join(leaves[:4]), b"\x00" * 32)


@pytest.mark.parametrize("record", [
    {"b": 1, "a": [True, None, "x"], "c": {"z": -5, "y": [[], {}]}, "é": "ü"},
    {"trade_id": "t1", "lines": [{"weight_g": 500, "lot": None}], "n": 2**40},
])
def test_records_are_encoded_exactly_as_the_shared_canonical_json(record):
    from market_protocol import canonical_json
    from trace_ledger.entries import canonical_record

    assert canonical_record(record) == canonical_json.dumps(record)


@pytest.mark.parametrize("record", [{"w": 1.5}, {"a": [1, {"b": [2.0]}]}, {"t": (1, float("nan"))}])
def test_a_float_anywhere_in_a_record_is_refused(record):
    with pytest.raises(LedgerEntryError, match="float"):
        LedgerEntry("trade", "t1", record, ["k"]).check()


def test_key_index_lookup_by_bisection():
    from trace_ledger.key_index import build_key_index, lookup

    pairs = [(7, 0), (3, 1), (7, 2), (2**64 - 1, 3), (0, 4), (7, 2)]
    blob = build_key_index(pairs)
    assert len(blob) == 5 * 12
    assert lookup(blob, 7) == [0, 2]
    assert (lookup(blob, 0), lookup(blob, 2**64 - 1), lookup(blob, 5)) == ([4], [3], [])
    assert lookup(build_key_index([]), 7) == []


def test_a_block_not_every_node_stored_is_dropped_on_reopening_and_ordered_again(tmp_path):

    from trace_ledger.node_store import STORE_NAME

    with Ledger.open(tmp_path, block_max=3, block_timeout_s=30) as first:
        first.submit([entry(i) for i in range(6)])
        first.flush()
    # as if the process died after two nodes had stored block 2 and the third had not
    drop_block(tmp_path / "retail_market" / STORE_NAME, 2)
    with Ledger.open(tmp_path, block_max=3, block_timeout_s=30) as again:
        assert again.head() | {"ledger_root": None} == {
            "height": 1, "block_hash": again.block(1)["block_hash"], "trades": 3,
            "ledger_root": None}
        assert again.get("t4") is None
        receipts = again.submit([entry(i) for i in range(6)])  # the sender delivers again
        assert [r.status for r in receipts] == ["duplicate"] * 3 + ["accepted"] * 3
        again.flush()
        assert again.head()["trades"] == 6
        assert again.verify().ok


def test_a_node_that_cannot_store_a_block_stops_the_ledger_until_reopened(tmp_path):
    import sqlite3

    from trace_ledger import LedgerStoreError
    from trace_ledger.node_store import STORE_NAME

    failing = tmp_path / "wholesale_market" / STORE_NAME
    with Ledger.open(tmp_path, block_max=2, block_timeout_s=30) as ledger:
        ledger.submit([entry(0), entry(1)])
        ledger.flush()
        with sqlite3.connect(failing) as conn:  # a real SQLite failure on one node
            conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON blocks "
                         "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END")
        ledger.submit([entry(2), entry(3)])
        with pytest.raises(LedgerStoreError, match="failed to store block 2.*disk trouble"):
            ledger.flush()
        with pytest.raises(LedgerStoreError):
            ledger.submit([entry(4)])
        assert ledger.head()["height"] == 1
    with sqlite3.connect(failing) as conn:
        conn.execute("DROP TRIGGER refuse")
    with Ledger.open(tmp_path, block_max=2, block_timeout_s=30) as again:
        assert again.head()["height"] == 1  # the partial block 2 was dropped everywhere
        assert [r.status for r in again.submit([entry(2), entry(3)])] == ["accepted"] * 2
        again.flush()
        assert again.verify().ok and again.head()["trades"] == 4


@pytest.mark.slow  # node processes
def test_nodes_in_processes_of_their_own_store_the_same_ledger(tmp_path):
    import sqlite3

    from trace_ledger import LedgerStoreError
    from trace_ledger.node_store import STORE_NAME

    with Ledger.open(tmp_path, block_max=3, block_timeout_s=30, node_processes=True) as ledger:
        ledger.submit([entry(i, visible_to=("retail_market",) if i == 4 else None)
                       for i in range(8)])
        ledger.flush()
        assert ledger.head()["trades"] == 8
        assert [loc.record_id for loc in ledger.locate("code-7")] == ["t7"]
        assert ledger.get("t4").held_by == ("retail_market",)
        assert ledger.proof("t7")["leaf_index"] == 1
        assert ledger.verify().ok
        with sqlite3.connect(tmp_path / "production_base" / STORE_NAME) as conn:
            conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON blocks "
                         "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END")
        ledger.submit([entry(8)])
        with pytest.raises(LedgerStoreError, match="production_base.*disk trouble"):
            ledger.flush()


def test_nodes_that_disagree_beyond_a_crash_are_left_for_verify_to_name(tmp_path):
    import sqlite3

    from ledger_files import pinned_keys

    from trace_ledger import verify_data_dir
    from trace_ledger.node_store import STORE_NAME

    with Ledger.open(tmp_path, block_max=3, block_timeout_s=30) as first:
        first.submit([entry(i) for i in range(6)])
    keys = pinned_keys(tmp_path)
    # only the block row is gone: its leaves are still there, so this is no crash
    with sqlite3.connect(tmp_path / "retail_market" / STORE_NAME) as conn:
        conn.execute("DELETE FROM blocks WHERE height = 2")
    with Ledger.open(tmp_path, block_max=3, block_timeout_s=30) as again:
        assert again.head()["height"] == 2  # nothing dropped from the other nodes
    report = verify_data_dir(tmp_path, keys)
    assert (report.first.node, report.first.height, report.first.what) == (
        "retail_market", 2, "block is missing")


@pytest.mark.parametrize("keys", [[], ["b", "a", "b"], ['q"uote', "back\\slash", "é中", "\x01ctl"]])
def test_leaf_data_is_the_canonical_json_of_the_leaf_dict(keys):
    from market_protocol import canonical_json
    from trace_ledger.entries import leaf_data

    expected = canonical_json.dumps({"kind": "trade", "record_id": 'id/"1"', "record_hash": "ab" * 32,
                                     "trace_keys": sorted(set(keys))})
    assert leaf_data("trade", 'id/"1"', "ab" * 32, keys) == expected


def test_a_block_is_stored_byte_for_byte_whatever_its_strings_hold(tmp_path):
    import sqlite3

    from market_protocol import canonical_json
    from trace_ledger.node_store import STORE_NAME

    keys = ['q"uote', "back\\slash", "é中", "\x01ctl", "line\u2028sep", "t\tab"]
    records = [{"name": "白菜 \"fresh\"\n", "grams": 500}, {"note": "\x00\x7f", "n": -(2**62)}]
    with Ledger.open(tmp_path, block_max=8, block_timeout_s=30) as ledger:
        ledger.submit([LedgerEntry("trade", f"odd:{i}/x", record, keys[i:], None)
                       for i, record in enumerate(records)])
        ledger.flush()
        for i, record in enumerate(records):
            stored = ledger.get(f"odd:{i}/x")
            assert stored.record_canonical.encode() == canonical_json.dumps(record)
            assert stored.trace_keys == sorted(set(keys[i:]))
            assert stored.record_hash == hashlib.sha256(canonical_json.dumps(record)).hexdigest()
        assert [loc.record_id for loc in ledger.locate("line\u2028sep")] == ["odd:0/x", "odd:1/x"]
        assert ledger.verify().ok
    for org in ledger.orgs:
        with sqlite3.connect(tmp_path / org / STORE_NAME) as conn:
            stored = conn.execute(
                "SELECT height, chunk, typeof(record_hashes), length(record_hashes),"
                " typeof(leaf_rows), json_array_length(leaf_rows) FROM leaf_chunks").fetchall()
            bodies = conn.execute("SELECT chunk, typeof(bodies), length(bodies), "
                                  "length(body_ends) FROM record_chunks").fetchall()
            ids = conn.execute("SELECT typeof(rid), height, idx FROM leaf_ids "
                               "ORDER BY height, idx").fetchall()
        assert stored == [(1, 0, "blob", 64, "blob", 2)]
        assert bodies == [(0, "blob", sum(len(canonical_json.dumps(r)) for r in records), 8)]
        assert ids == [("integer", 1, 0), ("integer", 1, 1)]


def test_blocks_spanning_many_stored_chunks_read_back_every_entry(tmp_path):
    """Leaves and records are stored in chunks of consecutive leaves: every position, on
    both sides of each chunk boundary, reads back as written, on every node."""
    from ledger_files import edit_record, node_file, pinned_keys

    from trace_ledger import verify_data_dir
    from trace_ledger.node_store import LEAF_CHUNK, RECORD_CHUNK

    count = 2 * LEAF_CHUNK + 5
    assert count > 4 * RECORD_CHUNK
    only_retail = ("retail_market",)
    entries = [entry(i, visible_to=only_retail if i % 3 == 0 else None) for i in range(count)]
    with Ledger.open(tmp_path, block_max=count, block_timeout_s=30) as ledger:
        ledger.submit(entries)
        ledger.flush()
        assert ledger.head()["height"] == 1
        for i, sent in enumerate(entries):
            stored = ledger.get(f"t{i}")
            assert (stored.height, stored.index, stored.record) == (1, i, sent.record)
            assert stored.held_by == (only_retail if i % 3 == 0 else ledger.orgs)
            assert ledger.get(f"t{i}", org="production_base").record == (
                None if i % 3 == 0 else sent.record)
            assert [loc.index for loc in ledger.locate(f"code-{i}")] == [i]
        assert len(ledger.locate("stall-7")) == count
        assert ledger.verify().ok
    keys = pinned_keys(tmp_path)
    edited = LEAF_CHUNK + 1
    edit_record(node_file(tmp_path, "wholesale_market"), f"t{edited}",
                lambda body: body.replace(b'"amount_fen":', b'"amount_fen":9'))
    report = verify_data_dir(tmp_path, keys)
    assert [(p.node, p.record_id) for p in report.problems] == [
        ("wholesale_market", f"t{edited}")]


def test_a_node_that_keeps_no_record_of_a_block_stores_it_all_the_same(tmp_path):
    only_retail = ("retail_market",)
    with Ledger.open(tmp_path, block_max=3, block_timeout_s=30) as ledger:
        ledger.submit([entry(i, visible_to=only_retail) for i in range(3)])
        ledger.flush()
        assert ledger.head()["height"] == 1
        assert ledger.get("t1", org="production_base").record is None
        assert ledger.get("t1", org="retail_market").record == entry(1).record
        assert ledger.verify().ok


def test_trace_key_digests_are_sha256_whether_remembered_or_not():
    from market_protocol.bloom import key_digest
    from trace_ledger.block_builder import KeyDigests

    digests = KeyDigests(size=5)
    for keys in (["lot-1", "m-7", "code-1"], ["lot-1", "code-2"], ["a", "b", "c", "d"],
                 ["lot-1", "é中"]):
        assert digests(keys) == [key_digest(key) for key in keys]
    assert len(digests._known) <= 5
