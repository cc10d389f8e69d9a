"""Revoking a terminal closes its open orders at the platform: a code a shopper already
holds can no longer be paid, and the scan page says why. Real gateway on a loopback port,
the sandbox platform as its own process."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_gateway_support import MANAGER, ServedGateway, pay_at_checkout, platform  # noqa: F401


@pytest.fixture
def gw(tmp_path: Path, platform) -> ServedGateway:  # noqa: F811
    with ServedGateway(tmp_path, platform.url) as served:
        yield served


def test_a_revoked_terminals_open_orders_cannot_be_paid(gw: ServedGateway) -> None:
    terminal = gw.terminal(device_id="dev-lost")
    url, _ = terminal.charge()
    opened = gw.scan(url).json()  # a shopper has the checkout open
    assert opened["status"] == "pending"
    revoked = gw.http.post(f"{gw.url}/v1/devices/dev-lost/revoke", auth=MANAGER)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["orders"] == {"open": 1, "closed": 1}
    paid = pay_at_checkout(opened["checkout_url"])
    assert paid.status_code >= 400, paid.text  # the platform refuses: the order is closed
    assert gw.payment(opened["payment_id"])["status"] == "expired"
    platform_view = gw.gateway.channels["sandbox"].query_order(opened["payment_id"])
    assert platform_view.status == "closed"
    # The shopper scanning again is told why, in their language.
    again = gw.scan(url)
    assert again.status_code == 403 and again.json()["error"] == "device_revoked"
    assert "out of service" in again.json()["message"]
    page = gw.http.get(url, headers={"Accept": "text/html", "Accept-Language": "zh-CN"})
    assert page.status_code == 403 and "已被市场停用" in page.text


def test_a_payment_that_beat_the_revoke_stays_paid(gw: ServedGateway) -> None:
    terminal = gw.terminal(device_id="dev-busy")
    url, _ = terminal.charge()
    opened = gw.scan(url).json()
    pay_at_checkout(opened["checkout_url"])
    gw.wait_status(opened["payment_id"], "paid")
    second_url, _ = terminal.charge()
    pending = gw.scan(second_url).json()
    revoked = gw.http.post(f"{gw.url}/v1/devices/dev-busy/revoke", auth=MANAGER).json()
    assert revoked["orders"] == {"open": 1, "closed": 1}
    assert gw.payment(opened["payment_id"])["status"] == "paid"
    assert gw.payment(pending["payment_id"])["status"] == "expired"


def test_the_sweeper_closes_what_a_cut_short_revoke_left_open(gw: ServedGateway) -> None:
    terminal = gw.terminal(device_id="dev-cut")
    url, _ = terminal.charge()
    opened = gw.scan(url).json()
    gw.gateway.registry.revoke("dev-cut")  # revoked, but its orders not yet closed
    assert gw.payment(opened["payment_id"])["status"] == "pending"
    gw.gateway.sweeps.sweep()
    assert gw.payment(opened["payment_id"])["status"] == "expired"
    assert pay_at_checkout(opened["checkout_url"]).status_code >= 400
