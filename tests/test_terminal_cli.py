"""``tracepay terminal``: enrolment over HTTP, and the simulator's JSON lines over a real broker.

The claim is answered by a small HTTP server speaking docs/protocol.md §1 on loopback;
the simulator runs as its own process against the real Mosquitto fixture, with a
responder that plays the gateway's part on MQTT (MACed payment results).
"""

from __future__ import annotations

import json
import logging
import stat
import subprocess
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from flask import Flask, jsonify
from werkzeug.serving import make_server

from market_protocol import PAYMENT_RESULT_SCHEMA, canonical_json, mac_record
from market_protocol.topics import results_topic, sales_topic
from pos_terminal.cli import terminal
from pos_terminal.testing import claim_answer, enrol_offline
from service_base.testing import free_port, tracepay_command


@pytest.fixture
def claim_server():
    app = Flask("claims")
    codes = {"GOODCODE1": "T-CLI-1"}
    used: set[str] = set()

    @app.post("/v1/enrolments/<code>/claim")
    def claim(code):
        if code not in codes:
            return jsonify(error="unknown_code", message="no such enrolment code"), 404
        if code in used:
            return jsonify(error="code_used", message="this code was already claimed"), 410
        used.add(code)
        return jsonify(claim_answer(codes[code], gateway_url="http://127.0.0.1:8000"))

    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True,
                              kwargs={"poll_interval": 0.05})  # quick shutdown
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


def test_enrol_stores_key_privately_and_never_prints_it(claim_server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    result = CliRunner().invoke(terminal, ["--headless", "--data-dir", str(tmp_path),
                                           "--enrol-code", "GOODCODE1", "--gateway-url",
                                           claim_server, "--drain-timeout", "0"])
    assert result.exit_code == 0, result.output
    key_hex = (tmp_path / "device.key").read_text().strip()
    assert len(key_hex) == 64
    assert stat.S_IMODE((tmp_path / "device.key").stat().st_mode) == 0o600
    config = json.loads((tmp_path / "terminal.json").read_text())
    assert config["device_id"] == "T-CLI-1"
    assert config["gateway_url"] == "http://127.0.0.1:8000"
    assert key_hex not in result.output and key_hex not in caplog.text
    assert config["mqtt_password"] not in caplog.text

    again = CliRunner().invoke(terminal, ["--headless", "--data-dir", str(tmp_path),
                                          "--enrol-code", "GOODCODE1", "--gateway-url",
                                          claim_server])
    assert again.exit_code == 2 and "already enrolled as T-CLI-1" in again.output


@pytest.mark.parametrize("code, gateway, message", [
    ("NOSUCHCODE", None, "enrolment refused (404): no such enrolment code"),
    ("bad code!", None, "enrolment code looks wrong"),
    ("GOODCODE1", "http://127.0.0.1:9", "cannot reach the gateway"),
])
def test_enrol_failures_say_why(claim_server, tmp_path, code, gateway, message):
    result = CliRunner().invoke(terminal, ["--headless", "--data-dir", str(tmp_path),
                                           "--enrol-code", code, "--gateway-url",
                                           gateway or claim_server])
    assert result.exit_code == 1
    assert message in result.output
    assert not (tmp_path / "device.key").exists()


def test_used_code_is_refused(claim_server, tmp_path):
    args = ["--headless", "--enrol-code", "GOODCODE1", "--gateway-url", claim_server,
            "--drain-timeout", "0"]
    assert CliRunner().invoke(terminal, [*args, "--data-dir", str(tmp_path / "a")]).exit_code == 0
    result = CliRunner().invoke(terminal, [*args, "--data-dir", str(tmp_path / "b")])
    assert result.exit_code == 1 and "(410): this code was already claimed" in result.output


def test_unenrolled_terminal_says_how_to_enrol(tmp_path):
    result = CliRunner().invoke(terminal, ["--headless", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "--enrol-code CODE --gateway-url URL" in result.output
    result = CliRunner().invoke(terminal, ["--headless", "--data-dir", str(tmp_path),
                                           "--enrol-code", "GOODCODE1"])
    assert result.exit_code == 2 and "--enrol-code needs --gateway-url" in result.output


class PayingGateway:
    """Answers every sale on the broker with a MACed 'paid' result, as the gateway would."""

    def __init__(self, port: int, device_id: str, key: bytes) -> None:
        self.key, self.device_id = key, device_id
        self.ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311,
                                  client_id=f"gw-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, *a: c.subscribe(sales_topic(device_id), qos=1)
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_message = self._sale
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.ready.wait(10)

    def _sale(self, client, userdata, message):
        sale = json.loads(message.payload)
        result = {"schema": PAYMENT_RESULT_SCHEMA, "payment_id": f"p{sale['seq']}",
                  "device_id": self.device_id, "seq": sale["seq"], "status": "paid",
                  "amount_fen": sale["total_fen"], "currency": "CNY", "channel": "sandbox",
                  "channel_txn_id": "x", "trace_code": None, "updated_at_ms": 1, "mac": ""}
        result["mac"] = mac_record(result, self.key)
        client.publish(results_topic(self.device_id), canonical_json.dumps(result), qos=1)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_simulator_prints_one_json_line_per_event(mqtt_broker, tmp_path):
    device_id = f"T-SIM-{uuid.uuid4().hex[:6]}"
    enrol_offline(tmp_path, device_id, mqtt_port=mqtt_broker.port)
    key = bytes.fromhex((tmp_path / "device.key").read_text().strip())
    gateway = PayingGateway(mqtt_broker.port, device_id, key)
    try:
        done = subprocess.run(
            tracepay_command("terminal", "--headless", "--data-dir", str(tmp_path),
                             "--simulate-sales", "4", "--interval-ms", "10",
                             "--wait-results", "60", "--seed", "7"),
            capture_output=True, text=True, timeout=120)
    finally:
        gateway.close()
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    charged = [e for e in events if e["event"] == "charged"]
    results = [e for e in events if e["event"] == "result"]
    assert [e["seq"] for e in charged] == [1, 2, 3, 4]
    assert set(charged[0]) == {"event", "sale_id", "seq", "total_fen", "qr_url", "trace_code"}
    assert all(e["qr_url"].startswith("http://127.0.0.1:9/q/") for e in charged)
    assert sorted((e["sale_id"], e["seq"]) for e in results) == \
        sorted((e["sale_id"], e["seq"]) for e in charged)
    assert {e["status"] for e in results} == {"paid"}
    assert events[-1]["event"] == "done"
    assert {k: events[-1][k] for k in ("charged", "paid", "queued")} == \
        {"charged": 4, "paid": 4, "queued": 0}


def test_simulator_with_broker_down_reports_queued_sales(fresh_broker, tmp_path):
    enrol_offline(tmp_path, "T-SIM-DOWN", mqtt_port=fresh_broker.port)
    fresh_broker.stop()
    done = subprocess.run(
        tracepay_command("terminal", "--headless", "--data-dir", str(tmp_path),
                         "--simulate-sales", "3", "--wait-results", "0.2",
                         "--drain-timeout", "0.2"),
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    last = json.loads(done.stdout.splitlines()[-1])
    assert {k: last[k] for k in ("event", "charged", "paid", "queued")} == \
        {"event": "done", "charged": 3, "paid": 0, "queued": 3}


def test_close_day_refuses_with_unsent_sales_then_forced(fresh_broker, tmp_path):
    enrol_offline(tmp_path, "T-Z", mqtt_port=fresh_broker.port)
    fresh_broker.stop()
    args = ["--headless", "--data-dir", str(tmp_path), "--drain-timeout", "0"]
    runner = CliRunner()
    assert runner.invoke(terminal, [*args, "--simulate-sales", "2"]).exit_code == 0
    refused = runner.invoke(terminal, [*args, "--close-day"])
    assert refused.exit_code == 3
    event = json.loads(refused.output.splitlines()[-1])
    assert event["event"] == "close_day_refused" and event["unsent"] == 2
    forced = runner.invoke(terminal, [*args, "--close-day", "--force"])
    assert forced.exit_code == 0, forced.output
    report = json.loads(forced.output.splitlines()[-1])
    assert report["event"] == "z_report" and report["sales"] == 2 and report["unsent"] == 2
    assert (tmp_path / "reports").is_dir() and report["path"].endswith(".png")


def test_scanned_claim_url_carries_the_gateway(claim_server, tmp_path):
    result = CliRunner().invoke(terminal, [
        "--headless", "--data-dir", str(tmp_path), "--drain-timeout", "0",
        "--enrol-code", f"{claim_server}/v1/enrolments/GOODCODE1/claim"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "terminal.json").read_text())["device_id"] == "T-CLI-1"


@pytest.mark.parametrize("text, gateway, expected", [
    ("K7Q2X9", "http://gw:8000/", ("http://gw:8000", "K7Q2X9")),
    ("http://gw:8000/v1/enrolments/K7Q2X9/claim", None, ("http://gw:8000", "K7Q2X9")),
    ("https://market.example/tp/v1/enrolments/K7Q2X9", None,
     ("https://market.example/tp", "K7Q2X9")),
])
def test_parse_enrolment_input(text, gateway, expected):
    from pos_terminal.provisioning import parse_enrolment_input

    assert parse_enrolment_input(text, gateway) == expected


@pytest.mark.parametrize("text, gateway, message", [
    ("K7Q2X9", None, "needs the gateway's address"),
    ("K7 Q2", "http://gw", "looks wrong"),
    ("http://gw/v1/other/K7Q2X9", None, "needs the gateway's address"),
])
def test_parse_enrolment_input_refusals(text, gateway, message):
    from pos_terminal.provisioning import ProvisioningError, parse_enrolment_input

    with pytest.raises(ProvisioningError, match=message):
        parse_enrolment_input(text, gateway)


def test_every_terminal_option_is_documented():
    from pathlib import Path

    docs = (Path(__file__).parent.parent / "docs" / "terminal.md").read_text()
    for param in terminal.params:
        for flag in param.opts:
            assert f"`{flag}" in docs, f"{flag} is missing from docs/terminal.md"


def test_window_mode_hands_the_options_to_the_ui(tmp_path, monkeypatch):
    import pos_terminal.ui.app as ui_app

    enrol_offline(tmp_path, "T-WIN")
    calls = []
    monkeypatch.setattr(ui_app, "run", calls.append)
    result = CliRunner().invoke(terminal, ["--data-dir", str(tmp_path), "--scale", "simulated",
                                           "--lang", "en", "--no-customer-display"])
    assert result.exit_code == 0, result.output
    assert calls == [{"data_dir": str(tmp_path), "scale": "simulated", "lang": "en",
                      "customer_display": False}]
    assert set(calls[0]) <= set(ui_app.UI_OPTIONS)
