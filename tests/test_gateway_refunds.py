"""Refunds (manager and terminal), expiry by the sweeper, and late notifications."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from test_gateway_support import (  # noqa: F401 - fixtures
    MANAGER,
    ServedGateway,
    Terminal,
    pay_at_checkout,
    platform,
)

from aggregation_gateway.api_views import REFUND_REQUEST_SCHEMA
from market_protocol import canonical_json, mac_record


@pytest.fixture
def gw(tmp_path: Path, platform) -> ServedGateway:  # noqa: F811
    with ServedGateway(tmp_path, platform.url) as served:
        yield served


def _paid(gw: ServedGateway) -> tuple[Terminal, dict[str, Any], dict[str, Any]]:
    terminal = gw.terminal()
    url, sale = terminal.charge()
    payment = gw.scan(url).json()
    pay_at_checkout(payment["checkout_url"])
    return terminal, gw.wait_status(payment["payment_id"], "paid"), sale


def _refund(gw: ServedGateway, payment_id: str, amount: int, refund_no: str):
    return gw.http.post(f"{gw.url}/v1/payments/{payment_id}/refunds", auth=MANAGER,
                        json={"amount_fen": amount, "reason": "bruised", "refund_no": refund_no})


def test_partial_then_full_refund_and_no_double_refund(gw: ServedGateway) -> None:
    _, payment, _ = _paid(gw)
    pid = payment["payment_id"]
    first = _refund(gw, pid, 300, "R-1")
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "success"
    assert gw.payment(pid)["status"] == "partially_refunded"
    replay = _refund(gw, pid, 300, "R-1")
    assert replay.json()["refund_id"] == first.json()["refund_id"]
    assert gw.payment(pid)["refunded_fen"] == 300
    conflict = _refund(gw, pid, 100, "R-1")
    assert conflict.status_code == 409 and conflict.json()["error"] == "refund_no_conflict"
    too_much = _refund(gw, pid, 651, "R-2")
    assert too_much.status_code == 409
    assert too_much.json()["error"] == "refund_exceeds_payment"
    rest = _refund(gw, pid, 650, "R-3")
    assert rest.status_code == 201
    final = gw.payment(pid)
    assert final["status"] == "refunded" and final["refunded_fen"] == 950
    assert _refund(gw, pid, 1, "R-4").json()["error"] == "not_refundable"


def test_refund_needs_a_manager_and_valid_input(gw: ServedGateway) -> None:
    _, payment, _ = _paid(gw)
    url = f"{gw.url}/v1/payments/{payment['payment_id']}/refunds"
    assert gw.http.post(url, json={}).status_code == 401
    bad = gw.http.post(url, auth=MANAGER, json={"amount_fen": -5, "reason": "x",
                                                "refund_no": "R"})
    assert bad.status_code == 400
    assert gw.http.post(url, auth=MANAGER, data="{", headers={
        "Content-Type": "application/json"}).json()["error"] == "malformed_json"


def _device_refund(terminal: Terminal, key: bytes | None = None, **fields: Any) -> dict:
    body = {"schema": REFUND_REQUEST_SCHEMA, "device_id": terminal.device_id,
            "key_version": terminal.key_version, "amount_fen": 200, "reason": "wrong weight",
            "refund_no": "T-1", "requested_at_ms": int(time.time() * 1000), **fields}
    body["mac"] = mac_record(body, key or terminal.key)
    return body


def test_terminal_refund_is_authenticated_by_its_mac(gw: ServedGateway) -> None:
    terminal, payment, sale = _paid(gw)
    url = f"{gw.url}/v1/devices/{terminal.device_id}/refunds"
    forged = gw.http.post(url, json=_device_refund(terminal, key=b"\x07" * 32,
                                                   payment_id=payment["payment_id"]))
    assert forged.status_code == 403 and forged.json()["error"] == "bad_mac"
    assert gw.payment(payment["payment_id"])["refunded_fen"] == 0
    both = gw.http.post(url, json=_device_refund(terminal, payment_id=payment["payment_id"],
                                                 sale_id=sale["sale_id"]))
    assert both.status_code == 400
    ok = gw.http.post(url, json=_device_refund(terminal, payment_id=payment["payment_id"]))
    assert ok.status_code == 201, ok.text
    assert gw.payment(payment["payment_id"])["refunded_fen"] == 200
    other = gw.terminal(device_id="dev-other")
    stolen = gw.http.post(f"{gw.url}/v1/devices/dev-other/refunds",
                          json=_device_refund(other, payment_id=payment["payment_id"],
                                              refund_no="T-2"))
    assert stolen.status_code == 404


def test_sweeper_expires_and_closes_then_late_paid_notification_is_accepted(
        tmp_path: Path, platform) -> None:  # noqa: F811
    with ServedGateway(tmp_path, platform.url, qr_lifetime_s=1, pay_window_s=0,
                       query_after_s=0) as gw:
        terminal = gw.terminal()
        url, _ = terminal.charge()
        payment = gw.scan(url).json()
        deadline = time.monotonic() + 10
        while gw.gateway.sweeps.sweep()["expired"] == 0:
            assert time.monotonic() < deadline, "sweeper never expired the order"
            time.sleep(0.2)
        assert gw.payment(payment["payment_id"])["status"] == "expired"
        late = pay_at_checkout(payment["checkout_url"])
        assert late.status_code >= 400 or "closed" in late.text.lower()
        status = gw.gateway.channels["sandbox"].query_order(payment["payment_id"])
        assert status.status == "closed"
        # A late "paid" (a channel that took the money despite the close) is accepted.
        body = canonical_json.dumps({
            "notify_id": "late-1", "order_id": "o", "out_trade_no": payment["payment_id"],
            "status": "PAID", "amount_fen": payment["amount_fen"], "currency": "CNY",
            "payer_id": "s", "channel_txn_id": "t-late", "paid_at_ms": 1})
        response = gw.http.post(f"{gw.url}/v1/notify/sandbox", data=body, headers={
            "Content-Type": "application/json", "X-Signature": platform.sign(body)})
        assert response.status_code == 200
        assert gw.payment(payment["payment_id"])["status"] == "paid"
        calls = gw.gateway.db.conn.execute(
            "SELECT url, request FROM channel_calls WHERE url LIKE '%/close'").fetchall()
        assert len(calls) == 1
        assert '"X-Signature":"***"' in calls[0]["request"]


def test_pending_order_the_channel_never_heard_of_is_expired(gw: ServedGateway) -> None:
    terminal = gw.terminal()
    gw.gateway.db.conn.execute(
        "INSERT INTO payments (payment_id, device_id, merchant_id, order_no, nonce, amount_fen,"
        " currency, qr_issued_at, status, channel, created_at_ms, updated_at_ms) VALUES "
        "('p00000000000000000000dead', ?, 'stall-7', 77, 'n', 100, 'CNY', 0, 'pending', "
        "'sandbox', 0, 0)", (terminal.device_id,))
    assert gw.gateway.sweeps.sweep()["expired"] == 1
    assert gw.payment("p00000000000000000000dead")["status"] == "expired"


def test_the_terminals_own_refund_request_is_accepted(gw: ServedGateway) -> None:
    """The record pos_terminal builds is exactly what the gateway verifies."""
    from pos_terminal.refunds import build_refund_request

    terminal, payment, sale = _paid(gw)
    record = build_refund_request(
        device_id=terminal.device_id, key_version=terminal.key_version,
        device_key=terminal.key, sale_id=sale["sale_id"], refund_no=f"{sale['sale_id']}.r1",
        amount_fen=100, reason="one leaf short", requested_at_ms=int(time.time() * 1000))
    # The sale reached the gateway over MQTT in production; store it as the link would.
    import orjson

    from aggregation_gateway.sales_intake import accept_sale
    from market_protocol.topics import sales_topic

    assert accept_sale(gw.gateway.payments, sales_topic(terminal.device_id),
                       orjson.dumps(sale)) == "stored"
    response = gw.http.post(f"{gw.url}/v1/devices/{terminal.device_id}/refunds", json=record)
    assert response.status_code == 201, response.text
    assert gw.payment(payment["payment_id"])["refunded_fen"] == 100
