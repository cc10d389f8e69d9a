"""Notifications and queries: signatures, duplicates, out-of-order, amounts, the fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_gateway_support import (  # noqa: F401 - fixtures
    ServedGateway,
    pay_at_checkout,
    platform,
)

from market_protocol import canonical_json
from service_base.testing import free_port


@pytest.fixture
def gw(tmp_path: Path, platform) -> ServedGateway:  # noqa: F811
    # Notifications would settle payments behind the test's back: send them nowhere.
    with ServedGateway(tmp_path, platform.url,
                       public_url=f"http://127.0.0.1:{free_port()}") as served:
        yield served


def _pending(gw: ServedGateway) -> dict[str, Any]:
    terminal = gw.terminal()
    url, _ = terminal.charge()
    url = url.replace(gw.settings["public_url"], gw.url)
    response = gw.scan(url)
    assert response.status_code == 200, response.text
    return response.json()


def _note(payment: dict[str, Any], status: str = "PAID", amount: int | None = None,
          notify_id: str = "n-1") -> bytes:
    return canonical_json.dumps({
        "notify_id": notify_id, "order_id": "o-1", "out_trade_no": payment["payment_id"],
        "status": status, "amount_fen": payment["amount_fen"] if amount is None else amount,
        "currency": "CNY", "payer_id": "shopper-9", "channel_txn_id": "txn-1",
        "paid_at_ms": 1_763_700_000_000})


def _post(gw: ServedGateway, body: bytes, signature: str | None, channel: str = "sandbox"):
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Signature"] = signature
    return gw.http.post(f"{gw.url}/v1/notify/{channel}", data=body, headers=headers)


def _count(gw: ServedGateway, sql: str, *args: Any) -> int:
    return gw.gateway.db.conn.execute(sql, args).fetchone()[0]


def test_bad_signature_is_401_and_nothing_recorded(gw: ServedGateway, platform) -> None:  # noqa: F811
    payment = _pending(gw)
    body = _note(payment)
    forged = platform.sign(body + b" ")
    for signature in (None, forged, "x" * 86):
        response = _post(gw, body, signature)
        assert response.status_code == 401
        assert response.json()["error"] == "bad_signature"
    assert gw.payment(payment["payment_id"])["status"] == "pending"
    assert _count(gw, "SELECT COUNT(*) FROM notifications") == 0
    assert _count(gw, "SELECT COUNT(*) FROM channel_calls WHERE method = 'NOTIFY'") == 0


def test_duplicate_notification_applies_once(gw: ServedGateway, platform) -> None:  # noqa: F811
    payment = _pending(gw)
    body = _note(payment)
    for _ in range(3):
        response = _post(gw, body, platform.sign(body))
        assert response.status_code == 200
        assert response.text == "success"
    assert gw.payment(payment["payment_id"])["status"] == "paid"
    assert _count(gw, "SELECT COUNT(*) FROM payment_events WHERE to_status = 'paid' AND "
                  "accepted = 1") == 1
    assert _count(gw, "SELECT COUNT(*) FROM outbox WHERE kind = 'payment_result' AND "
                  "record_id LIKE ?", f"{payment['payment_id']}:paid:%") == 1
    assert _count(gw, "SELECT COUNT(*) FROM notifications") == 1
    assert _count(gw, "SELECT COUNT(*) FROM channel_calls WHERE method = 'NOTIFY' AND "
                  "request LIKE '%\"X-Signature\":\"***\"%'") == 3


def test_out_of_order_close_after_paid_is_refused_and_logged(gw: ServedGateway,
                                                             platform) -> None:  # noqa: F811
    payment = _pending(gw)
    paid = _note(payment, notify_id="n-paid")
    closed = _note(payment, "CLOSED", notify_id="n-closed")
    assert _post(gw, paid, platform.sign(paid)).status_code == 200
    assert _post(gw, closed, platform.sign(closed)).status_code == 200
    assert gw.payment(payment["payment_id"])["status"] == "paid"
    assert _count(gw, "SELECT COUNT(*) FROM payment_events WHERE accepted = 0 AND "
                  "to_status = 'failed'") == 1


def test_paid_amount_that_differs_is_refused(gw: ServedGateway, platform) -> None:  # noqa: F811
    payment = _pending(gw)
    body = _note(payment, amount=1)
    response = _post(gw, body, platform.sign(body))
    assert response.status_code == 400
    assert response.json()["error"] == "amount_mismatch"
    assert gw.payment(payment["payment_id"])["status"] == "pending"


def test_an_amount_mismatch_is_recorded_durably_and_alerts_the_manager(
        gw: ServedGateway, platform) -> None:  # noqa: F811
    """The refusal must not roll back its own evidence: the event and the alert survive,
    and each retry of the notification is counted."""
    import re

    import requests
    from test_gateway_support import MANAGER

    payment = _pending(gw)
    pid = payment["payment_id"]
    for notify_id in ("n-1", "n-1", "n-2"):  # the platform retries, then another note
        body = _note(payment, amount=payment["amount_fen"] + 100, notify_id=notify_id)
        assert _post(gw, body, platform.sign(body)).status_code == 400
    assert gw.payment(pid)["status"] == "pending"
    assert _count(gw, "SELECT COUNT(*) FROM payment_events WHERE payment_id = ? AND "
                  "accepted = 0 AND reason = 'amount differs from the order'", pid) == 3
    alert = gw.gateway.db.conn.execute("SELECT * FROM alerts WHERE payment_id = ?",
                                       (pid,)).fetchone()
    assert alert["kind"] == "amount_mismatch" and alert["seen"] == 3
    assert f"{payment['amount_fen'] + 100} fen paid" in alert["detail"]
    browser = requests.Session()
    browser.trust_env = False
    page = browser.get(f"{gw.url}/manager/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    dashboard = browser.post(f"{gw.url}/manager/login", data={
        "username": MANAGER[0], "password": MANAGER[1], "csrf_token": token})
    assert dashboard.status_code == 200
    assert 'id="alerts"' in dashboard.text and pid in dashboard.text
    # The right amount still settles the payment.
    good = _note(payment, notify_id="n-3")
    assert _post(gw, good, platform.sign(good)).status_code == 200
    assert gw.payment(pid)["status"] == "paid"


def test_unknown_order_channel_and_malformed_body(gw: ServedGateway, platform) -> None:  # noqa: F811
    body = _note({"payment_id": "p" + "0" * 24, "amount_fen": 5})
    assert _post(gw, body, platform.sign(body)).status_code == 404
    assert _post(gw, body, platform.sign(body), channel="nope").json()["error"] == \
        "unknown_channel"
    junk = b"{not json"
    response = _post(gw, junk, platform.sign(junk))
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_notification"


def test_query_fallback_settles_a_payment_whose_notification_never_came(
        gw: ServedGateway) -> None:
    payment = _pending(gw)
    assert pay_at_checkout(payment["checkout_url"]).status_code in (302, 303)
    gw.gateway.payments.settings["query_after_s"] = 0  # type: ignore[index]
    gw.gateway.payments.settings["query_interval_s"] = 0  # type: ignore[index]
    counts = gw.gateway.sweeps.sweep()
    assert counts["queried"] == 1
    current = gw.payment(payment["payment_id"])
    assert current["status"] == "paid"
    assert current["paid_at_ms"] > 0


def test_concurrent_notifications_and_queries_apply_once(gw: ServedGateway, platform) -> None:  # noqa: F811
    from concurrent.futures import ThreadPoolExecutor

    payment = _pending(gw)
    assert pay_at_checkout(payment["checkout_url"]).status_code in (302, 303)
    bodies = [_note(payment, notify_id=f"n-{i % 3}") for i in range(12)]

    def notify(body: bytes) -> int:
        return _post(gw, body, platform.sign(body)).status_code

    def query(_: int) -> int:
        return gw.http.post(f"{gw.url}/v1/payments/{payment['payment_id']}/query").status_code

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(notify, bodies)) + list(pool.map(query, range(8)))
    assert set(answers) == {200}
    assert gw.payment(payment["payment_id"])["status"] == "paid"
    assert _count(gw, "SELECT COUNT(*) FROM payment_events WHERE to_status = 'paid' AND "
                  "accepted = 1") == 1
    assert _count(gw, "SELECT COUNT(*) FROM outbox WHERE record_id LIKE ?",
                  f"{payment['payment_id']}:paid:%") == 1
