"""Several gateway processes on one PostgreSQL database, as a market group runs them.

Real processes throughout: two or three ``tracepay gateway`` instances, PostgreSQL,
Mosquitto with the files the gateways write, the sandbox platform. A terminal, a shopper
and a manager cannot tell which instance answered; a killed instance loses nothing; a
notification or a refund handled twice by two instances pays once.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from gateway_tier_support import BRIDGE_USER, GatewayTier, http_session, wait_until
from test_gateway_mqtt import Listener
from test_gateway_refund_lost_answers import _payouts, faulty_platform  # noqa: F401
from test_gateway_support import MANAGER, Platform, form_token, pay_at_checkout

from market_protocol import canonical_json, check_trade
from market_protocol.topics import TRADES_TOPIC
from service_base.testing import free_port, tracepay_command


@pytest.fixture
def tier(tmp_path: Path, postgres_server, faulty_platform: Platform  # noqa: F811
         ) -> Iterator[GatewayTier]:
    url = postgres_server.new_database()
    tier = GatewayTier(tmp_path, url, faulty_platform.url)
    try:
        yield tier
    finally:
        tier.close()
        postgres_server.drop_database(url)


def _charge(tier: GatewayTier, terminal: Any) -> tuple[str, dict[str, Any]]:
    url, sale = terminal.charge()
    assert url.startswith(tier.public_url)
    return url, sale


def test_each_sale_is_stored_once_and_a_killed_instances_share_waits_for_it(
        tier: GatewayTier) -> None:
    a, b = tier.instance("a"), tier.instance("b")
    passwd = tier.password_file.read_text()
    acl = tier.acl_file.read_text()
    for user in ("tracepay-gateway-a", "tracepay-gateway-b"):
        assert f"{user}:$7$" in passwd and f"user {user}\n" in acl
    terminal = tier.terminal(a, "dev-share-1")
    first = [_charge(tier, terminal)[1] for _ in range(20)]
    tier.publish_sales(terminal, first)
    tier.publish_sales(terminal, first[:5])  # redelivered copies change nothing
    wait_until(lambda: tier.count("SELECT COUNT(*) FROM sales") == 20, message="20 sales")

    b.kill()
    later = [_charge(tier, terminal)[1] for _ in range(20)]
    tier.publish_sales(terminal, later)
    wait_until(lambda: tier.count("SELECT COUNT(*) FROM sales") > 20,
               message="instance a storing its share")
    _settled(tier)
    # b's share waits in b's session at the broker: nothing handles it twice, nothing
    # drops it.
    assert tier.count("SELECT COUNT(*) FROM sales") < 40
    b.process.start()
    wait_until(lambda: tier.count("SELECT COUNT(*) FROM sales") == 40,
               message="b's share after its restart")
    ids = {sale["sale_id"] for sale in first + later}
    assert tier.count("SELECT COUNT(DISTINCT sale_id) FROM sales WHERE sale_id = ANY(%s)",
                      list(ids)) == 40


def _settled(tier: GatewayTier, quiet_s: float = 1.5) -> None:
    """Until the sales count stays the same for ``quiet_s``."""
    import time

    last, since = -1, time.monotonic()
    while time.monotonic() - since < quiet_s:
        now = tier.count("SELECT COUNT(*) FROM sales")
        if now != last:
            last, since = now, time.monotonic()
        time.sleep(0.1)


def test_fifty_copies_of_one_notification_over_both_instances_make_one_payment(
        tier: GatewayTier, faulty_platform: Platform) -> None:  # noqa: F811
    a, b = tier.instance("a"), tier.instance("b")
    terminal = tier.terminal(a, "dev-notify-1")
    qr, sale = _charge(tier, terminal)
    payment = b.scan(qr)
    assert payment["status"] == "pending"
    body = canonical_json.dumps({
        "notify_id": "n-1", "order_id": "o-1", "out_trade_no": payment["payment_id"],
        "status": "PAID", "amount_fen": payment["amount_fen"], "currency": "CNY",
        "payer_id": "shopper-9", "channel_txn_id": "txn-1", "paid_at_ms": 1_763_700_000_000})
    signature = faulty_platform.sign(body)
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda i: (a, b)[i % 2].notify(body, signature), range(50)))
    assert answers == [200] * 50
    pid = payment["payment_id"]
    assert a.payment(pid)["status"] == b.payment(pid)["status"] == "paid"
    assert tier.count("SELECT COUNT(*) FROM payment_events WHERE payment_id = %s AND "
                      "to_status = 'paid'", pid) == 1
    assert tier.count("SELECT COUNT(*) FROM notifications WHERE payment_id = %s", pid) == 1
    tier.publish_sales(terminal, [sale])
    wait_until(lambda: tier.count("SELECT COUNT(*) FROM outbox WHERE kind = 'trade' AND "
                                  "record_id = %s", sale["sale_id"]) == 1,
               message="one trade for the paid sale")


def test_a_killed_instance_leaves_its_orders_to_the_other_and_nothing_is_lost(
        tier: GatewayTier) -> None:
    a, b = tier.instance("a"), tier.instance("b")
    terminal = tier.terminal(a, "dev-kill-1")
    listener = Listener(tier.broker, TRADES_TOPIC, user=BRIDGE_USER)
    try:
        qr, sale = _charge(tier, terminal)
        tier.publish_sales(terminal, [sale])
        payment = a.scan(qr)  # the order is a's: a asked the platform for it
        a.kill()
        assert pay_at_checkout(payment["checkout_url"]).status_code in (302, 303)
        # Its notification goes to the public address and nobody answers there; b's
        # sweeper asks the platform and settles the payment.
        paid = b.wait_status(payment["payment_id"], "paid", timeout=60)
        assert paid["amount_fen"] == sale["total_fen"]
        trade = check_trade(listener.next(TRADES_TOPIC, timeout=60,
                                          where=lambda r: r["trade_id"] == sale["sale_id"]))
        assert trade["payment"]["amount_fen"] == sale["total_fen"]
        a.process.start()
        wait_until(lambda: a.http.get(f"{a.url}/healthz", timeout=5).json()["mqtt"]
                   == "subscribed", message="a back on the broker")
        assert a.payment(payment["payment_id"])["status"] == "paid"
        assert tier.count("SELECT COUNT(*) FROM outbox WHERE kind = 'trade' AND "
                          "record_id = %s", sale["sale_id"]) == 1
    finally:
        listener.close()


def test_a_refund_retried_on_the_other_instance_pays_once(
        tier: GatewayTier, faulty_platform: Platform) -> None:  # noqa: F811
    a, b = tier.instance("a"), tier.instance("b")
    terminal = tier.terminal(a, "dev-refund-1")
    qr, _ = _charge(tier, terminal)
    payment = a.scan(qr)
    pay_at_checkout(payment["checkout_url"])
    pid, amount = payment["payment_id"], payment["amount_fen"]
    a.wait_status(pid, "paid", timeout=60)
    staged = requests.post(f"{faulty_platform.url}/sandbox/faults", timeout=10, json={
        "app_id": tier.app_id, "refund_answer": "hang", "seconds": 3, "times": 1})
    assert staged.status_code == 200, staged.text
    first = a.refund(pid, amount, "R-1")
    assert first.status_code == 202 and first.json()["status"] == "processing", first.text
    assert _payouts(faulty_platform, pid) == [amount]
    other_number = b.refund(pid, amount, "R-2")
    assert other_number.status_code == 409
    assert other_number.json()["error"] == "refund_exceeds_payment"
    retry = b.refund(pid, amount, "R-1")
    assert retry.status_code == 201 and retry.json()["status"] == "success", retry.text
    assert retry.json()["refund_id"] == first.json()["refund_id"]
    assert _payouts(faulty_platform, pid) == [amount]
    assert a.payment(pid)["status"] == b.payment(pid)["status"] == "refunded"


def test_a_manager_session_and_login_throttling_hold_on_every_instance(
        tier: GatewayTier) -> None:
    env = {"TRACEPAY_GATEWAY_LOGIN_FAILURES_PER_ACCOUNT_ADDRESS": "3/hour"}
    a, b = tier.instance("a", **env), tier.instance("b", **env)
    browser = http_session()
    page = browser.get(f"{a.url}/manager/login", timeout=30)
    logged_in = browser.post(f"{a.url}/manager/login", timeout=30, data={
        "username": MANAGER[0], "password": MANAGER[1], "csrf_token": form_token(page.text)})
    assert logged_in.status_code == 200 and "Terminals" in logged_in.text
    elsewhere = browser.get(f"{b.url}/manager/", timeout=30)  # the same cookie, on b
    assert elsewhere.status_code == 200 and "Terminals" in elsewhere.text, elsewhere.text
    token = form_token(elsewhere.text)
    out = browser.post(f"{a.url}/manager/logout", data={"csrf_token": token}, timeout=30,
                       allow_redirects=False)
    assert out.status_code in (302, 303)
    assert "Terminals" not in browser.get(f"{b.url}/manager/", timeout=30).text

    devices = "/v1/devices"
    guesses = [(a, b)[i % 2].http.get(f"{(a, b)[i % 2].url}{devices}", timeout=30,
                                      auth=(MANAGER[0], f"guess-{i}")).status_code
               for i in range(4)]
    assert guesses == [401, 401, 401, 429]


def _refused(argv: list[str], env: dict[str, str]) -> str:
    import os

    result = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                            env={**os.environ, **env})
    assert result.returncode != 0, result.stdout + result.stderr
    return result.stderr


def test_a_name_in_use_other_key_files_and_a_second_sqlite_gateway_are_refused(
        tier: GatewayTier, tmp_path: Path) -> None:
    a = tier.instance("a")
    twin = tier.instance("a", start=False)
    assert re.search(r"instance 'a' already runs on this database \(pid \d+",
                     _refused(twin.argv, twin.env))
    stranger = tier.instance("c", copy_keys=False, start=False)
    assert "is not the one instance 'a' uses" in _refused(stranger.argv, stranger.env)
    assert a.http.get(f"{a.url}/healthz", timeout=5).json()["instance"] == "a"

    data = tmp_path / "sqlite-gateway"
    port = free_port()
    argv = tracepay_command("gateway", "--port", str(port), "--data-dir", str(data),
                            "--manager-password", MANAGER[1],
                            "--no-platform-auto-register")
    from service_base.testing import ServiceProcess

    with ServiceProcess(argv, log_path=tmp_path / "sqlite-1.log",
                        health_url=f"http://127.0.0.1:{port}/healthz",
                        env={"TRACEPAY_DATABASE_URL": ""}):
        second = tracepay_command("gateway", "--port", str(free_port()), "--data-dir",
                                  str(data), "--manager-password", MANAGER[1],
                                  "--no-platform-auto-register")
        assert "another gateway (pid" in _refused(second, {"TRACEPAY_DATABASE_URL": ""})
        named = tracepay_command("gateway", "--instance-name", "x", "--data-dir",
                                 str(tmp_path / "other"), "--manager-password", MANAGER[1],
                                 "--no-platform-auto-register")
        assert "need a shared PostgreSQL database" in _refused(
            named, {"TRACEPAY_DATABASE_URL": ""})
