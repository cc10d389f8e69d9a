"""A refund whose answer is lost is paid exactly once.

The sandbox platform (its own process) commits the refund and then loses the answer: it
answers only after the gateway's timeout, or with a 500. The manager retries the same
refund number, and also tries a new one; the sweeper runs. Exactly one payout at the
platform (counted in the platform's own database), and the gateway's settlement, its CSV
and the platform's statement agree.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from test_gateway_support import (
    MANAGER,
    Platform,
    ServedGateway,
    manager_login,
    pay_at_checkout,
)

from service_base.testing import ServiceProcess, free_port, tracepay_command


@pytest.fixture(scope="module")
def faulty_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    port = free_port()
    data = tmp_path_factory.mktemp("faulty-platform")
    url = f"http://127.0.0.1:{port}"
    process = ServiceProcess(
        tracepay_command("sandbox-platform", "--host", "127.0.0.1", "--port", str(port),
                         "--data-dir", str(data), "--notify-schedule", "0,0.3,0.6,1,2",
                         "--allow-faults"),
        log_path=data / "platform.log", health_url=f"{url}/healthz")
    with process:
        yield Platform(url, process, data)


@pytest.fixture
def gw(tmp_path: Path, faulty_platform: Platform) -> Iterator[ServedGateway]:
    with ServedGateway(tmp_path, faulty_platform.url, channel_timeout_s=1.0) as served:
        yield served


def _paid(gw: ServedGateway) -> dict[str, Any]:
    url, _ = gw.terminal().charge()
    payment = gw.scan(url).json()
    pay_at_checkout(payment["checkout_url"])
    return gw.wait_status(payment["payment_id"], "paid")


def _refund(gw: ServedGateway, payment_id: str, amount: int, refund_no: str
            ) -> requests.Response:
    return gw.http.post(f"{gw.url}/v1/payments/{payment_id}/refunds", auth=MANAGER,
                        json={"amount_fen": amount, "reason": "bruised", "refund_no": refund_no})


def _stage(platform: Platform, gw: ServedGateway, kind: str, seconds: float = 0) -> None:
    staged = requests.post(f"{platform.url}/sandbox/faults", timeout=10, json={
        "app_id": gw.settings["platform_app_id"], "refund_answer": kind,
        "seconds": seconds, "times": 1})
    assert staged.status_code == 200, staged.text


def _payouts(platform: Platform, out_trade_no: str) -> list[int]:
    """Refunds the platform itself holds for an order (its own database, read-only)."""
    db = sqlite3.connect(f"file:{platform.data_dir / 'sandbox_platform.sqlite'}?mode=ro",
                         uri=True)
    try:
        return [row[0] for row in db.execute(
            "SELECT amount_fen FROM refunds WHERE out_trade_no = ?", (out_trade_no,))]
    finally:
        db.close()


def test_a_refund_paid_whose_answer_timed_out_is_paid_once(
        gw: ServedGateway, faulty_platform: Platform) -> None:
    payment = _paid(gw)
    pid, amount = payment["payment_id"], payment["amount_fen"]
    _stage(faulty_platform, gw, "hang", seconds=3)
    first = _refund(gw, pid, amount, "R-1")
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "processing"
    assert _payouts(faulty_platform, pid) == [amount]  # the platform did pay
    # The manager, seeing no success, types a new refund number: refused, the first
    # one may have paid (and did).
    second = _refund(gw, pid, amount, "R-2")
    assert second.status_code == 409 and second.json()["error"] == "refund_exceeds_payment"
    # The same number again settles the first from the platform's refund query.
    retry = _refund(gw, pid, amount, "R-1")
    assert retry.status_code == 201, retry.text
    assert retry.json()["status"] == "success"
    assert retry.json()["refund_id"] == first.json()["refund_id"]
    assert _payouts(faulty_platform, pid) == [amount]
    assert gw.payment(pid)["status"] == "refunded"
    assert _refund(gw, pid, amount, "R-3").json()["error"] == "not_refundable"
    _books_agree(gw, refunds_fen=amount)


def test_the_sweeper_settles_a_refund_answered_with_a_500(
        gw: ServedGateway, faulty_platform: Platform) -> None:
    payment = _paid(gw)
    pid = payment["payment_id"]
    _stage(faulty_platform, gw, "error_500")
    first = _refund(gw, pid, 300, "R-500")
    assert first.status_code == 202 and first.json()["status"] == "processing"
    assert gw.payment(pid)["refunded_fen"] == 0  # not counted as paid before it is known
    assert gw.gateway.refunds.sweep(older_than_s=0) == 1
    assert gw.payment(pid)["refunded_fen"] == 300
    assert gw.payment(pid)["status"] == "partially_refunded"
    assert _payouts(faulty_platform, pid) == [300]
    again = _refund(gw, pid, 300, "R-500")
    assert again.status_code == 201 and again.json()["status"] == "success"
    assert _payouts(faulty_platform, pid) == [300]
    _books_agree(gw, refunds_fen=300)


def test_a_refund_the_platform_never_received_is_sent_under_its_own_number(
        gw: ServedGateway, faulty_platform: Platform) -> None:
    """A refund row left processing before any call reached the platform (the gateway
    died between writing it and sending it) is sent once by the sweeper, not lost."""
    payment = _paid(gw)
    pid = payment["payment_id"]
    conn = gw.gateway.db.conn
    conn.execute("INSERT INTO refunds (refund_id, merchant_id, refund_no, payment_id, "
                 "amount_fen, reason, status, requested_by, created_at_ms) VALUES "
                 "('r-crashed', ?, 'R-C', ?, 200, 'crash', 'processing', 'manager:x', 0)",
                 (gw.gateway.payments.get(pid)["merchant_id"], pid))
    assert _payouts(faulty_platform, pid) == []
    assert gw.gateway.refunds.sweep(older_than_s=0) == 1
    assert _payouts(faulty_platform, pid) == [200]
    assert gw.gateway.refunds.sweep(older_than_s=0) == 0
    assert _payouts(faulty_platform, pid) == [200]
    assert gw.payment(pid)["refunded_fen"] == 200


def test_a_definite_refusal_is_failed_and_frees_the_amount(
        gw: ServedGateway, faulty_platform: Platform) -> None:
    payment = _paid(gw)
    pid = payment["payment_id"]
    # Refunded at the platform behind the gateway's back: the platform refuses (signed
    # 409) a refund of more than is left there.
    out_of_band = gw.gateway.channels["sandbox"].refund(pid, "elsewhere-1",
                                                        payment["amount_fen"],
                                                        payment["amount_fen"], "desk")
    assert out_of_band.status == "success"
    refused = _refund(gw, pid, 100, "R-X")
    assert refused.status_code == 502 and refused.json()["error"] == "refund_failed"
    assert "refund_exceeds_paid" in refused.json()["message"]
    row = gw.gateway.db.conn.execute("SELECT status FROM refunds WHERE refund_no = 'R-X'"
                                     ).fetchone()
    assert row["status"] == "failed"


def _books_agree(gw: ServedGateway, *, refunds_fen: int) -> None:
    today = datetime.now(UTC).date().isoformat()
    browser, _ = manager_login(gw)
    exported = browser.get(f"{gw.url}/manager/settlement.csv", params={"date": today})
    total = list(csv.DictReader(io.StringIO(exported.text)))[-1]
    assert total["merchant_id"] == "TOTAL"
    assert int(total["refunds_fen"]) == refunds_fen
    statement = gw.gateway.channels["sandbox"].statement(today)
    assert statement["totals"]["refunds"] == 1
    assert int(total["net_fen"]) == statement["totals"]["net_fen"]
