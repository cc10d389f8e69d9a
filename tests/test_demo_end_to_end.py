"""The whole flow, as a market would run it: every service a real process, real broker.

``tracepay demo --headless`` charges sales on a headless terminal, shoppers pay at the
sandbox platform's checkout over HTTP, the gateway joins sales and payments into signed
trades, the bridge publishes them to the three-server NATS JetStream cluster, each
organisation's node process follows the stream and cuts its blocks, and the nodes are
compared and verified against their pinned keys. ``--solo`` runs the same flow on the
in-process ledger.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests
from ledger_files import edit_record, stored_leaves

from service_base.testing import tracepay_command

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # the whole demo as processes


def run_demo(tmp_path: Path, sales: int, *, timeout_s: int = 240, solo: bool = False,
             env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    completed = subprocess.run(
        tracepay_command("demo", "--headless", "--sales", str(sales), "--json",
                         "--data-dir", str(tmp_path / "demo"), "--timeout", str(timeout_s),
                         *(["--solo"] if solo else [])),
        capture_output=True, text=True, timeout=timeout_s + 300,
        env={**os.environ, **(env or {})})
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON summary\nstdout:{completed.stdout[-3000:]}\nstderr:{completed.stderr[-3000:]}"
    return completed, json.loads(lines[-1])


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory):
    """The default demo: JetStream ordering, one node process per organisation."""
    tmp_path = tmp_path_factory.mktemp("e2e")
    completed, summary = run_demo(tmp_path, 6)
    return tmp_path / "demo", completed, summary


@pytest.fixture(scope="module")
def solo_run(tmp_path_factory: pytest.TempPathFactory):
    """``tracepay demo --solo``: the ledger inside the bridge's process."""
    tmp_path = tmp_path_factory.mktemp("e2e-solo")
    completed, summary = run_demo(tmp_path, 6, solo=True)
    return tmp_path / "demo", completed, summary


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("run", ["demo_run", "solo_run"])
def test_every_sale_is_paid_and_on_a_verified_ledger(run, request):
    _data_dir, completed, summary = request.getfixturevalue(run)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert summary["ordering"] == ("solo" if run == "solo_run" else "jetstream")
    assert summary["sales"] == 6
    assert summary["charged"] == 6
    assert summary["paid"] == 6
    assert summary["on_ledger"] == 6
    assert summary["ledger_verified"] is True
    assert summary["traced_to_farm"] == 6
    assert set(summary["supply_chain"]) == {"farm_to_wholesaler", "wholesaler_to_stall"}
    assert len(summary["trace_urls"]) == 6
    assert len(set(summary["trace_urls"])) == 6


def test_the_jetstream_demo_ran_three_node_processes_that_agree(demo_run):
    """Three organisations' nodes, each its own process with its own directory and key,
    alive while the run was summarised, holding the same blocks and the same root; three
    nats-servers ordered them."""
    from market_protocol import ORGS

    data_dir, _completed, summary = demo_run
    nodes = summary["ledger_nodes"]
    assert [node["org"] for node in nodes] == list(ORGS)
    assert len({node["pid"] for node in nodes}) == 3
    assert all(isinstance(node["pid"], int) and node["alive"] is True for node in nodes)
    for node in nodes:
        assert node["url"].startswith("http://127.0.0.1:")
        assert node["data_dir"] == str(data_dir / "nodes" / node["org"])
        assert (Path(node["data_dir"]) / "node_key.pem").is_file()
        assert (Path(node["data_dir"]) / "ledger.sqlite").is_file()
    assert summary["ledger_roots_equal"] is True
    assert len({(n["height"], n["block_hash"], n["root"]) for n in nodes}) == 1
    assert nodes[0]["height"] >= 3 and nodes[0]["stream_seq"] >= 3
    assert len(summary["nats_servers"]) == 3
    assert all(server["url"].startswith("nats://127.0.0.1:") for server in summary["nats_servers"])
    trust = json.loads((data_dir / "ledger-trust.json").read_text())
    assert set(trust["node_keys"]) == set(ORGS)
    assert not (data_dir / "bridge" / "ledger").exists()  # the bridge kept no ledger


def test_the_solo_demo_runs_no_nodes(solo_run):
    data_dir, _completed, summary = solo_run
    assert "ledger_nodes" not in summary and "nats_servers" not in summary
    assert (data_dir / "bridge" / "ledger").is_dir()
    assert not (data_dir / "nodes").exists()


def test_without_nats_server_the_demo_says_to_install_it_or_pass_solo(tmp_path):
    completed = subprocess.run(
        tracepay_command("demo", "--headless", "--sales", "1", "--json", "--data-dir",
                         str(tmp_path / "demo")),
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "TRACEPAY_NATS_SERVER": str(tmp_path / "no-nats-server")})
    assert completed.returncode == 2
    assert "nats-server not found" in completed.stderr and "--solo" in completed.stderr


@pytest.mark.parametrize("run", ["demo_run", "solo_run"])
def test_every_process_the_demo_started_is_gone(run, request):
    data_dir, _completed, summary = request.getfixturevalue(run)
    ports = [summary["trace_urls"][0].split(":")[2].split("/")[0]]
    ports += [node["url"].rsplit(":", 1)[1] for node in summary.get("ledger_nodes", [])]
    for port in ports:
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    pids = [p["pid"] for p in summary.get("ledger_nodes", []) + summary.get("nats_servers", [])]
    assert not [pid for pid in pids if _alive(pid)]
    assert (data_dir / "bridge").is_dir()


def test_a_tampered_node_record_is_named_by_verify_nodes(demo_run):
    data_dir, _completed, summary = demo_run
    node = data_dir / "nodes" / "retail_market" / "ledger.sqlite"
    record_id = next(leaf[2] for leaf in stored_leaves(node) if leaf[3] == "trade")
    edit_record(node, record_id, lambda body: body.replace(b'"confirmed_at_ms":',
                                                           b'"confirmed_at_ms":1', 1))
    pairs = [arg for n in summary["ledger_nodes"]
             for arg in ("--node", f"{n['org']}={n['data_dir']}")]
    completed = subprocess.run(tracepay_command("ledger", "verify-nodes", "--trust",
                                                str(data_dir / "ledger-trust.json"), *pairs),
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode != 0
    assert record_id in completed.stdout + completed.stderr


def test_a_tampered_ledger_record_is_named_by_verify(solo_run):
    data_dir, _completed, _summary = solo_run
    bridge_dir = data_dir / "bridge"
    node = bridge_dir / "ledger" / "retail_market" / "ledger.sqlite"
    record_id = next(leaf[2] for leaf in stored_leaves(node) if leaf[3] == "trade")

    def forge(body: bytes) -> bytes:
        assert b'"confirmed_at_ms":' in body
        return body.replace(b'"confirmed_at_ms":', b'"confirmed_at_ms":1', 1)

    edit_record(node, record_id, forge)
    completed = subprocess.run(tracepay_command("ledger", "verify", "--data-dir", str(bridge_dir),
                                                "--trust", str(data_dir / "ledger-trust.json")),
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode != 0
    assert record_id in completed.stdout + completed.stderr


@pytest.fixture(scope="module")
def interactive(tmp_path_factory: pytest.TempPathFactory):
    """``tracepay demo --no-terminal`` up and waiting for Ctrl-C: (process, data dir, every
    http URL it printed, the pids of its nats-servers and ledger nodes)."""
    data_dir = tmp_path_factory.mktemp("interactive") / "demo"
    process = subprocess.Popen(tracepay_command("demo", "--no-terminal", "--data-dir",
                                                str(data_dir)),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    urls: list[str] = []
    pids: list[int] = []
    deadline = time.monotonic() + 120
    try:
        for line in process.stdout:
            words = line.split()
            urls += [word for word in words if word.startswith("http://127.0.0.1:")]
            if words[:2] in (["nats-server", "pid"], ["ledger", "node"]) and "pid" in words:
                pids.append(int(words[words.index("pid") + 1]))
            if "Ctrl-C" in line or time.monotonic() > deadline:
                break
        yield process, data_dir, urls, pids
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)


def test_a_shoppers_phone_verifies_the_trace_against_the_pinned_node_keys(interactive):
    """The consumer's trace page of the farm -> wholesaler -> stall trade, checked by the
    page's own verify.js (run by Node.js): every block signed by all three organisations'
    nodes, each signature valid under the key pinned from that node's key file."""
    import sqlite3

    from node_verify import node_binary, proof_data, verify_with_node

    if node_binary() is None:
        pytest.skip("Node.js is not installed")
    _process, data_dir, urls, _pids = interactive
    consumer = next(url for url in urls if "/v1/" not in url and "/manager" not in url
                    and requests.get(url + "/healthz", timeout=5).json().get("service")
                    == "consumer")
    with sqlite3.connect(data_dir / "bridge" / "bridge.sqlite") as db:
        codes = [row[0] for row in db.execute("SELECT trace_code FROM trades")]
    assert len(codes) == 2  # the farm's sale to the wholesaler, the wholesaler's to the stall
    for code in codes:
        # Verified once every organisation's node has cut and signed the blocks (a node
        # may still be catching up on a busy machine just after the trades were made).
        deadline = time.monotonic() + 60
        while True:
            page = requests.get(f"{consumer}/trace/{code}?lang=en", timeout=10)
            assert page.status_code == 200
            data = proof_data(page.text)
            checked = verify_with_node(data)
            if checked["verdict"]["state"] == "verified" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert checked["verdict"] == {"state": "verified", "problems": [], "pending": False}, \
            checked
        assert set(data["keys"]) == {"production_base", "wholesale_market", "retail_market"}
        for proof in data["proofs"]:
            assert {s["signer"] for s in proof["block"]["signatures"]} == set(data["keys"])


def test_sigterm_stops_every_service_the_demo_started(interactive):
    """A supervisor's SIGTERM unwinds the demo like Ctrl-C: no service outlives it, nor a
    nats-server or a ledger node."""
    import signal

    process, _data_dir, urls, pids = interactive
    assert len(urls) >= 7, urls  # four services and three ledger nodes
    assert len(pids) == 6, pids  # three nats-servers and three ledger nodes
    assert all(_alive(pid) for pid in pids)
    for url in urls:
        base = "/".join(url.split("/")[:3])
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=60) != 0
    for url in urls:
        base = "/".join(url.split("/")[:3])
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{base}/healthz", timeout=2)
    assert not [pid for pid in pids if _alive(pid)]


def test_a_thousand_sales_all_paid_on_a_verified_ledger(tmp_path: Path) -> None:
    """At volume: a thousand shoppers, each from its own loopback address, under the
    gateway's production rate limits; the run ends when every sale is settled."""
    completed, summary = run_demo(tmp_path, 1000, timeout_s=400)
    assert completed.returncode == 0, (summary.get("failure_reasons"), completed.stderr[-3000:])
    assert summary["ended"] == "all_settled"
    assert summary["charged"] == summary["paid"] == summary["on_ledger"] == 1000
    assert summary["traced_to_farm"] == 1000
    assert summary["failed"] == 0 and summary["failures"] == []
    assert summary["ledger_verified"] is True and summary["ok"] is True
    assert summary["paid_per_s"] > 0
    latency = summary["charge_to_ledger_ms"]
    assert 0 < latency["p50"] <= latency["p99"]


def test_shoppers_who_cannot_pay_end_the_run_at_once_with_their_reason(
        tmp_path: Path) -> None:
    """Only 3 of 8 codes may be scanned (the terminal's limit, set for this run): the
    other 5 shoppers are refused for an hour, so the demo stops as soon as they give up
    instead of waiting out its timeout, and says why, sale by sale."""
    completed, summary = run_demo(tmp_path, 8, timeout_s=3000, env={
        "TRACEPAY_GATEWAY_SCAN_LIMIT_PER_DEVICE": "3/hour"})
    assert completed.returncode == 1
    assert summary["ended"] == "all_settled"
    assert summary["paid"] == summary["on_ledger"] == 3
    assert summary["failed"] == 5 and summary["ok"] is False
    assert {f["step"] for f in summary["failures"]} == {"scan"}
    assert {f["http_status"] for f in summary["failures"]} == {429}
    assert all(f["reason"].startswith("rate_limited") for f in summary["failures"])
    assert "5 of 8 sales not paid" in completed.stderr
    assert "rate_limited" in completed.stderr


def test_the_demos_epcis_export_matches_gs1s_generator_and_schema(solo_run):
    """Every chain the demo put on the ledger exports as EPCIS that GS1's reference hash
    generator gives the same event ids and GS1's JSON Schema accepts."""
    import sqlite3

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from epcis_reference import reference_ids
    from epcis_schema import errors

    from ledger_bridge.app import create_app
    from ledger_bridge.reader import ReaderService

    bridge_dir = solo_run[0] / "bridge"
    with sqlite3.connect(bridge_dir / "bridge.sqlite") as db:
        codes = [row[0] for row in db.execute("SELECT trace_code FROM trades")]
    assert len(codes) >= 8  # the farm's and the wholesaler's sales, then the shoppers'
    service = ReaderService(bridge_dir, writer_url="http://127.0.0.1:9",
                            gateway_key=Ed25519PrivateKey.generate().public_key())
    try:
        client = create_app(service).test_client()
        steps = set()
        for code in codes:
            document = client.get(f"/v1/epcis?trace_code={code}").json
            events = document["epcisBody"]["eventList"]
            assert reference_ids(document) == [e["eventID"] for e in events], code
            assert errors(document) == [], code
            steps.update(e["bizStep"] for e in events)
        assert {"commissioning", "shipping", "receiving"} <= steps
    finally:
        service.close()
