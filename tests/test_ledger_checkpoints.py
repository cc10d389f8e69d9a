"""Cosigned checkpoints with real processes: three organisation nodes following a
three-server JetStream cluster, the collector (`tracepay ledger checkpoint`), `tracepay
ledger verify` against the cosigned note, and an outside witness (`tracepay witness`).

The attacks are tried as an insider would: a node key the trust file does not pin, a node
store rewritten consistently and re-signed with that node's own key, and a log that asks
the witness to cosign an older tree (rollback) or another tree of the same history (fork).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from test_ledger_node import GATEWAY, Nodes, trade_entries

from market_protocol import ORGS, merkle
from market_protocol.signed_note import Signer, sign_note
from market_protocol.signing import load_or_create_private_key, public_key_pem, public_key_raw_b64
from market_protocol.witness_request import SIZE_TYPE, format_add_checkpoint
from service_base.nats_cluster import NatsCluster
from service_base.testing import ServiceProcess, free_port, tracepay_command
from trace_ledger.cosigned import DEFAULT_ORIGIN, checkpoint_for, node_key_name
from trace_ledger.node.chain import NodeChain
from trace_ledger.node_store import STORE_NAME
from trace_ledger.verify_jobs import verify_node_dirs

ENV = {**os.environ, "PYTHONPATH": os.getcwd()}


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(tracepay_command(*args), capture_output=True, text=True,
                          timeout=120, env=ENV)


class Witness:
    def __init__(self, root: Path, trust: Path) -> None:
        self.data, self.trust, self.port = root / "witness", trust, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: ServiceProcess | None = None

    def vkey(self) -> str:
        done = cli("witness", "--data", str(self.data), "--print-vkey")
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def start(self) -> None:
        argv = tracepay_command("witness", "--data", str(self.data), "--trust", str(self.trust),
                                "--port", str(self.port))
        self.proc = ServiceProcess(argv, log_path=self.data.parent / "witness.out",
                                   health_url=self.url + "/healthz",
                                   env={"PYTHONPATH": os.getcwd()}).start()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def add(self, old: int, proof: list[bytes], note: str) -> requests.Response:
        return requests.post(self.url + "/add-checkpoint",
                             data=format_add_checkpoint(old, proof, note).encode(), timeout=10)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):  # noqa: ANN001, ANN201
    root = tmp_path_factory.mktemp("cosign")
    gateway_pem = root / "gateway_public.pem"
    gateway_pem.write_text(public_key_pem(GATEWAY))
    with NatsCluster(root / "nats", size=3) as cluster:
        from trace_ledger.stream import StreamPublisher

        publisher = StreamPublisher(cluster.servers, user="bridge",
                                    password=cluster.password("bridge"))
        publisher.ensure_stream(replicas=cluster.replicas)
        nodes = Nodes(root, cluster, gateway_pem)
        witness = None
        try:
            for org in ORGS:
                nodes.start(org)
            seq = 0
            for n in range(1, 7):
                seq = publisher.publish(trade_entries(n))
            nodes.wait_seq(seq)
            pairs = [a for org in ORGS for a in ("--node", f"{org}={nodes.data(org)}")]
            trust = root / "node-trust.json"
            witness = Witness(root, trust)
            vkey = witness.vkey()
            done = cli("ledger", "node-trust", *pairs, "--out", str(trust))
            assert done.returncode == 0, done.stderr
            witnessed = root / "witnessed-trust.json"
            done = cli("ledger", "node-trust", *pairs, "--out", str(witnessed),
                       "--witness", vkey, "--witness-quorum", "1")
            assert done.returncode == 0, done.stderr
            witness.start()
            yield {"root": root, "nodes": nodes, "publisher": publisher, "trust": trust,
                   "witnessed_trust": witnessed, "witness": witness}
        finally:
            if witness is not None:
                witness.stop()
            nodes.stop()
            publisher.close()


def urls(nodes: Nodes, orgs=ORGS) -> str:  # noqa: ANN001
    return ",".join(nodes.url(org) for org in orgs)


def collect(ledger: dict, *extra: str, trust: Path | None = None) -> tuple[int, dict]:
    done = cli("ledger", "checkpoint", "--nodes", urls(ledger["nodes"]),
               "--trust", str(trust or ledger["trust"]), *extra)
    return done.returncode, json.loads(done.stdout)


def test_a_node_signs_only_what_it_has_validated(ledger):  # noqa: ANN001
    nodes = ledger["nodes"]
    height = nodes.head("retail_market")["height"]
    url = nodes.url("retail_market")
    note = requests.get(url + "/v1/checkpoint", timeout=5)
    assert note.status_code == 200 and note.headers["Content-Type"].startswith("text/plain")
    body, signature = note.text.split("\n\n")
    assert body.split("\n")[:2] == [DEFAULT_ORIGIN, str(height)]
    assert signature.startswith("\u2014 tracepay-retail_market ") and signature.count("\n") == 1
    assert base64_root(body) == bytes.fromhex(nodes.head("retail_market")["root"])
    ahead = requests.get(url + "/v1/checkpoint", params={"size": height + 1}, timeout=5)
    assert ahead.status_code == 409 and ahead.json()["error"] == "not_validated"
    assert requests.get(url + "/v1/checkpoint?size=-1", timeout=5).status_code == 400
    smaller = requests.get(url + "/v1/checkpoint", params={"size": 2}, timeout=5).text
    assert smaller.split("\n")[1] == "2"
    from trace_ledger.node_client import NodeReader

    reader = NodeReader([f"http://127.0.0.1:{free_port()}", url])
    assert reader.checkpoint(2) == smaller and reader.checkpoint(height + 1) is None
    proof = requests.get(url + "/v1/block-proof/2", params={"size": height}, timeout=5).json()
    assert merkle.verify_inclusion(1, height, merkle.leaf_hash(bytes.fromhex(
        proof["block_hash"])), [bytes.fromhex(h) for h in proof["proof"]], base64_root(body))
    assert requests.get(url + "/v1/block-proof/0", timeout=5).status_code == 404


def base64_root(body: str) -> bytes:
    import base64

    return base64.b64decode(body.split("\n")[2])


def test_three_nodes_merge_to_a_final_note(ledger, tmp_path):  # noqa: ANN001
    out = tmp_path / "checkpoint.note"
    code, summary = collect(ledger, "--out", str(out))
    assert code == 0, summary
    assert summary["final"] is True and summary["signed_by"] == sorted(ORGS)
    assert summary["problems"] == [] and summary["quorum"] == 3
    note = out.read_text()
    assert note == summary["note"] and note.count("\u2014 tracepay-") == 3
    assert summary["size"] == min(summary["heights"].values())


def test_a_node_key_not_in_the_trust_file_is_refused(ledger, tmp_path):  # noqa: ANN001
    document = json.loads(ledger["trust"].read_text())
    document["node_keys"]["retail_market"] = public_key_raw_b64(Ed25519PrivateKey.generate())
    del document["vkeys"]["retail_market"]
    swapped = tmp_path / "swapped.json"
    swapped.write_text(json.dumps(document))
    code, summary = collect(ledger, trust=swapped)
    assert code == 1 and summary["final"] is False
    assert summary["signed_by"] == ["production_base", "wholesale_market"]
    refused = [p for p in summary["problems"] if "refused" in p["problem"]]
    assert [p["node"] for p in refused] == [ledger["nodes"].url("retail_market")]
    assert "tracepay-retail_market" not in summary["note"]
    document["quorum"] = 2
    swapped.write_text(json.dumps(document))
    code, summary = collect(ledger, trust=swapped)
    assert code == 0 and summary["final"] is True


def rewrite_store(source: Path, target: Path, keep: int) -> None:
    """The insider's rewrite: a snapshot of the node's store, every block above ``keep``
    replaced by other (valid) trades, hashed, chained and signed with the node's own key."""
    target.mkdir()
    src, dst = sqlite3.connect(source / STORE_NAME), sqlite3.connect(target / STORE_NAME)
    src.backup(dst)
    src.close()
    dst.close()
    (target / "node_key.pem").write_bytes((source / "node_key.pem").read_bytes())
    key = load_or_create_private_key(target / "node_key.pem")
    chain = NodeChain("retail_market", target, key, GATEWAY.public_key())
    top = len(chain.block_hashes())
    chain.close()
    from trace_ledger.node_store import NodeStore

    store = NodeStore("retail_market", target / STORE_NAME)
    store.drop_blocks_above(keep)
    store.close()
    chain = NodeChain("retail_market", target, key, GATEWAY.public_key())
    seq = chain.stream_seq
    from trace_ledger.stream import batch_body

    for n in range(top - keep + 1):
        seq += 1
        applied = chain.apply(seq, 1_700_000_000_000 + n, batch_body(trade_entries(900 + n))[1])
        assert applied is not None and applied.height is not None
    chain.close()


def test_a_rewritten_node_store_fails_verify_and_names_the_block(ledger, tmp_path):  # noqa: ANN001
    nodes = ledger["nodes"]
    note_file = tmp_path / "checkpoint.note"
    code, summary = collect(ledger, "--out", str(note_file))
    assert code == 0
    size = summary["size"]
    genuine = nodes.data("retail_market")
    pinned = ("--trust", str(ledger["trust"]), "--checkpoint", str(note_file))
    honest = cli("ledger", "verify", "--node", f"retail_market={genuine}", *pinned)
    assert honest.returncode == 0, honest.stdout + honest.stderr
    assert json.loads(honest.stdout)["anchored"] is True

    forged = tmp_path / "forged"
    rewrite_store(genuine, forged, keep=3)
    key = load_or_create_private_key(forged / "node_key.pem").public_key()
    consistent = verify_node_dirs({"retail_market": forged}, {"retail_market": key})
    assert consistent.ok, consistent.problems[:3]  # its own key vouches for the rewrite

    others = urls(nodes, ["production_base", "wholesale_market"])
    done = cli("ledger", "verify", "--node", f"retail_market={forged}", *pinned,
               "--nodes", f"http://127.0.0.1:{free_port()},{others}")
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False and report["first_differing_block"] == 4
    assert report["first_problem"].startswith("node retail_market, block 4: block differs")
    assert "block 4" in done.stderr
    alone = cli("ledger", "verify", "--node", f"retail_market={forged}", *pinned)
    assert alone.returncode == 1
    assert "do not give the cosigned root" in json.loads(alone.stdout)["first_problem"]
    # several directories: an honest one names the block, no node is asked
    together = cli("ledger", "verify", *pinned, "--node", f"retail_market={forged}",
                   "--node", f"production_base={nodes.data('production_base')}")
    assert together.returncode == 1
    reports = {r["node"]: r for r in json.loads(together.stdout)["nodes"]}
    assert reports["production_base"]["ok"] is True
    assert reports["retail_market"]["first_differing_block"] == 4
    assert size >= 4


def test_verify_without_a_trust_file_says_it_is_unanchored(ledger):  # noqa: ANN001
    done = cli("ledger", "verify", "--node",
               f"retail_market={ledger['nodes'].data('retail_market')}")
    assert done.returncode == 2 and "no trust anchor" in done.stderr
    assert json.loads(done.stdout) == {
        "ok": False, "anchored": False,
        "message": "unanchored: no --trust file, so nothing was verified against pinned keys"}


def node_signers(nodes: Nodes) -> list[Signer]:
    return [Signer(node_key_name(org), load_or_create_private_key(
        nodes.data(org) / "node_key.pem")) for org in ORGS]


def test_the_witness_accepts_extensions_and_refuses_rollback_and_fork(ledger):  # noqa: ANN001
    nodes, witness, publisher = ledger["nodes"], ledger["witness"], ledger["publisher"]
    witnessed = ledger["witnessed_trust"]
    code, first = collect(ledger, trust=witnessed)
    assert code == 1 and first["witnessed_by"] == []  # the trust file requires a witness
    code, first = collect(ledger, "--witness", witness.url, trust=witnessed)
    assert code == 0, first
    assert first["final"] and first["witnessed_by"] == ["tracepay-witness"]
    small = first["size"]

    nodes.wait_seq(publisher.publish(trade_entries(50)))
    nodes.wait_seq(publisher.publish(trade_entries(51)))
    code, second = collect(ledger, "--witness", witness.url, trust=witnessed)
    assert code == 0, second
    assert second["size"] == small + 2 and second["witnessed_by"] == ["tracepay-witness"]
    assert any(f"(old {small})" in w for w in second["witnesses"])

    # rollback: the older checkpoint again
    again = witness.add(0, [], first["note"])
    assert again.status_code == 409 and again.headers["Content-Type"].startswith(SIZE_TYPE)
    assert again.text == f"{small + 2}\n"
    assert witness.add(small + 2, [], first["note"]).status_code == 400

    # fork: every organisation's key signs another tree of the same size
    signers = node_signers(nodes)
    hashes = [bytes.fromhex(requests.get(nodes.url("retail_market") + f"/v1/blocks/{h}",
                                         timeout=5).json()["block_hash"])
              for h in range(1, small + 3)]
    forked = hashes[:-1] + [hashlib.sha256(b"another block").digest()]
    fork_note = sign_note(checkpoint_for(DEFAULT_ORIGIN, forked).body(), signers)
    refused = witness.add(small + 2, [], fork_note)
    assert refused.status_code == 422 and refused.json()["error"] == "fork"
    # fork of a larger tree: the proof from the cosigned size does not verify
    longer = forked + [hashlib.sha256(b"one more").digest()]
    leaves = [merkle.leaf_hash(h) for h in longer]
    proof = merkle.consistency_proof(leaves, small + 2)
    longer_note = sign_note(checkpoint_for(DEFAULT_ORIGIN, longer).body(), signers)
    assert witness.add(small + 2, proof, longer_note).status_code == 422
    # too few organisations, or another log
    two = sign_note(checkpoint_for(DEFAULT_ORIGIN, hashes).body(), signers[:2])
    assert witness.add(small + 2, [], two).status_code == 403
    other = sign_note(checkpoint_for("another/log", hashes).body(), signers)
    assert witness.add(0, [], other).status_code == 404
    assert witness.add(0, [], "not a request").status_code == 400
    evidence = requests.get(witness.url + "/v1/refused", timeout=5).json()["refused"]
    assert {r["status"] for r in evidence} >= {409, 422}

    # the state survives a restart, and the cosigned checkpoint is served
    witness.stop()
    witness.start()
    origin_hash = hashlib.sha256(DEFAULT_ORIGIN.encode()).hexdigest()
    latest = requests.get(f"{witness.url}/{origin_hash}/checkpoint", timeout=5)
    assert latest.status_code == 200 and latest.text.split("\n")[1] == str(small + 2)
    assert latest.text.count("\u2014 ") == 4
    assert witness.add(0, [], second["note"]).text == f"{small + 2}\n"
    assert witness.add(small + 2, [], second["note"]).status_code == 200  # same tree: fine
