"""A sale voided while the terminal is offline: the void waits in the outbox and goes up
when the link is back, the shopper's scan is then refused with a page that says why; and
one paid before the void reached the gateway stays on the vendor's books: paid, flagged
for refund, on the Z report.

Real Mosquitto (stopped and started again), the gateway's real MQTT link, the sandbox
platform as its own process, the real terminal (outbox, uplink), a shopper over HTTP.
"""

from __future__ import annotations

import time
from pathlib import Path

from test_gateway_mqtt import _link, _wait
from test_gateway_support import ServedGateway, pay_at_checkout, platform  # noqa: F401

from pos_terminal import DEFAULT_PRODUCTS, Cart, Terminal
from pos_terminal.day_report import day_start_ms, day_summary
from pos_terminal.provisioning import save_enrolment
from pos_terminal.ui.day_model import sale_view, z_report_lines

_until = _wait


def test_paid_before_the_void_arrived_is_kept_and_offered_for_refund(
        tmp_path: Path, platform, fresh_broker) -> None:  # noqa: F811
    broker = fresh_broker
    with ServedGateway(tmp_path, platform.url, mqtt_host=broker.host,
                       mqtt_port=broker.port, mqtt_public_host=broker.host,
                       mqtt_public_port=broker.port) as gw:
        enrolled = gw.enrol("stall-7")
        save_enrolment(tmp_path / "terminal", gw.claim(enrolled["enrolment_code"]).json())
        link = _link(gw)
        terminal = Terminal.open(tmp_path / "terminal")
        terminal.start()
        try:
            cart = Cart()
            cart.add(DEFAULT_PRODUCTS[0], weight_g=1500)
            charged = terminal.charge(cart, render_png=False)
            _until(lambda: terminal.outbox_counts()["queued"] == 0)
            # The market's network goes down: no broker, and the terminal reaches nothing
            # (it runs without its uplink or its HTTP status poll).
            broker.stop()
            terminal.close()
            terminal = Terminal.open(tmp_path / "terminal")
            shopper = gw.scan(charged.qr_url).json()  # the shopper's phone has 4G
            assert pay_at_checkout(shopper["checkout_url"]).status_code in (302, 303)
            gw.wait_status(shopper["payment_id"], "paid")
            voided = terminal.void(charged.sale_id)  # offline: the vendor cancels
            assert voided.sale_status == "void"
            assert terminal.sale(charged.sale_id).payment_status != "paid"
            broker.start()  # back: the void goes up, the paid result comes down
            terminal.start()
            _until(lambda: terminal.sale(charged.sale_id).payment_status == "paid")
            _until(lambda: gw.gateway.db.conn.execute(
                "SELECT voided_at_ms FROM sales WHERE sale_id = ?",
                (charged.sale_id,)).fetchone()[0] is not None)
            assert gw.payment(shopper["payment_id"])["status"] == "paid"

            stored = terminal.sale(charged.sale_id)
            view = sale_view(stored)
            assert view.status == "paid_after_void" and view.refundable
            today = day_start_ms(int(time.time() * 1000))
            summary = day_summary(terminal.today_sales(), day_ms=today)
            assert summary["paid"] == 1 and summary["paid_fen"] == charged.total_fen
            assert summary["void"] == 0
            assert summary["paid_after_void"] == 1
            assert summary["paid_after_void_fen"] == charged.total_fen
            assert summary["paid_after_void_seqs"] == [charged.seq]
            lines = z_report_lines(summary, "en", "Li's greens", terminal.device_id)
            assert any(line.startswith("Paid after void") for line in lines)
            report = terminal.close_day()
            assert report.png.startswith(b"\x89PNG")

            # The vendor refunds it from the terminal; then nothing is left to refund.
            answer = terminal.request_refund(charged.sale_id, charged.total_fen, "voided")
            assert answer["state"] == "sent", answer
            _until(lambda: terminal.sale(charged.sale_id).refunded_fen == charged.total_fen)
            after = day_summary(terminal.today_sales(), day_ms=today)
            assert after["paid_after_void"] == 0
            assert after["refunded_fen"] == charged.total_fen and after["net_fen"] == 0
        finally:
            terminal.stop()
            terminal.close()
            link.stop()



def test_voided_offline_and_unpaid_the_void_goes_up_and_the_shopper_is_told(
        tmp_path: Path, platform, fresh_broker) -> None:  # noqa: F811
    broker = fresh_broker
    with ServedGateway(tmp_path, platform.url, mqtt_host=broker.host,
                       mqtt_port=broker.port, mqtt_public_host=broker.host,
                       mqtt_public_port=broker.port) as gw:
        enrolled = gw.enrol("stall-7")
        save_enrolment(tmp_path / "terminal", gw.claim(enrolled["enrolment_code"]).json())
        link = _link(gw)
        terminal = Terminal.open(tmp_path / "terminal")
        terminal.start()
        try:
            cart = Cart()
            cart.add(DEFAULT_PRODUCTS[0], weight_g=700)
            charged = terminal.charge(cart, render_png=False)
            _until(lambda: terminal.outbox_counts()["queued"] == 0)
            broker.stop()
            terminal.close()
            terminal = Terminal.open(tmp_path / "terminal")  # offline: reaches nothing
            terminal.void(charged.sale_id)
            assert terminal.outbox_counts()["queued"] == 1  # the void waits in the outbox
            broker.start()
            terminal.start()
            _until(lambda: terminal.outbox_counts()["queued"] == 0)
            _until(lambda: gw.gateway.db.conn.execute(
                "SELECT voided_at_ms FROM sales WHERE sale_id = ?",
                (charged.sale_id,)).fetchone()[0] is not None)

            answer = gw.scan(charged.qr_url)
            assert answer.status_code == 410 and answer.json()["error"] == "sale_voided"
            page = gw.http.get(charged.qr_url, headers={"Accept": "text/html",
                                                        "Accept-Language": "zh-CN,zh"})
            assert page.status_code == 410 and "摊主已取消此单" in page.text
            summary = day_summary(terminal.today_sales(),
                                  day_ms=day_start_ms(int(time.time() * 1000)))
            assert summary["void"] == 1 and summary["paid"] == 0
            assert summary["paid_after_void"] == 0 and summary["charged_fen"] == 0
        finally:
            terminal.stop()
            terminal.close()
            link.stop()
