"""`tracepay ledger verify` checks against what was pinned outside the data, as an attacker
who can write every node's files would try it.

Each attack produces a ledger that is consistent in itself (every hash, root and
signature recomputed), proven by verifying it with the keys found in the data, which is
what verify used to do. With the trust file and the checkpoint file of an earlier run,
the CLI (run as a process, on the real files) must fail and name the block.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from market_protocol import ORGS
from service_base.testing import tracepay_command
from trace_ledger import Ledger, LedgerEntry, verify_data_dir
from trace_ledger.node_store import STORE_NAME, NodeStore
from trace_ledger.signers import ORDERER, load_public_key

pytestmark = pytest.mark.slow  # tracepay CLI processes


def entry(i: int, amount_fen: int | None = None) -> LedgerEntry:
    record = {"trade_id": f"t{i}", "amount_fen": 1000 + i if amount_fen is None else amount_fen,
              "lot": f"lot-{i % 3}"}
    return LedgerEntry("trade", f"t{i}", record, [f"code-{i}", f"lot-{i % 3}"])


def history(edited: int | None = None) -> list[LedgerEntry]:
    """The 14 trades of the deployment; ``edited`` sells for 1 fen instead."""
    return [entry(i, 1 if i == edited else None) for i in range(14)]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(tracepay_command(*args), capture_output=True, text=True, timeout=120)


def keys_on_disk(ledger_dir: Path) -> dict:
    return {signer: load_public_key(ledger_dir, signer) for signer in (ORDERER, *ORGS)}


def verify(deployment: dict, *extra: str) -> subprocess.CompletedProcess:
    return cli("ledger", "verify", "--data-dir", str(deployment["bridge"]), "--trust",
               str(deployment["trust"]), *extra)


@pytest.fixture
def deployment(tmp_path):
    bridge = tmp_path / "bridge"
    with Ledger.open(bridge / "ledger", block_max=4, block_timeout_s=30) as ledger:
        ledger.submit(history())
        ledger.flush()
    trust, checkpoints = tmp_path / "ledger-trust.json", tmp_path / "ledger-checkpoints.json"
    pinned = cli("ledger", "trust", "--data-dir", str(bridge), "--out", str(trust))
    assert pinned.returncode == 0, pinned.stderr
    assert "PRIVATE" not in trust.read_text()
    found = {"bridge": bridge, "ledger": bridge / "ledger", "trust": trust,
             "checkpoints": checkpoints}
    first = verify(found, "--checkpoints", str(checkpoints))  # an auditor's earlier run
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["ok"] is True
    assert len(json.loads(checkpoints.read_text())["block_hashes"]) == 4
    return found


def replace_stores(source: Path, target: Path) -> None:
    """Put the rebuilt node files where the real ones were, as the intruder would."""
    for org in ORGS:
        for suffix in ("", "-wal", "-shm"):
            (target / org / f"{STORE_NAME}{suffix}").unlink(missing_ok=True)
        shutil.copy2(source / org / STORE_NAME, target / org / STORE_NAME)


def test_history_re_signed_with_the_keys_on_disk_fails_and_names_the_block(deployment,
                                                                          tmp_path):
    # Rewrite from block 2 on (t5 sold for 1 fen) on every node, with the genuine private
    # keys found beside the stores: the ledger's own code recomputes everything.
    scratch = tmp_path / "scratch"
    shutil.copytree(deployment["ledger"], scratch)
    for org in ORGS:
        store = NodeStore(org, scratch / org / STORE_NAME)
        store.drop_blocks_above(1)
        store.close()
    with Ledger.open(scratch, block_max=4, block_timeout_s=30) as forger:
        forger.submit(history(edited=5)[4:])
        forger.flush()
        assert forger.get("t5").record["amount_fen"] == 1
    replace_stores(scratch, deployment["ledger"])
    consistent = verify_data_dir(deployment["ledger"], keys_on_disk(deployment["ledger"]))
    assert consistent.ok, consistent.problems  # invisible to checks without an anchor

    completed = verify(deployment, "--checkpoints", str(deployment["checkpoints"]))
    assert completed.returncode == 1
    report = json.loads(completed.stdout)
    assert report["ok"] is False
    assert [(p["node"], p["height"]) for p in report["problems"][:3]] == [
        (org, 2) for org in ORGS]
    assert "differs from the checkpointed block" in report["first_problem"]
    assert "block 2" in completed.stderr
    # a failed run never moves the checkpoints to the forged blocks
    again = verify(deployment, "--checkpoints", str(deployment["checkpoints"]))
    assert again.returncode == 1


def test_history_rebuilt_with_brand_new_keys_fails_on_the_pinned_keys(deployment, tmp_path):
    forged = tmp_path / "forged"
    with Ledger.open(forged, block_max=4, block_timeout_s=30) as forger:
        forger.submit(history(edited=2))
        forger.flush()
    shutil.rmtree(deployment["ledger"])
    shutil.copytree(forged, deployment["ledger"])  # stores and keys alike
    consistent = verify_data_dir(deployment["ledger"], keys_on_disk(deployment["ledger"]))
    assert consistent.ok, consistent.problems

    completed = verify(deployment)  # the pinned keys alone catch it
    assert completed.returncode == 1
    report = json.loads(completed.stdout)
    assert report["first_problem"] == ("node production_base, block 1: orderer signature "
                                       "does not verify (forged or altered)")
    signers = {p["what"].split(" does not")[0] for p in report["problems"] if p["height"] == 1}
    assert signers == {"orderer signature", *(f"endorsement by {org}" for org in ORGS)}


def test_a_rolled_back_ledger_is_named_against_the_checkpoints(deployment):
    for org in ORGS:
        store = NodeStore(org, deployment["ledger"] / org / STORE_NAME)
        store.drop_blocks_above(3)
        store.close()
    assert verify(deployment).returncode == 0  # in itself a clean, shorter ledger
    completed = verify(deployment, "--checkpoints", str(deployment["checkpoints"]))
    assert completed.returncode == 1
    assert "block 4: block is missing but was checkpointed" in json.loads(
        completed.stdout)["first_problem"]


def test_verify_without_a_trust_file_refuses_to_vouch(deployment):
    completed = cli("ledger", "verify", "--data-dir", str(deployment["bridge"]))
    assert completed.returncode == 2
    assert "no trust anchor" in completed.stderr


def test_a_trust_file_inside_the_data_it_vouches_for_is_refused(deployment):
    inside = deployment["bridge"] / "trust.json"
    shutil.copy(deployment["trust"], inside)
    completed = cli("ledger", "verify", "--data-dir", str(deployment["bridge"]),
                    "--trust", str(inside))
    assert completed.returncode == 2 and "inside --data-dir" in completed.stderr
    refused = cli("ledger", "trust", "--data-dir", str(deployment["bridge"]),
                  "--out", str(deployment["ledger"] / "t.json"))
    assert refused.returncode == 2


def test_a_trust_file_missing_an_organisation_is_refused(deployment, tmp_path):
    document = json.loads(deployment["trust"].read_text())
    del document["keys"]["wholesale_market"]
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(document))
    completed = cli("ledger", "verify", "--data-dir", str(deployment["bridge"]),
                    "--trust", str(partial))
    assert completed.returncode == 2 and "no usable key for wholesale_market" in completed.stderr
