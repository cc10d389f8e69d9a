"""Scan landing and payment over real HTTP: a sandbox platform process, a served gateway."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_gateway_support import (  # noqa: F401 - fixtures
    MANAGER,
    ServedGateway,
    Terminal,
    pay_at_checkout,
    platform,
)


@pytest.fixture
def gw(tmp_path: Path, platform) -> ServedGateway:  # noqa: F811
    with ServedGateway(tmp_path, platform.url) as served:
        yield served


def test_scan_creates_one_order_and_payment_completes(gw: ServedGateway) -> None:
    terminal = gw.terminal()
    url, _ = terminal.charge()
    first = gw.scan(url)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["status"] == "pending"
    assert body["amount_fen"] == 950
    assert body["merchant"]["merchant_id"] == "stall-7"
    again = gw.scan(url)
    assert again.json()["payment_id"] == body["payment_id"]
    assert again.json()["checkout_url"] == body["checkout_url"]
    assert pay_at_checkout(body["checkout_url"]).status_code in (302, 303)
    paid = gw.wait_status(body["payment_id"], "paid")
    assert paid["paid_at_ms"] > 0
    assert paid["seq"] == 1
    conn = gw.gateway.db.conn
    orders = conn.execute("SELECT COUNT(*) FROM channel_calls WHERE method = 'POST' AND "
                          "url LIKE '%/v1/orders'").fetchone()[0]
    assert orders == 1
    replay = gw.scan(url)
    assert replay.status_code == 409
    assert replay.json()["error"] == "already_paid"


def test_forged_mac_is_refused(gw: ServedGateway) -> None:
    terminal = gw.terminal()
    url, _ = terminal.charge(key=b"\x01" * 32)
    response = gw.scan(url)
    assert response.status_code == 403
    assert response.json()["error"] == "bad_mac"
    assert gw.gateway.db.conn.execute("SELECT COUNT(*) FROM payments").fetchone()[0] == 0


def test_token_for_another_gateway_is_refused(gw: ServedGateway) -> None:
    terminal = gw.terminal()
    url, _ = terminal.charge(gateway_url="http://127.0.0.1:1")
    assert gw.scan(url).json()["error"] == "bad_mac"


def test_expired_qr_is_refused(gw: ServedGateway) -> None:
    terminal = gw.terminal()
    url, _ = terminal.charge(issued_at=int(__import__("time").time()) - 301)
    response = gw.scan(url)
    assert response.status_code == 410
    assert response.json()["error"] == "qr_expired"


def test_malformed_token(gw: ServedGateway) -> None:
    response = gw.scan(f"{gw.url}/q/not-a-token-at-all-but-long-enough-to-try-decoding-it")
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_token"


def test_unknown_and_revoked_device(gw: ServedGateway) -> None:
    terminal = gw.terminal(device_id="dev-a")
    url, _ = terminal.charge()
    ghost = Terminal({**terminal.claim, "device_id": "dev-ghost"})
    ghost_url, _ = ghost.charge()
    assert gw.scan(ghost_url).json()["error"] == "unknown_device"
    revoked = gw.http.post(f"{gw.url}/v1/devices/dev-a/revoke", auth=MANAGER)
    assert revoked.status_code == 200
    response = gw.scan(url)
    assert response.status_code == 403
    assert response.json()["error"] == "device_revoked"


def test_order_conflict_same_order_number_other_amount(gw: ServedGateway) -> None:
    terminal = gw.terminal()
    url, _ = terminal.charge()
    assert gw.scan(url).status_code == 200
    terminal.seq -= 1
    other, _ = terminal.charge([Terminal.line("egg", "piece", 80, quantity=3)])
    response = gw.scan(other)
    assert response.status_code == 409
    assert response.json()["error"] == "order_conflict"


def test_html_scan_shows_amount_and_pay_link(gw: ServedGateway) -> None:
    terminal = gw.terminal()
    url, _ = terminal.charge()
    response = gw.http.get(url, headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "¥9.50" in response.text
    assert "/checkout/" in response.text
    bad = gw.http.get(url[:-4] + "AAAA", headers={"Accept": "text/html"})
    assert bad.status_code == 403
    assert "bad_mac" in bad.text


def test_html_scan_hands_off_to_the_consumer_app(tmp_path: Path, platform) -> None:  # noqa: F811
    with ServedGateway(tmp_path, platform.url, consumer_url="http://127.0.0.1:9") as gw:
        terminal = gw.terminal()
        url, _ = terminal.charge()
        response = gw.http.get(url, headers={"Accept": "text/html"}, allow_redirects=False)
        assert response.status_code == 303
        payment_id = gw.gateway.db.conn.execute("SELECT payment_id FROM payments").fetchone()[0]
        assert response.headers["Location"] == f"http://127.0.0.1:9/pay/{payment_id}"
