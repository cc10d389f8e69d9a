"""Organisation nodes as real processes following a real three-server JetStream cluster
(stream R3, users and permissions on): the same
stream gives the same blocks and roots on every node, each signed by its own key only;
refusals are named by every node and do not stop the ledger; a node killed or wiped
catches up from the stream."""

from __future__ import annotations

import os
import shutil
import time

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger_bridge.sample_trades import Seller, line, make_trade
from market_protocol import ORGS, canonical_json
from market_protocol.signing import load_or_create_private_key, public_key_pem, verify
from service_base.nats_cluster import NatsCluster, node_user
from service_base.testing import ServiceProcess, free_port, tracepay_command
from trace_ledger import LedgerEntry
from trace_ledger.blocks import verify_signature
from trace_ledger.rules.entry_rules import PRIVATE_SCHEMA, PUBLIC_SCHEMA
from trace_ledger.stream import StreamPublisher

pytestmark = pytest.mark.slow  # ledger node processes

GATEWAY = Ed25519PrivateKey.generate()
SELLER = Seller("m-retail-1", "Stall 1", "retail_market", "dev-node-1")


def trade_entries(seq: int, key: Ed25519PrivateKey = GATEWAY) -> list[LedgerEntry]:
    trade = make_trade(key, SELLER, seq, [line("cabbage", 500)], sale_id=f"dev-node-1.{seq}.s{seq:06d}")
    tid = trade["trade_id"]
    public = {"schema": PUBLIC_SCHEMA, "trade_id": tid, "trace_code": trade["trace_code"],
              "buyer": {"kind": "shopper"}, "lines": [], "sold_at_ms": 1}
    return [LedgerEntry("trade", tid, public, [trade["trace_code"], tid]),
            LedgerEntry("trade_private", f"{tid}/private",
                        {"schema": PRIVATE_SCHEMA, "trade_id": tid, "trade": trade,
                         "payer_salt": "00"}, [f"{tid}/private", tid], ("retail_market",))]


def wait_for(condition, what: str, timeout: float = 60.0):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Nodes:
    def __init__(self, root, cluster: NatsCluster, gateway_pem) -> None:  # noqa: ANN001
        self.root, self.cluster, self.gateway_pem = root, cluster, gateway_pem
        self.ports = {org: free_port() for org in ORGS}
        self.procs: dict[str, ServiceProcess] = {}

    def url(self, org: str) -> str:
        return f"http://127.0.0.1:{self.ports[org]}"

    def data(self, org: str):  # noqa: ANN201
        return self.root / org

    def start(self, org: str) -> None:
        argv = tracepay_command(
            "ledger-node", "--org", org, "--data", str(self.data(org)),
            "--nats", ",".join(self.cluster.servers), "--user", node_user(org),
            "--password-file", str(self.cluster.password_file(node_user(org))),
            "--gateway-key", str(self.gateway_pem), "--http-port", str(self.ports[org]))
        self.procs[org] = ServiceProcess(argv, log_path=self.root / f"{org}.out",
                                         health_url=self.url(org) + "/healthz",
                                         env={"PYTHONPATH": os.getcwd()}).start()

    def head(self, org: str) -> dict:
        return requests.get(self.url(org) + "/v1/head", timeout=5).json()

    def wait_seq(self, seq: int, orgs=ORGS) -> None:  # noqa: ANN001
        for org in orgs:
            wait_for(lambda org=org: self.head(org)["stream_seq"] >= seq, f"{org} at {seq}")

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):  # noqa: ANN001, ANN201
    root = tmp_path_factory.mktemp("nodes")
    gateway_pem = root / "gateway_public.pem"
    gateway_pem.write_text(public_key_pem(GATEWAY))
    with NatsCluster(root / "nats", size=3) as cluster:
        publisher = StreamPublisher(cluster.servers, user="bridge",
                                    password=cluster.password("bridge"))
        publisher.ensure_stream(replicas=cluster.replicas)
        nodes = Nodes(root, cluster, gateway_pem)
        try:
            for org in ORGS:
                nodes.start(org)
            yield nodes, publisher
        finally:
            nodes.stop()
            publisher.close()


def same_heads(nodes: Nodes) -> dict:
    heads = {org: nodes.head(org) for org in ORGS}
    first = heads[ORGS[0]]
    for head in heads.values():
        assert (head["height"], head["block_hash"], head["root"], head["size"]) == \
            (first["height"], first["block_hash"], first["root"], first["size"])
    return heads


def test_same_stream_same_blocks_each_signed_by_its_own_key(setup):  # noqa: ANN001
    nodes, publisher = setup
    seq = 0
    for n in range(1, 6):
        seq = publisher.publish(trade_entries(n))
    nodes.wait_seq(seq)
    heads = same_heads(nodes)
    assert heads[ORGS[0]]["height"] >= 5
    keys = set()
    for org in ORGS:
        key_file = nodes.data(org) / "node_key.pem"
        assert (key_file.stat().st_mode & 0o777) == 0o600
        public = load_or_create_private_key(key_file).public_key()
        head = heads[org]
        body = {k: head[k] for k in head if k not in ("signature", "public_key")}
        assert verify(public, canonical_json.dumps(body), head["signature"])
        block = requests.get(nodes.url(org) + "/v1/blocks/1", timeout=5).json()
        assert [s["signer"] for s in block["signatures"]] == [org]
        assert verify_signature(public, block["header"], block["signatures"][0]["sig"])
        assert block["header"]["stream_seq"] >= 1
        keys.add(head["public_key"])
    assert len(keys) == 3
    # each node says where its time went, stage by stage
    timings = requests.get(nodes.url(ORGS[0]) + "/healthz", timeout=5).json()["timings"]
    assert timings["messages"] >= 5 and timings["entries"] >= 10
    assert set(timings["seconds"]) == {"fetch", "parse", "validate", "contract", "block", "store", "ack"}
    # only the parties' nodes keep the private record
    tid = "dev-node-1.1.s000001"
    held = {org: requests.get(nodes.url(org) + f"/v1/records/{tid}/private", timeout=5).json()
            ["record"] is not None for org in ORGS}
    assert held == {"production_base": False, "wholesale_market": False, "retail_market": True}
    assert requests.get(nodes.url("retail_market") + "/v1/locate",
                        params={"key": tid}, timeout=5).json()["locations"]
    assert requests.get(nodes.url("retail_market") + "/v1/consistency?old=x&new=2",
                        timeout=5).status_code == 400


def test_bad_gateway_signature_is_refused_by_every_node_and_the_ledger_goes_on(setup):  # noqa: ANN001
    nodes, publisher = setup
    forged = trade_entries(100, key=Ed25519PrivateKey.generate())
    bad_seq = publisher.publish(forged)
    good_seq = publisher.publish(trade_entries(101))
    nodes.wait_seq(good_seq)
    for org in ORGS:
        refused = requests.get(nodes.url(org) + "/v1/refused", timeout=5).json()["refused"]
        ours = [r for r in refused if r["stream_seq"] == bad_seq]
        assert [r["record_id"] for r in ours] == ["dev-node-1.100.s000100/private"]
        assert ours[0]["reason"].startswith("bad_signature")
        log = (nodes.data(org) / "node.log").read_text()
        assert "REFUSED" in log and "dev-node-1.100.s000100/private" in log
        found = requests.get(nodes.url(org) + "/v1/records/dev-node-1.101.s000101", timeout=5)
        assert found.status_code == 200
    same_heads(nodes)


def test_a_republished_batch_adds_nothing(setup):  # noqa: ANN001
    nodes, publisher = setup
    before = same_heads(nodes)[ORGS[0]]
    # a record already on the ledger, in a new batch (past the de-dup window's reach)
    entries = trade_entries(1) + trade_entries(200)[:1]
    seq = publisher.publish(entries)
    nodes.wait_seq(seq)
    after = same_heads(nodes)[ORGS[0]]
    assert after["size"] == before["size"] + 1


def test_killed_node_catches_up_and_agrees(setup):  # noqa: ANN001
    nodes, publisher = setup
    victim = "wholesale_market"
    seq = 0
    for n in range(300, 320):
        seq = publisher.publish(trade_entries(n))
        if n == 305:
            nodes.procs[victim].kill()
    others = [org for org in ORGS if org != victim]
    nodes.wait_seq(seq, others)
    nodes.start(victim)
    nodes.wait_seq(seq)
    same_heads(nodes)


def test_wiped_node_rebuilds_from_the_stream_with_a_new_key(setup):  # noqa: ANN001
    nodes, publisher = setup
    victim = "production_base"
    old_key = nodes.head(victim)["public_key"]
    nodes.procs[victim].stop()
    shutil.rmtree(nodes.data(victim))
    seq = publisher.publish(trade_entries(400))
    nodes.start(victim)
    nodes.wait_seq(seq)
    heads = same_heads(nodes)
    assert heads[victim]["public_key"] != old_key
    assert "NEW node key" in (nodes.data(victim) / "node.log").read_text()
    refused = requests.get(nodes.url(victim) + "/v1/refused", timeout=5).json()["refused"]
    assert any(r["record_id"] == "dev-node-1.100.s000100/private" for r in refused)


def test_mass_balance_is_checked_against_the_nodes_own_lots(setup):  # noqa: ANN001
    nodes, publisher = setup
    lot_id = "TLOT1-0"
    purchase = {"schema": PUBLIC_SCHEMA, "trade_id": "wh.1", "trace_code": "TLOT1",
                "buyer": {"kind": "party", "merchant_id": "m-retail-1"}, "sold_at_ms": 1,
                "lines": [{"lot_id": lot_id, "product": "cabbage", "measure": "g",
                           "amount": 1000, "lot": None}]}
    publisher.publish([LedgerEntry("trade", "wh.1", purchase, ["TLOT1", "wh.1"])])

    def allocation(record_id: str, draw: int) -> LedgerEntry:
        return LedgerEntry("allocation", record_id, {
            "schema": "tracepay.allocation/1", "trade_id": record_id, "line": 0,
            "holder": "m-retail-1", "product": "cabbage", "measure": "g", "amount": draw,
            "unmatched": 0, "draws": [{"lot_id": lot_id, "amount": draw}]}, [record_id, lot_id])

    publisher.publish([allocation("alloc:a", 600)])
    seq = publisher.publish([allocation("alloc:b", 600)])  # only 400 left
    nodes.wait_seq(seq)
    for org in ORGS:
        refused = requests.get(nodes.url(org) + "/v1/refused", timeout=5).json()["refused"]
        assert [r["record_id"] for r in refused if r["stream_seq"] == seq] == ["alloc:b"]
        assert "exceeds its remaining 400" in refused[-1]["reason"]
    same_heads(nodes)


def test_node_reader_fails_over(setup):  # noqa: ANN001
    from trace_ledger.node_client import NodeReader

    nodes, _ = setup
    dead = f"http://127.0.0.1:{free_port()}"
    reader = NodeReader([dead, nodes.url("retail_market")])
    head = reader.head()
    assert head["ledger_root"] == reader.ledger_root(head["height"])
    entry = reader.get("dev-node-1.1.s000001/private")
    assert entry is not None and entry.record["trade_id"] == "dev-node-1.1.s000001"
    assert reader.locate("dev-node-1.1.s000001")[0].record_id.startswith("dev-node-1.1")
    assert reader.proof("nothing-here") is None
    assert reader.block(1)["header"]["height"] == 1
    assert set(NodeReader([nodes.url(org) for org in ORGS]).public_keys()) == set(ORGS)


def test_node_reader_proof_is_signed_by_every_node_holding_the_block(setup):  # noqa: ANN001
    """One node serves the proof; its block carries each node's own signature, each valid
    under that node's key, so a verifier can require every organisation's. A node that
    does not answer adds none."""
    from trace_ledger.node_client import NodeReader

    nodes, publisher = setup
    nodes.wait_seq(publisher.publish(trade_entries(700)))
    tid = "dev-node-1.700.s000700"
    keys = {org: load_or_create_private_key(nodes.data(org) / "node_key.pem").public_key()
            for org in ORGS}
    proof = NodeReader([nodes.url(org) for org in ORGS]).proof(tid)
    assert proof is not None
    signatures = proof["block"]["signatures"]
    assert sorted(s["signer"] for s in signatures) == sorted(ORGS)
    for signature in signatures:
        assert verify_signature(keys[signature["signer"]], proof["block"]["header"],
                                signature["sig"])
    dead = f"http://127.0.0.1:{free_port()}"
    partial = NodeReader([nodes.url("retail_market"), dead]).proof(tid)
    assert [s["signer"] for s in partial["block"]["signatures"]] == ["retail_market"]


def test_verify_node_dirs_checks_each_nodes_own_key_and_agreement(setup):  # noqa: ANN001
    from trace_ledger.verify_jobs import verify_node_dirs

    nodes, publisher = setup
    nodes.wait_seq(publisher.publish(trade_entries(500)))
    keys = {org: load_or_create_private_key(nodes.data(org) / "node_key.pem").public_key()
            for org in ORGS}
    dirs = {org: nodes.data(org) for org in ORGS}
    report = verify_node_dirs(dirs, keys)
    assert report.ok, report.problems[:3]
    assert report.blocks == nodes.head(ORGS[0])["height"]
    wrong = {**keys, "retail_market": Ed25519PrivateKey.generate().public_key()}
    bad = verify_node_dirs(dirs, wrong)
    assert not bad.ok
    assert bad.first.node == "retail_market" and "does not verify" in bad.first.what


def test_cli_node_trust_and_verify_nodes(setup, tmp_path):  # noqa: ANN001
    import subprocess

    nodes, _ = setup
    pairs = [arg for org in ORGS for arg in ("--node", f"{org}={nodes.data(org)}")]
    trust = tmp_path / "node-trust.json"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    subprocess.run(tracepay_command("ledger", "node-trust", *pairs, "--out", str(trust)),
                   check=True, env=env, capture_output=True)
    ok = subprocess.run(tracepay_command("ledger", "verify-nodes", "--trust", str(trust), *pairs),
                        env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert '"ok": true' in ok.stdout


def test_kill_9_of_the_stream_leader_during_intake_stops_no_node(setup):  # noqa: ANN001
    """The node-process version of the sustained-intake drill: batches go on being
    published (each retried with its own id until acknowledged) while the stream leader's
    server is killed -9 and restarted; every node goes on following and ends with every
    entry once and the same root."""
    from trace_ledger.stream import StreamUnavailableError

    nodes, publisher = setup
    cluster = nodes.cluster
    before = same_heads(nodes)[ORGS[0]]
    leader = int(cluster.stream_state(0)["cluster"]["leader"].rsplit("-", 1)[1]) - 1
    seq = 0
    for n in range(600, 660):
        if n == 610:
            cluster.kill(leader)
        if n == 640:
            cluster.start_server(leader, wait=False)
        while True:
            try:
                seq = publisher.publish(trade_entries(n))
                break
            except StreamUnavailableError:
                time.sleep(0.2)
    nodes.wait_seq(seq)
    after = same_heads(nodes)[ORGS[0]]
    assert after["size"] == before["size"] + 2 * 60
    for org in ORGS:
        assert requests.get(nodes.url(org) + "/healthz", timeout=5).json()["following"]
    # The restarted server's replica of a consumer catches up on that consumer's next
    # acknowledgements (nats-server reports it "not current" until then): one more batch
    # gives every node's consumer some, then the server must be healthy again.
    nodes.wait_seq(publisher.publish(trade_entries(660)))
    cluster.wait_healthy([leader])
