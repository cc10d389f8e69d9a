"""Manager web: login, CSRF, terminals, settlement that adds up to the platform's statement,
and T+1 reconciliation with every kind of mismatch."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from test_gateway_support import (  # noqa: F401 - fixtures
    MANAGER,
    ServedGateway,
    Terminal,
    form_token,
    manager_login,
    pay_at_checkout,
    platform,
)

from aggregation_gateway.settlement import reconcile


@pytest.fixture
def gw(tmp_path: Path, platform) -> ServedGateway:  # noqa: F811
    with ServedGateway(tmp_path, platform.url) as served:
        yield served


_csrf = form_token
_login = manager_login


def test_login_is_required_and_csrf_is_checked(gw: ServedGateway) -> None:
    browser = requests.Session()
    browser.trust_env = False
    assert browser.get(f"{gw.url}/manager/", allow_redirects=False).status_code == 302
    assert browser.get(f"{gw.url}/manager/payments.json").status_code == 401
    page = browser.get(f"{gw.url}/manager/login")
    no_token = browser.post(f"{gw.url}/manager/login", data={
        "username": MANAGER[0], "password": MANAGER[1]})
    assert no_token.status_code == 403
    wrong = browser.post(f"{gw.url}/manager/login", data={
        "username": MANAGER[0], "password": "nope", "csrf_token": _csrf(page.text)})
    assert wrong.status_code == 401
    logged_in, csrf = _login(gw)
    forged = logged_in.post(f"{gw.url}/manager/devices", data={
        "merchant_id": "m", "merchant_name": "n", "org": "retail_market"})
    assert forged.status_code == 403 and forged.json()["error"] == "csrf_failed"
    enrolled = logged_in.post(f"{gw.url}/manager/devices", data={
        "merchant_id": "stall-3", "merchant_name": "Zhao's tofu", "org": "retail_market",
        "device_id": "dev-web", "csrf_token": csrf})
    assert enrolled.status_code == 200
    code = re.search(r'id="code">([A-Z0-9]+)<', enrolled.text).group(1)
    assert gw.claim(code).status_code == 200
    revoked = logged_in.post(f"{gw.url}/manager/devices/dev-web/revoke",
                             data={"csrf_token": csrf})
    assert revoked.status_code == 200 and "dev-web revoked" in revoked.text
    logged_in.post(f"{gw.url}/manager/logout", data={"csrf_token": csrf})
    assert logged_in.get(f"{gw.url}/manager/payments.json").status_code == 401


def _sell(gw: ServedGateway, terminal: Terminal, lines=None) -> dict:
    url, _ = terminal.charge(lines)
    payment = gw.scan(url).json()
    pay_at_checkout(payment["checkout_url"])
    return gw.wait_status(payment["payment_id"], "paid")


def test_settlement_adds_up_to_the_platform_statement(gw: ServedGateway) -> None:
    a = gw.terminal(merchant_id="stall-a", device_id="dev-a")
    b = gw.terminal(merchant_id="stall-b", device_id="dev-b")
    paid = [_sell(gw, a), _sell(gw, a, [Terminal.line("pork", "kg", 3280, weight_g=613)]),
            _sell(gw, b, [Terminal.line("egg", "piece", 75, quantity=12)])]
    refund = gw.http.post(f"{gw.url}/v1/payments/{paid[1]['payment_id']}/refunds",
                          auth=MANAGER, json={"amount_fen": 500, "reason": "short weight",
                                              "refund_no": "R-1"})
    assert refund.status_code == 201
    browser, _ = _login(gw)
    today = datetime.now(UTC).date().isoformat()
    page = browser.get(f"{gw.url}/manager/settlement", params={"date": today})
    assert "<svg" in page.text and "stall-a" in page.text
    exported = browser.get(f"{gw.url}/manager/settlement.csv", params={"date": today})
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    total = rows[-1]
    assert total["merchant_id"] == "TOTAL"
    assert int(total["gross_fen"]) == sum(p["amount_fen"] for p in paid)
    assert int(total["refunds_fen"]) == 500
    statement = gw.gateway.channels["sandbox"].statement(today)
    assert int(total["net_fen"]) == statement["totals"]["net_fen"]
    assert int(total["fees_fen"]) == statement["totals"]["fee_fen"]
    by_vendor = {row["merchant_id"]: row for row in rows[:-1]}
    assert int(by_vendor["stall-b"]["gross_fen"]) == 900
    browser, csrf = _login(gw)
    result = browser.post(f"{gw.url}/manager/reconciliation", params={"format": "json"},
                          data={"date": today, "csrf_token": csrf}).json()
    assert result["mismatches"] == [] and result["matched"] == 4  # 3 payments, 1 refund


def test_reconciliation_lists_each_kind_of_mismatch(gw: ServedGateway) -> None:
    terminal = gw.terminal()
    good, amount, status, missing = (_sell(gw, terminal) for _ in range(4))
    conn = gw.gateway.db.conn
    conn.execute("UPDATE payments SET amount_fen = amount_fen + 1 WHERE payment_id = ?",
                 (amount["payment_id"],))
    conn.execute("UPDATE payments SET status = 'expired' WHERE payment_id = ?",
                 (status["payment_id"],))
    conn.execute("DELETE FROM payments WHERE payment_id = ?", (missing["payment_id"],))
    conn.execute("INSERT INTO payments (payment_id, device_id, merchant_id, order_no, nonce, "
                 "amount_fen, currency, qr_issued_at, status, channel, paid_at_ms, "
                 "created_at_ms, updated_at_ms) VALUES ('p000000000000000000000001', ?, "
                 "'stall-7', 999, 'n', 100, 'CNY', 0, 'paid', 'sandbox', ?, 0, 0)",
                 (terminal.device_id, good["paid_at_ms"]))
    browser, csrf = _login(gw)
    today = datetime.now(UTC).date()
    response = browser.post(f"{gw.url}/manager/reconciliation", params={"format": "json"},
                            data={"date": today.isoformat(), "csrf_token": csrf})
    assert response.status_code == 200, response.text
    result = response.json()
    kinds = {m["key"]: m["kind"] for m in result["mismatches"]}
    assert result["matched"] == 1
    assert kinds == {
        f"payment:{amount['payment_id']}": "amount_differs",
        f"payment:{status['payment_id']}": "status_differs",
        f"payment:{missing['payment_id']}": "missing_on_our_side",
        "payment:p000000000000000000000001": "missing_on_their_side",
    }
    page = browser.get(f"{gw.url}/manager/reconciliation")
    assert "missing on their side" in page.text
    tomorrow = (today + timedelta(days=1)).isoformat()
    carried = browser.post(f"{gw.url}/manager/reconciliation", params={"format": "json"},
                           data={"date": tomorrow, "csrf_token": csrf}).json()
    assert len(carried["carried"]) == 4
    assert conn.execute("SELECT COUNT(*) FROM reconciliation_items WHERE resolved_on IS NULL "
                        "AND last_date = ?", (tomorrow,)).fetchone()[0] == 4


def test_reconcile_resolves_items_carried_from_an_earlier_day() -> None:
    line = {"amount_fen": 100, "fee_fen": 1}
    result = reconcile({}, {"payment:late": line}, {}, {"payment:late": "missing_on_their_side",
                                                        "payment:gone": "missing_on_their_side"})
    assert result.mismatches == []
    assert result.resolved == ["payment:late"]
    assert result.carried == ["payment:gone"]
    fee = reconcile({"payment:x": {"amount_fen": 100, "fee_fen": 1}},
                    {"payment:x": {"amount_fen": 100, "fee_fen": 2}}, {}, {})
    assert [m.kind for m in fee.mismatches] == ["fee_differs"]


def test_daily_reconciler_runs_once_for_yesterday_after_the_cutoff(gw: ServedGateway) -> None:
    from aggregation_gateway.background import DailyReconciler

    reconciler = DailyReconciler(gw.gateway)
    today = datetime.now(UTC).replace(hour=0, minute=10, second=0, microsecond=0)
    assert reconciler.due(today) is None  # before reconcile_after_s (30 min)
    later = today.replace(hour=1)
    assert reconciler.due(later) == (today - timedelta(days=1)).date()
    assert reconciler.run_once(later) is True
    assert reconciler.run_once(later) is False
    run = gw.gateway.db.conn.execute("SELECT statement_date, mismatches FROM "
                                     "reconciliation_runs").fetchone()
    assert run["statement_date"] == (today - timedelta(days=1)).date().isoformat()


def test_live_payments_feed_shows_the_latest_payment(gw: ServedGateway) -> None:
    terminal = gw.terminal()
    paid = _sell(gw, terminal)
    browser, _ = _login(gw)
    feed = browser.get(f"{gw.url}/manager/payments.json").json()["payments"]
    assert feed[0]["payment_id"] == paid["payment_id"]
    assert (feed[0]["status"], feed[0]["merchant_name"]) == ("paid", "Li's greens")
    page = browser.get(f"{gw.url}/manager/")
    assert "payments.json" in page.text and terminal.device_id in page.text
    audit = browser.get(f"{gw.url}/manager/audit")
    assert audit.status_code == 200 and "/v1/orders" in audit.text
    assert "&#34;X-Signature&#34;:&#34;***&#34;" in audit.text
