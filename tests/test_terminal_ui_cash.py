"""The Cash key and the Print keys in the real vendor window under Xvfb: a cash sale is kept
as paid at once with the stall's 抹零 applied, no QR is shown and the cart clears; its receipt
and the Z report print on a (loopback) network printer."""

from __future__ import annotations

import shutil
import sqlite3
import uuid

import pytest
from test_terminal_receipts import PrinterPort, gb, qr_contents

from pos_terminal.stall_settings import StallSettings, save_stall_settings
from pos_terminal.testing import enrol_offline
from pos_terminal.ui.harness import TerminalWindows, VirtualScreen

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def windows(tmp_path_factory, mqtt_broker):
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is required for the UI tests (Debian package xvfb)")
    data_dir = tmp_path_factory.mktemp("terminal")
    enrol_offline(data_dir, f"T-CASH-{uuid.uuid4().hex[:6]}", gateway_url="http://127.0.0.1:9",
                  mqtt_port=mqtt_broker.port)
    printer = PrinterPort()
    save_stall_settings(data_dir, StallSettings(
        rounding="jiao", voice_muted=True, paper_mm=58,
        printer=f"network:127.0.0.1:{printer.port}", trace_url="http://127.0.0.1:8600"))
    logs = tmp_path_factory.mktemp("ui-logs")
    try:
        with VirtualScreen() as screen, TerminalWindows(data_dir, screen.display,
                                                        log_path=logs / "app.log") as running:
            running.vendor.wait_for(lambda s: s["display_connected"], what="customer display")
            yield running, data_dir, printer
    finally:
        printer.close()


def test_the_cash_key_keeps_a_rounded_paid_cash_sale_without_a_qr(windows):
    running, data_dir, _ = windows
    for target in ("key-3", "product-tofu", "key-1", "key-2", "key-8", "key-7",
                   "product-cabbage"):   # 3 x tofu 3.50, then 1287 g cabbage at 1.50 / 斤
        running.vendor.tap(target)
    before = running.vendor.wait_for(lambda s: len(s["lines"]) == 2, what="two lines")
    assert before["total_fen"] == 1050 + 386
    running.vendor.tap("cash")
    after = running.vendor.wait_for(lambda s: s["sales"] and not s["lines"],
                                    what="the cash sale kept and the cart cleared")
    [sale] = after["sales"]
    assert sale["total_fen"] == 1430 and sale["status"] == "paid"
    assert not after["locked"] and after["pending_sale_id"] is None
    assert "14.30" in after["notice"]
    assert running.customer.state()["phase"] != "qr"
    with sqlite3.connect(data_dir / "outbox.sqlite") as db:
        row = db.execute("SELECT payment_status, payment_channel, record FROM sales").fetchone()
    assert row[:2] == ("paid", "cash")
    assert b'"rounding_fen":6' in row[2]
    for target in ("key-2", "product-tofu", "mode-price", "key-5"):
        running.vendor.tap(target)   # 2 x tofu = 7.00; then ¥5 typed as the money handed over
    running.vendor.tap("cash")
    short = running.vendor.wait_for(lambda s: "收款失败" in s["notice"], what="too little")
    assert len(short["sales"]) == 1 and short["lines"]  # refused, nothing kept
    running.vendor.tap("key-0")      # ¥50
    running.vendor.tap("cash")
    paid = running.vendor.wait_for(lambda s: len(s["sales"]) == 2, what="second cash sale")
    assert "找零 ¥43.00" in paid["notice"] and paid["mode"] == "weight" and not paid["lines"]
    running.vendor.tap("cash")   # an empty cart: nothing is kept
    assert len(running.vendor.wait_for(lambda s: "empty" in s["notice"] or "空" in s["notice"],
                                       what="the empty-cart notice")["sales"]) == 2


def test_print_keys_print_the_selected_receipt_reprint_it_and_the_z_report(windows):
    running, _, printer = windows
    sale = running.vendor.state()["sales"][0]
    running.vendor.tap("open-sales")
    running.vendor.tap("print-receipt")            # nothing selected, nothing printed yet
    refused = running.vendor.wait_for(lambda s: "打印失败" in s["notice"], what="refusal")
    assert "no receipt" in refused["notice"] and printer.jobs == []
    running.vendor.tap(f"sale-{sale['seq']}")
    running.vendor.tap("print-receipt")
    [job] = printer.wait_jobs(1)
    assert gb("豆腐") in job and gb("现金 Cash") in job and gb("抹零") in job
    assert qr_contents(job)[0].startswith(b"http://127.0.0.1:8600/trace/")
    running.vendor.wait_for(lambda s: s["notice"] == "已打印", what="printed")
    running.vendor.tap(f"sale-{sale['seq']}")      # unselect: the key reprints the last
    running.vendor.tap("print-receipt")
    assert gb("重印") in printer.wait_jobs(2)[1]
    running.vendor.tap("open-z-report")
    running.vendor.tap("print-z-report")
    z_report = printer.wait_jobs(3)[2]
    assert gb("日结") in z_report and gb("现金") in z_report and b"21.30" in z_report
    running.vendor.tap("back")
    running.vendor.tap("back")
