"""The customer display turns to Paid while the market's broker is down.

The real terminal windows under Xvfb (vendor screen and customer display, as they run),
enrolled at a real gateway on a loopback port, the sandbox platform as its own process and
a real Mosquitto that is stopped before the sale: the shopper pays over the gateway's HTTP
pages, and the terminal learns it only through its MACed HTTP status poll.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_gateway_support import ServedGateway, pay_at_checkout, platform  # noqa: F401

from pos_terminal.provisioning import save_enrolment
from pos_terminal.ui.harness import TerminalWindows, VirtualScreen

pytestmark = pytest.mark.timeout(240)


def test_the_customer_display_turns_to_paid_with_the_broker_down(
        tmp_path: Path, platform, fresh_broker) -> None:  # noqa: F811
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is required for the UI tests (Debian package xvfb)")
    broker = fresh_broker
    data_dir = tmp_path / "terminal"
    with ServedGateway(tmp_path, platform.url, mqtt_host=broker.host,
                       mqtt_port=broker.port, mqtt_public_host=broker.host,
                       mqtt_public_port=broker.port) as gw:
        enrolled = gw.enrol("stall-9")
        save_enrolment(data_dir, gw.claim(enrolled["enrolment_code"]).json())
        broker.stop()  # the market's network: no broker from the start of the day
        with VirtualScreen() as screen, TerminalWindows(
                data_dir, screen.display, log_path=tmp_path / "app.log") as windows:
            windows.vendor.wait_for(lambda s: s["display_connected"], what="customer display")
            for target in ("key-5", "key-0", "key-0", "product-cabbage", "charge"):
                windows.vendor.tap(target)
            state = windows.vendor.wait_for(lambda s: s["pending_sale_id"],
                                            what="a pending sale")
            display = windows.customer.wait_for(
                lambda s: s["phase"] == "qr" and s["sale_id"] == state["pending_sale_id"],
                what="the QR")
            assert state["outbox"]["queued"] == 1  # nothing went up: no broker

            shopper = gw.scan(display["qr_url"]).json()  # the shopper's phone has 4G
            assert pay_at_checkout(shopper["checkout_url"]).status_code in (302, 303)
            gw.wait_status(shopper["payment_id"], "paid")
            windows.customer.wait_for(lambda s: s["phase"] == "paid", what="Paid on the display")
            after = windows.vendor.wait_for(lambda s: not s["locked"],
                                            what="the vendor screen unlocked")
            assert next(sale for sale in after["sales"]
                        if sale["seq"] == state["pending_seq"])["status"] == "paid"
            assert after["outbox"]["queued"] == 1  # the sale itself still waits for MQTT
