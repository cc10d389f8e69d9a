"""Typing what the scale does not give, in the real vendor window under Xvfb (no scale):
a unit price typed for a weighed item, a weight typed by hand (marked on the sale record and
the receipt), and the free-amount key. The sale is read back from the outbox file the
window wrote, and its receipt rendered from that record.
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid

import pytest
from test_terminal_receipts import text_lines

from market_protocol import canonical_json, check_sale, line_amount_fen
from pos_terminal.outbox import StoredSale
from pos_terminal.receipt import receipt_bytes
from pos_terminal.testing import enrol_offline
from pos_terminal.ui.harness import TerminalWindows, VirtualScreen

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def windows(tmp_path_factory, mqtt_broker):
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is required for the UI tests (Debian package xvfb)")
    data_dir = tmp_path_factory.mktemp("terminal")
    enrol_offline(data_dir, f"T-TY-{uuid.uuid4().hex[:6]}", gateway_url="http://127.0.0.1:9",
                  mqtt_port=mqtt_broker.port)
    with VirtualScreen() as screen, TerminalWindows(
            data_dir, screen.display, log_path=data_dir / "app.log",
            extra_args=("--geometry", "800x480+0+0")) as running:
        running.vendor.wait_for(lambda s: s["display_connected"], what="customer display")
        running.data_dir = data_dir
        yield running


def taps(windows, *targets: str) -> dict:
    for target in targets:
        windows.vendor.tap(target)
    return windows.vendor.state()


def test_a_typed_unit_price_waits_for_the_typed_weight(windows):
    # 单价 12.00 then the weighed key, no scale: the price is kept and the weight asked for
    state = taps(windows, "mode-price", "key-1", "key-2", "product-cabbage")
    assert state["lines"] == [] and state["held_price_fen"] == 1200
    assert state["mode"] == "weight" and "12.00" in state["notice"]
    assert "@¥12.00" in state["entry_text"]
    state = taps(windows, "key-3", "key-5", "key-0", "product-cabbage")
    line = state["lines"][0]
    assert (line["product_code"], line["weight_g"], line["unit_price_fen"]) == \
        ("cabbage", 350, 1200)
    assert line["amount_fen"] == line_amount_fen("jin", 1200, weight_g=350) == 840
    assert line["weight_entry"] == "manual" and state["held_price_fen"] is None
    # or: price, then switch to weight mode and type the weight, then the key
    state = taps(windows, "mode-price", "key-8", "mode-weight", "key-2", "key-0", "key-0",
                 "product-tomato")
    assert (state["lines"][1]["unit_price_fen"], state["lines"][1]["weight_g"]) == (800, 200)
    taps(windows, "clear-cart")


def test_free_amount_and_hand_typed_weight_reach_the_record_and_the_receipt(windows):
    state = taps(windows, "free-amount")  # nothing typed: asks for the amount in yuan
    assert state["lines"] == [] and state["mode"] == "price"
    assert state["notice"] == "输入金额（元）后再按「金额」"
    state = taps(windows, "key-5", "key-dot", "key-5", "free-amount",
                 "key-5", "key-0", "key-0", "product-cabbage")
    assert [(line["product_code"], line["quantity"], line["amount_fen"])
            for line in state["lines"]][0] == ("free-amount", 1, 550)
    windows.vendor.tap("charge")
    sale_id = windows.vendor.wait_for(lambda s: s["pending_sale_id"],
                                      what="the sale")["pending_sale_id"]
    with sqlite3.connect(windows.data_dir / "outbox.sqlite") as db:
        row = db.execute("SELECT seq, sale_id, created_at_ms, total_fen, record, state, "
                         "sale_status, payment_status, payment_id, refunded_fen "
                         "FROM sales WHERE sale_id = ?", (sale_id,)).fetchone()
    record = check_sale(canonical_json.loads(row[4]))
    free, cabbage = record["lines"]
    assert (free["name"], free["unit"], free["unit_price_fen"]) == ("Amount", "piece", 550)
    assert "weight_entry" not in free
    assert (cabbage["weight_g"], cabbage["weight_entry"]) == (500, "manual")
    stored = StoredSale(*row[:4], record, *row[5:])
    lines = text_lines(receipt_bytes(stored, stall="王家蔬菜", device_id=record["device_id"]))
    assert any(line.startswith("  0.500kg(手输) @1.50/斤") for line in lines), lines
    assert any(line.startswith("  x1 @5.50") for line in lines), lines
    windows.vendor.tap("cancel")
    windows.vendor.wait_for(lambda s: not s["locked"], what="cancelled")
    # the cart row says the weight was typed (手输), the free amount's row has no mark
    words = [c["text"] for c in windows.vendor.layout()["controls"]]
    assert any("500 克 (手输)" in text for text in words), words
    assert sum("手输" in text for text in words) == 1
    taps(windows, "clear-cart")
