"""The whole flow, as a market would run it: every service a real process, real broker.

``tracepay demo --headless`` charges sales on a headless terminal, shoppers pay at the
sandbox platform's checkout over HTTP, the gateway joins sales and payments into signed
trades, the bridge writes them to the three-node ledger, and the ledger is verified.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import requests
from ledger_files import edit_record, stored_leaves

from service_base.testing import tracepay_command

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # the whole demo as processes


def run_demo(tmp_path: Path, sales: int, *, timeout_s: int = 240,
             env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    completed = subprocess.run(
        tracepay_command("demo", "--headless", "--sales", str(sales), "--json",
                         "--data-dir", str(tmp_path / "demo"), "--timeout", str(timeout_s)),
        capture_output=True, text=True, timeout=timeout_s + 300,
        env={**os.environ, **(env or {})})
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON summary\nstdout:{completed.stdout[-3000:]}\nstderr:{completed.stderr[-3000:]}"
    return completed, json.loads(lines[-1])


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory):
    tmp_path = tmp_path_factory.mktemp("e2e")
    completed, summary = run_demo(tmp_path, 6)
    return tmp_path / "demo", completed, summary


def test_every_sale_is_paid_and_on_a_verified_ledger(demo_run):
    _data_dir, completed, summary = demo_run
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert summary["sales"] == 6
    assert summary["charged"] == 6
    assert summary["paid"] == 6
    assert summary["on_ledger"] == 6
    assert summary["ledger_verified"] is True
    assert summary["traced_to_farm"] == 6
    assert set(summary["supply_chain"]) == {"farm_to_wholesaler", "wholesaler_to_stall"}
    assert len(summary["trace_urls"]) == 6
    assert len(set(summary["trace_urls"])) == 6


def test_every_process_the_demo_started_is_gone(demo_run):
    data_dir, _completed, summary = demo_run
    port = summary["trace_urls"][0].split(":")[2].split("/")[0]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    assert (data_dir / "bridge").is_dir()


def test_a_tampered_ledger_record_is_named_by_verify(demo_run):
    data_dir, _completed, _summary = demo_run
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


def test_sigterm_stops_every_service_the_demo_started(tmp_path):
    """A supervisor's SIGTERM unwinds the demo like Ctrl-C: no service outlives it."""
    import os
    import signal
    import time

    process = subprocess.Popen(
        tracepay_command("demo", "--no-terminal", "--data-dir", str(tmp_path / "demo")),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    urls: list[str] = []
    deadline = time.monotonic() + 120
    for line in process.stdout:
        urls += [word for word in line.split() if word.startswith("http://127.0.0.1:")]
        if "Ctrl-C" in line or time.monotonic() > deadline:
            break
    assert len(urls) >= 4, urls
    for url in urls:
        base = "/".join(url.split("/")[:3])
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=60) != 0
    for url in urls:
        base = "/".join(url.split("/")[:3])
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{base}/healthz", timeout=2)


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


def test_the_demos_epcis_export_matches_gs1s_generator_and_schema(demo_run):
    """Every chain the demo put on the ledger exports as EPCIS that GS1's reference hash
    generator gives the same event ids and GS1's JSON Schema accepts."""
    import sqlite3

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from epcis_reference import reference_ids
    from epcis_schema import errors

    from ledger_bridge.app import create_app
    from ledger_bridge.reader import ReaderService

    bridge_dir = demo_run[0] / "bridge"
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
