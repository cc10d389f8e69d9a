"""Payer-code (付款码) charges through the gateway, against the real sandbox platform
process: paid at once, waiting for the shopper's password then paid or reversed, declined,
refused codes, retries that charge nothing twice, and every bad request refused."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from test_gateway_support import (  # noqa: F401 - fixtures
    Platform,
    ServedGateway,
    Terminal,
    platform,
)

from aggregation_gateway.payer_codes import PAYER_CODE_SCHEMA
from aggregation_gateway.sales_intake import accept_sale
from market_protocol import mac_record
from market_protocol.topics import sales_topic


@pytest.fixture
def gw(tmp_path: Path, platform: Platform) -> ServedGateway:  # noqa: F811
    with ServedGateway(tmp_path, platform.url, query_after_s=0, query_interval_s=0,
                       payer_code_wait_s=3600) as served:
        yield served


def _code(platform: Platform, behaviour: str = "pay") -> str:  # noqa: F811
    issued = requests.post(f"{platform.url}/sandbox/payer-codes", timeout=10,
                           json={"payer_id": "wallet-buyer-7", "behaviour": behaviour})
    assert issued.status_code == 201, issued.text
    return issued.json()["auth_code"]


def _request(terminal: Terminal, sale: dict[str, Any], auth_code: str, *,
             key: bytes | None = None, **changes: Any) -> dict[str, Any]:
    body = {"schema": PAYER_CODE_SCHEMA, "device_id": terminal.device_id,
            "key_version": terminal.key_version, "order_no": sale["seq"],
            "amount_fen": sale["total_fen"], "currency": "CNY",
            "issued_at": sale["qr_issued_at"], "nonce": sale["qr_nonce"],
            "auth_code": auth_code, **changes}
    body["mac"] = mac_record(body, key or terminal.key)
    return body


def _charge(gw: ServedGateway, body: dict[str, Any], device_id: str | None = None
            ) -> requests.Response:
    return gw.http.post(f"{gw.url}/v1/devices/{device_id or body['device_id']}/"
                        "payer-code-charges", json=body, timeout=30)


def _platform_status(gw: ServedGateway, payment_id: str) -> str:
    return gw.gateway.channels["sandbox"].query_order(payment_id).status


def test_a_code_that_pays_at_once_is_paid_once_and_joins_its_sale(
        gw: ServedGateway, platform: Platform) -> None:  # noqa: F811
    terminal = gw.terminal()
    _, sale = terminal.charge()
    body = _request(terminal, sale, _code(platform))
    first = _charge(gw, body)
    assert first.status_code == 200, first.text
    paid = first.json()
    assert paid["status"] == "paid" and paid["amount_fen"] == sale["total_fen"]
    again = _charge(gw, body)  # the answer was lost; the terminal sends it again
    assert again.status_code == 200 and again.json()["payment_id"] == paid["payment_id"]
    conn = gw.gateway.db.conn
    assert conn.execute("SELECT COUNT(*) FROM payments WHERE device_id = ?",
                        (terminal.device_id,)).fetchone()[0] == 1
    assert conn.execute("SELECT method FROM payments WHERE payment_id = ?",
                        (paid["payment_id"],)).fetchone()[0] == "payer_code"
    assert accept_sale(gw.gateway.payments, sales_topic(terminal.device_id),
                       orjson.dumps(sale)) == "stored"
    trade = conn.execute("SELECT payload FROM outbox WHERE kind = 'trade' AND record_id = ?",
                         (sale["sale_id"],)).fetchone()
    assert trade is not None
    assert orjson.loads(bytes(trade["payload"]))["payment"]["amount_fen"] == sale["total_fen"]


def test_a_shopper_entering_the_password_is_waited_for_then_paid(
        gw: ServedGateway, platform: Platform) -> None:  # noqa: F811
    terminal = gw.terminal()
    _, sale = terminal.charge()
    code = _code(platform, "password")
    waiting = _charge(gw, _request(terminal, sale, code))
    assert waiting.status_code == 202 and waiting.json()["status"] == "pending", waiting.text
    pid = waiting.json()["payment_id"]
    gw.gateway.sweeps.sweep()
    assert gw.payment(pid)["status"] == "pending"  # still typing
    confirmed = requests.post(f"{platform.url}/sandbox/payer-codes/{code}/confirm",
                              timeout=10)
    assert confirmed.status_code == 200, confirmed.text
    time.sleep(0.01)
    gw.gateway.sweeps.sweep()
    assert gw.wait_status(pid, "paid")["amount_fen"] == sale["total_fen"]


def test_a_charge_never_confirmed_is_reversed_at_the_platform(
        tmp_path: Path, platform: Platform) -> None:  # noqa: F811
    with ServedGateway(tmp_path, platform.url, payer_code_wait_s=0, query_after_s=0) as gw:
        terminal = gw.terminal()
        _, sale = terminal.charge()
        waiting = _charge(gw, _request(terminal, sale, _code(platform, "password")))
        assert waiting.status_code == 202, waiting.text
        pid = waiting.json()["payment_id"]
        assert gw.gateway.sweeps.sweep()["expired"] == 1
        assert gw.payment(pid)["status"] == "expired"
        assert _platform_status(gw, pid) == "closed"
        events = gw.gateway.db.conn.execute(
            "SELECT source FROM payment_events WHERE payment_id = ? AND to_status = "
            "'expired'", (pid,)).fetchall()
        assert [row[0] for row in events] == ["sweeper:reversed"]


@pytest.mark.parametrize("behaviour", ["decline", "insufficient"])
def test_a_declined_charge_is_failed_with_its_reason(
        gw: ServedGateway, platform: Platform, behaviour: str) -> None:  # noqa: F811
    terminal = gw.terminal()
    _, sale = terminal.charge()
    declined = _charge(gw, _request(terminal, sale, _code(platform, behaviour)))
    assert declined.status_code == 402, declined.text
    assert declined.json()["error"] == "payment_declined"
    assert gw.payment(declined.json()["payment_id"])["status"] == "failed"


def test_a_used_code_is_refused_and_a_new_sale_may_try_another(
        gw: ServedGateway, platform: Platform) -> None:  # noqa: F811
    terminal = gw.terminal()
    code = _code(platform)
    _, first = terminal.charge()
    assert _charge(gw, _request(terminal, first, code)).status_code == 200
    _, second = terminal.charge()
    reused = _charge(gw, _request(terminal, second, code))
    assert reused.status_code == 422 and reused.json()["error"] == "payer_code_used"
    assert gw.payment(reused.json()["payment_id"])["status"] == "failed"
    _, third = terminal.charge()
    fresh = _charge(gw, _request(terminal, third, _code(platform)))
    assert fresh.status_code == 200 and fresh.json()["status"] == "paid"


def test_bad_requests_are_refused_with_a_reason_and_charge_nothing(
        gw: ServedGateway, platform: Platform) -> None:  # noqa: F811
    terminal = gw.terminal()
    other = gw.terminal(device_id="dev-other")
    _, sale = terminal.charge()
    code = _code(platform)
    cases = [
        (_request(terminal, sale, code, key=b"\x00" * 32), None, 403, "bad_mac"),
        (_request(terminal, sale, code), other.device_id, 403, "device_mismatch"),
        (_request(terminal, sale, code, issued_at=int(time.time()) - 7200), None, 410,
         "qr_expired"),
        (_request(terminal, sale, "12ab"), None, 400, "invalid_request"),
        ({"schema": PAYER_CODE_SCHEMA}, None, 400, "invalid_request"),
    ]
    for body, device_id, status, error in cases:
        answer = _charge(gw, body, device_id or terminal.device_id)
        assert (answer.status_code, answer.json()["error"]) == (status, error), answer.text
    assert gw.gateway.db.conn.execute("SELECT COUNT(*) FROM payments").fetchone()[0] == 0
    assert _charge(gw, _request(terminal, sale, code)).status_code == 200
    conflict = _charge(gw, _request(terminal, sale, _code(platform), nonce="ab" * 16))
    assert conflict.status_code == 409 and conflict.json()["error"] == "order_conflict"
    # A sale already being paid by QR cannot also be charged by code.
    qr, qr_sale = terminal.charge()
    assert gw.scan(qr.replace(gw.settings["public_url"], gw.url)).status_code == 200
    both = _charge(gw, _request(terminal, qr_sale, _code(platform)))
    assert both.status_code == 409 and both.json()["error"] == "order_conflict"
