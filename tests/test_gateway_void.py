"""Voids (docs/protocol.md section 2a) on a real Mosquitto: a sale re-sent with
``"status": "void"`` is a status change, its QR is refused, a pending order is closed, and
a payment that still arrives is kept and flagged for refund."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

import pytest
import requests
from test_gateway_mqtt import Listener, _link, _wait
from test_gateway_support import (  # noqa: F401 - fixtures
    MANAGER,
    ServedGateway,
    pay_at_checkout,
    platform,
)

from aggregation_gateway.sales_intake import SaleRejected, accept_sale
from market_protocol import mac_record, new_nonce
from market_protocol.topics import results_topic, sales_topic
from pos_terminal.sale_record import build_sale, new_sale_id, sale_qr_url, with_status


@pytest.fixture
def gw(tmp_path: Path, platform, mqtt_broker) -> ServedGateway:  # noqa: F811
    with ServedGateway(tmp_path, platform.url, mqtt_host=mqtt_broker.host,
                       mqtt_port=mqtt_broker.port) as served:
        yield served


def _sale_row(gw: ServedGateway, sale: dict) -> dict:
    row = gw.gateway.db.conn.execute(
        "SELECT * FROM sales WHERE device_id = ? AND seq = ? AND sale_id = ?",
        (sale["device_id"], sale["seq"], sale["sale_id"])).fetchone()
    return dict(row) if row else {}


def _manager_payments(gw: ServedGateway) -> dict[str, dict]:
    browser = requests.Session()
    browser.trust_env = False
    page = browser.get(f"{gw.url}/manager/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    browser.post(f"{gw.url}/manager/login", data={
        "username": MANAGER[0], "password": MANAGER[1], "csrf_token": csrf})
    payments = browser.get(f"{gw.url}/manager/payments.json")
    assert payments.status_code == 200, payments.text
    return {p["payment_id"]: p for p in payments.json()["payments"]}


def test_void_over_mqtt_marks_the_sale_and_its_qr_is_refused(gw: ServedGateway,
                                                             mqtt_broker) -> None:
    terminal = gw.terminal()
    listener = Listener(mqtt_broker)
    link = _link(gw)
    try:
        # The record and QR exactly as pos_terminal makes them ("status": "open").
        sale = build_sale(device_id=terminal.device_id, key_version=terminal.key_version,
                          device_key=terminal.key, seq=1,
                          sale_id=new_sale_id(terminal.device_id, 1),
                          lines=[terminal.line("cabbage", "jin", 380, weight_g=1250)],
                          created_at_ms=int(time.time() * 1000), nonce=new_nonce())
        url = sale_qr_url(sale, terminal.key, terminal.gateway_url)
        void = with_status(sale, "void", terminal.key)  # what pos_terminal re-sends
        listener.publish(sales_topic(terminal.device_id), sale)
        _wait(lambda: link.stats["sales_stored"] == 1)
        listener.publish(sales_topic(terminal.device_id), void)
        listener.publish(sales_topic(terminal.device_id), void)  # redelivery
        listener.publish(sales_topic(terminal.device_id), sale)  # late copy of the original
        _wait(lambda: link.stats["sales_voided"] == 1 and link.stats["sales_duplicate"] == 2)
    finally:
        link.stop()
        listener.close()
    row = _sale_row(gw, sale)
    assert row["voided_at_ms"] is not None
    assert '"status":"void"' in row["void_record"]
    assert gw.gateway.db.conn.execute("SELECT COUNT(*) FROM sales").fetchone()[0] == 1
    answer = gw.scan(url)
    assert answer.status_code == 410
    assert answer.json()["error"] == "sale_voided" and answer.json()["message"]
    page = gw.http.get(url, headers={"Accept": "text/html"})
    assert page.status_code == 410 and "sale_voided" in page.text
    assert "Traceback" not in page.text
    assert gw.gateway.db.conn.execute("SELECT COUNT(*) FROM payments").fetchone()[0] == 0


def test_void_that_changes_the_sale_is_rejected(gw: ServedGateway) -> None:
    terminal = gw.terminal()
    url, sale = terminal.charge()
    topic = sales_topic(terminal.device_id)
    service = gw.gateway.payments
    assert accept_sale(service, topic, _bytes(sale)) == "stored"
    altered = {**sale, "qr_nonce": "00" * 8, "status": "void"}  # another QR's sale
    altered["mac"] = mac_record(altered, terminal.key)
    with pytest.raises(SaleRejected, match="differs"):
        accept_sale(service, topic, _bytes(altered))
    forged = {**sale, "status": "void"}  # the original MAC does not cover the new status
    with pytest.raises(SaleRejected, match="MAC"):
        accept_sale(service, topic, _bytes(forged))
    other = gw.terminal(device_id="dev-other-" + secrets.token_hex(2))
    foreign = with_status(sale, "void", other.key)  # another terminal's key
    with pytest.raises(SaleRejected):
        accept_sale(service, topic, _bytes(foreign))
    assert _sale_row(gw, sale)["voided_at_ms"] is None
    assert gw.scan(url).status_code == 200


def test_void_arriving_before_its_sale_still_refuses_the_qr(gw: ServedGateway) -> None:
    terminal = gw.terminal()
    url, sale = terminal.charge()
    topic = sales_topic(terminal.device_id)
    service = gw.gateway.payments
    assert accept_sale(service, topic, _bytes(with_status(sale, "void", terminal.key))
                       ) == "voided"
    assert accept_sale(service, topic, _bytes(sale)) == "duplicate"
    assert gw.scan(url).json()["error"] == "sale_voided"


def test_pending_order_of_a_voided_sale_is_closed_at_the_platform(gw: ServedGateway) -> None:
    terminal = gw.terminal()
    url, sale = terminal.charge()
    topic = sales_topic(terminal.device_id)
    service = gw.gateway.payments
    accept_sale(service, topic, _bytes(sale))
    payment = gw.scan(url).json()
    assert payment["status"] == "pending"
    accept_sale(service, topic, _bytes(with_status(sale, "void", terminal.key)))
    assert gw.scan(url).json()["error"] == "sale_voided"
    assert gw.gateway.sweeps.sweep()["expired"] == 1
    assert gw.payment(payment["payment_id"])["status"] == "expired"
    paid = pay_at_checkout(payment["checkout_url"])
    assert paid.status_code >= 400  # the platform closed the order: nothing can be paid
    assert service.get(payment["payment_id"])["status"] == "expired"


def test_payment_that_beat_the_void_is_kept_and_flagged_for_refund(
        gw: ServedGateway, mqtt_broker) -> None:
    terminal = gw.terminal()
    listener = Listener(mqtt_broker, results_topic(terminal.device_id))
    link = _link(gw)
    try:
        url, sale = terminal.charge()
        listener.publish(sales_topic(terminal.device_id), sale)
        _wait(lambda: link.stats["sales_stored"] == 1)
        payment = gw.scan(url).json()
        # The shopper pays at the platform; the void is sent before the result arrives.
        assert pay_at_checkout(payment["checkout_url"]).status_code in (302, 303)
        listener.publish(sales_topic(terminal.device_id),
                         with_status(sale, "void", terminal.key))
        _wait(lambda: link.stats["sales_voided"] == 1)
        paid = gw.wait_status(payment["payment_id"], "paid")
        assert paid["refunded_fen"] == 0
        result = listener.next(results_topic(terminal.device_id),
                               where=lambda r: r["status"] == "paid")
        assert result["payment_id"] == payment["payment_id"]
    finally:
        link.stop()
        listener.close()
    assert service_status(gw, payment["payment_id"]) == "paid"
    row = _manager_payments(gw)[payment["payment_id"]]
    assert row["sale_voided"] is True and row["needs_refund"] is True
    assert gw.scan(url).status_code in (409, 410)  # never a second order
    refund = gw.gateway.refunds.refund(gw.gateway.payments.get(payment["payment_id"]),
                                        payment["amount_fen"], "sale voided", "void-1",
                                        "manager")
    assert refund["status"] == "success"
    assert _manager_payments(gw)[payment["payment_id"]]["needs_refund"] is False


def test_open_sale_is_not_flagged(gw: ServedGateway) -> None:
    terminal = gw.terminal()
    url, sale = terminal.charge()
    accept_sale(gw.gateway.payments, sales_topic(terminal.device_id), _bytes(sale))
    payment = gw.scan(url).json()
    row = _manager_payments(gw)[payment["payment_id"]]
    assert row["sale_voided"] is False and row["needs_refund"] is False


def service_status(gw: ServedGateway, payment_id: str) -> str:
    return gw.gateway.payments.get(payment_id)["status"]


def _bytes(record: dict) -> bytes:
    import orjson
    return orjson.dumps(record)
