"""Day operations: history, void, refund requests to the gateway, Z report and close-day."""

from __future__ import annotations

import io
import threading
import time
import uuid

import pytest
from flask import Flask, jsonify, request
from PIL import Image
from werkzeug.serving import make_server

from market_protocol import PAYMENT_RESULT_SCHEMA, derive_device_key, mac_record, verify_record_mac
from pos_terminal import DEFAULT_PRODUCTS, Cart, Terminal, TerminalError, UnsentSales
from pos_terminal.day_report import day_start_ms
from pos_terminal.refunds import REFUND_SCHEMA
from pos_terminal.testing import TEST_MASTER_KEY, enrol_offline
from service_base.testing import free_port

DAY_MS = 86_400_000


def cart(weight=1000, product=0):
    c = Cart()
    c.add(DEFAULT_PRODUCTS[product], weight_g=weight)
    return c


def pay(term: Terminal, sale: dict, status="paid", refunded_fen=0):
    key = term.device_key
    result = {"schema": PAYMENT_RESULT_SCHEMA, "payment_id": f"p{sale['seq']}",
              "device_id": term.device_id, "seq": sale["seq"], "status": status,
              "amount_fen": sale["total_fen"], "refunded_fen": refunded_fen, "currency": "CNY",
              "channel": "sandbox", "channel_txn_id": "t", "trace_code": None,
              "updated_at_ms": time.time_ns() // 1_000_000, "mac": ""}
    result["mac"] = mac_record(result, key)
    term.outbox.record_result(result)


@pytest.fixture
def terminal(tmp_path):
    enrol_offline(tmp_path, "T-DAY", gateway_url="http://127.0.0.1:9", merchant_name="王家蔬菜")
    with Terminal.open(tmp_path) as term:
        yield term


def test_today_sales_excludes_yesterday(terminal):
    now = time.time_ns() // 1_000_000
    terminal._clock = lambda: day_start_ms(now) - 60_000  # a minute before midnight
    yesterday = terminal.charge(cart(), render_png=False)
    terminal._clock = lambda: now
    today = [terminal.charge(cart(), render_png=False) for _ in range(2)]
    assert [s.sale_id for s in terminal.today_sales()] == [c.sale_id for c in today]
    assert yesterday.sale_id not in {s.sale_id for s in terminal.today_sales()}


def test_void_unpaid_only(terminal):
    unpaid = terminal.charge(cart(), render_png=False)
    paid = terminal.charge(cart(), render_png=False)
    pay(terminal, paid.sale)
    voided = terminal.void(unpaid.sale_id)
    assert voided.sale_status == "void" and voided.record["status"] == "void"
    key = derive_device_key(TEST_MASTER_KEY, "T-DAY", 1)
    assert verify_record_mac(voided.record, key)
    assert voided.record["seq"] == unpaid.seq and voided.record["sale_id"] == unpaid.sale_id
    assert terminal.void(unpaid.sale_id).sale_status == "void"  # idempotent
    with pytest.raises(TerminalError, match="request a refund instead"):
        terminal.void(paid.sale_id)
    with pytest.raises(TerminalError, match="no sale"):
        terminal.void("nope")


def test_voided_sale_is_published_again_marked_void(mqtt_broker, tmp_path):
    import json

    import paho.mqtt.client as mqtt

    from market_protocol.topics import sales_topic

    device_id = f"T-V-{uuid.uuid4().hex[:6]}"
    enrol_offline(tmp_path, device_id, mqtt_port=mqtt_broker.port)
    seen, ready = [], threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.on_connect = lambda c, *a: c.subscribe(sales_topic(device_id), qos=1)
    client.on_subscribe = lambda *a: ready.set()
    client.on_message = lambda c, u, m: seen.append(json.loads(m.payload))
    client.connect("127.0.0.1", mqtt_broker.port)
    client.loop_start()
    assert ready.wait(10)
    with Terminal.open(tmp_path) as term:
        term.start()
        charged = term.charge(cart(), render_png=False)
        deadline = time.monotonic() + 20
        while term.outbox_counts()["sent"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        term.void(charged.sale_id)
        while (len(seen) < 2 or term.outbox_counts()["queued"]) and time.monotonic() < deadline:
            time.sleep(0.02)
    client.loop_stop()
    assert [(m["sale_id"], m["seq"], m["status"]) for m in seen] == [
        (charged.sale_id, charged.seq, "open"), (charged.sale_id, charged.seq, "void")]


@pytest.fixture
def refund_gateway():
    """The gateway's refund route as docs/protocol.md describes it, on loopback."""
    app = Flask("refunds")
    state = {"mode": "accept", "received": []}

    @app.post("/v1/devices/<device_id>/refunds")
    def refunds(device_id):
        if state["mode"] == "missing":
            return jsonify(error="not_found", message="no such route"), 404
        body = request.get_json()
        key = derive_device_key(TEST_MASTER_KEY, device_id, body["key_version"])
        if body.get("schema") != REFUND_SCHEMA or not verify_record_mac(body, key):
            return jsonify(error="bad_mac", message="refund request MAC does not verify"), 403
        if state["mode"] == "refuse":
            return jsonify(error="refund_too_large", message="more than was paid"), 422
        state["received"].append(body)
        return jsonify(refund_no=body["refund_no"], status="accepted"), 201

    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True,
                     kwargs={"poll_interval": 0.05}).start()  # quick shutdown
    state["url"] = f"http://127.0.0.1:{port}"
    yield state
    server.shutdown()


def test_refund_goes_to_the_gateway_with_a_valid_mac(tmp_path, refund_gateway):
    enrol_offline(tmp_path, "T-REF", gateway_url=refund_gateway["url"])
    with Terminal.open(tmp_path) as term:
        sale = term.charge(cart(2000), render_png=False).sale
        pay(term, sale)
        answer = term.request_refund(sale["sale_id"], 100, "bruised tomatoes")
    assert answer["state"] == "sent"
    (body,) = refund_gateway["received"]
    assert set(body) == {"schema", "refund_no", "device_id", "sale_id", "amount_fen", "reason",
                         "requested_at_ms", "key_version", "mac"}
    assert {k: body[k] for k in ("refund_no", "sale_id", "amount_fen", "reason")} == {
        "refund_no": answer["refund_no"], "sale_id": sale["sale_id"],
        "amount_fen": 100, "reason": "bruised tomatoes"}


def test_refund_is_queued_while_the_gateway_lacks_the_route_then_sent(tmp_path, refund_gateway):
    from pos_terminal.refunds import send_queued_requests

    enrol_offline(tmp_path, "T-REF2", gateway_url=refund_gateway["url"])
    refund_gateway["mode"] = "missing"
    with Terminal.open(tmp_path) as term:
        sale = term.charge(cart(2000), render_png=False).sale
        pay(term, sale)
        answer = term.request_refund(sale["sale_id"], 600, "wrong item")
        assert answer["state"] == "queued"
        refund_gateway["mode"] = "accept"
        assert send_queued_requests(term) == 1
        assert term.outbox.request(answer["refund_no"])["state"] == "sent"
        assert send_queued_requests(term) == 0  # sent once, never again
    assert [b["refund_no"] for b in refund_gateway["received"]] == [answer["refund_no"]]


def test_refund_refused_by_the_gateway_is_not_retried(tmp_path, refund_gateway):
    enrol_offline(tmp_path, "T-REF3", gateway_url=refund_gateway["url"])
    refund_gateway["mode"] = "refuse"
    with Terminal.open(tmp_path) as term:
        sale = term.charge(cart(2000), render_png=False).sale
        pay(term, sale)
        answer = term.request_refund(sale["sale_id"], 600, "wrong item")
        assert answer["state"] == "refused" and "refund_too_large" in answer["answer"]
        assert term.outbox.queued_requests() == []


def test_refund_queued_when_gateway_unreachable(terminal):
    sale = terminal.charge(cart(2000), render_png=False).sale
    pay(terminal, sale)
    answer = terminal.request_refund(sale["sale_id"], 600, "customer changed mind")
    assert answer["state"] == "queued" and "unreachable" in answer["answer"]


@pytest.mark.parametrize("status, amount, reason, message", [
    (None, 100, "x", "unpaid: only a paid sale"),
    ("failed", 100, "x", "failed: only a paid sale"),
    ("paid", 0, "x", "positive number of fen"),
    ("paid", 601, "x", "at most 600 fen"),
    ("paid", 100, "  ", "give a reason"),
])
def test_refund_refusals(terminal, status, amount, reason, message):
    sale = terminal.charge(cart(2000), render_png=False).sale  # 600 fen
    if status:
        pay(terminal, sale, status)
    with pytest.raises(TerminalError, match=message):
        terminal.request_refund(sale["sale_id"], amount, reason)


def test_z_report_and_close_day_warning(terminal):
    sales = [terminal.charge(cart(1000, product=i), render_png=False) for i in range(4)]
    pay(terminal, sales[0].sale)
    pay(terminal, sales[1].sale, "partially_refunded", refunded_fen=100)
    terminal.void(sales[3].sale_id)
    with pytest.raises(UnsentSales, match="4 sale\\(s\\) of today are not uploaded") as caught:
        terminal.close_day()
    assert caught.value.count == 4
    report = terminal.close_day(force=True)
    summary = report.summary
    assert (summary["sales"], summary["paid"], summary["unpaid"], summary["void"]) == (3, 2, 1, 1)
    assert summary["paid_fen"] == sales[0].total_fen + sales[1].total_fen
    assert summary["refunded_fen"] == 100
    assert summary["net_fen"] == summary["paid_fen"] - 100
    assert summary["unpaid_fen"] == sales[2].total_fen
    assert set(summary["products"]) == {DEFAULT_PRODUCTS[0].code, DEFAULT_PRODUCTS[1].code}
    assert summary["products"][DEFAULT_PRODUCTS[0].code]["weight_g"] == 1000
    image = Image.open(io.BytesIO(report.png))
    assert image.format == "PNG" and image.size[0] == 576
    assert report.path.read_bytes() == report.png and report.path.name.startswith("z-")

    terminal.outbox.mark_sent(s.seq for s in sales)
    assert terminal.close_day().summary["unsent"] == 0
