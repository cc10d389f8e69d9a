"""The real terminal windows under Xvfb: tap through a sale to Paid over a real Mosquitto.

Taps go through Kivy's input-provider path (touch down, one frame, touch up) into the real
widgets; the payment result arrives as a MACed ``tracepay.payment_result/1`` on the real
broker. Screenshots of both windows land in the test's directory (and, when
``TRACEPAY_SCREENSHOTS_DIR`` is set, there too).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from PIL import Image

from market_protocol import (
    PAYMENT_RESULT_SCHEMA,
    canonical_json,
    derive_device_key,
    mac_record,
    split_qr_url,
    verify_token,
)
from market_protocol.topics import results_topic
from pos_terminal.qr_image import qr_matrix
from pos_terminal.testing import TEST_MASTER_KEY, enrol_offline
from pos_terminal.ui.harness import TerminalWindows, VirtualScreen
from service_base.testing import free_port

pytestmark = pytest.mark.timeout(240)

GATEWAY = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def screen():
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is required for the UI tests (Debian package xvfb)")
    with VirtualScreen() as virtual:
        yield virtual


@pytest.fixture(scope="module")
def device(tmp_path_factory, mqtt_broker):
    data_dir = tmp_path_factory.mktemp("terminal")
    device_id = f"T-UI-{uuid.uuid4().hex[:6]}"
    enrol_offline(data_dir, device_id, gateway_url=GATEWAY, mqtt_port=mqtt_broker.port)
    return data_dir, device_id, derive_device_key(TEST_MASTER_KEY, device_id, 1)


@pytest.fixture(scope="module")
def windows(screen, device, tmp_path_factory):
    data_dir, *_ = device
    logs = tmp_path_factory.mktemp("ui-logs")
    with TerminalWindows(data_dir, screen.display, log_path=logs / "app.log") as running:
        running.vendor.wait_for(lambda s: s["display_connected"], what="customer display")
        yield running


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    directory = tmp_path_factory.mktemp("screenshots")
    extra = os.environ.get("TRACEPAY_SCREENSHOTS_DIR")

    def save(client, name: str) -> Path:
        path = client.screenshot(directory / f"{name}.png")
        assert path.stat().st_size > 1000
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(extra) / path.name)
        return path
    return save


def publish_result(port: int, record: dict) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        info = client.publish(results_topic(record["device_id"]), canonical_json.dumps(record),
                              qos=1)
        info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def result_for(device_id: str, seq: int, amount_fen: int, status: str, key: bytes,
               updated_at_ms: int) -> dict:
    record = {"schema": PAYMENT_RESULT_SCHEMA, "payment_id": f"pay-{seq}",
              "device_id": device_id, "seq": seq, "status": status, "amount_fen": amount_fen,
              "currency": "CNY", "channel": "sandbox", "channel_txn_id": None,
              "trace_code": None, "updated_at_ms": updated_at_ms, "mac": "0" * 64}
    record["mac"] = mac_record(record, key)
    return record


def tap_all(windows, *targets: str) -> int:
    for target in targets:
        windows.vendor.tap(target)
    return len(targets)


def charge(windows) -> dict:
    windows.vendor.tap("charge")
    state = windows.vendor.wait_for(lambda s: s["pending_sale_id"], what="a pending sale")
    windows.customer.wait_for(lambda s: s["phase"] == "qr"
                              and s["sale_id"] == state["pending_sale_id"], what="the QR")
    return state


def assert_qr_on_screen_is_exact(screenshot: Path, display: dict) -> None:
    """Every module of the drawn QR is solid black or white and matches the matrix."""
    _, matrix = qr_matrix(display["qr_url"])
    modules = len(matrix)
    x, y, side = display["qr_rect"]
    per = display["qr_px_per_module"]
    assert side == per * modules and per >= 8
    image = Image.open(screenshot).convert("L")
    top = image.height - (y + side)
    for row in range(modules):
        for col in range(modules):
            box = (int(x) + col * per, int(top) + row * per,
                   int(x) + (col + 1) * per, int(top) + (row + 1) * per)
            low, high = image.crop(box).getextrema()
            expected = 0 if matrix[row][col] else 255
            assert low == high == expected, (row, col, low, high)


def test_tap_through_a_five_line_sale_to_paid(windows, device, mqtt_broker, shots):
    _, device_id, key = device
    taps = tap_all(windows, "key-5", "key-0", "key-0", "product-cabbage",   # 500 g
                   "key-3", "key-5", "key-0", "product-tomato",             # 350 g
                   "product-tofu",                                          # 1 piece
                   "key-1", "key-2", "key-0", "key-0", "product-chicken",   # 1200 g
                   "key-2", "product-tofu")                                 # 2 pieces
    state = windows.vendor.state()
    assert [(line["product_code"], line["weight_g"], line["quantity"]) for line in
            state["lines"]] == [("cabbage", 500, None), ("tomato", 350, None),
                                ("tofu", None, 1), ("chicken", 1200, None), ("tofu", None, 2)]
    total = 150 + 280 + 350 + 3840 + 700
    assert state["total_fen"] == total
    items = windows.customer.wait_for(lambda s: s["phase"] == "items" and s["total_fen"] == total,
                                      what="the items on the customer display")
    assert items["lines"] == ["大白菜", "西红柿", "豆腐", "整鸡", "豆腐"]
    shots(windows.vendor, "terminal-vendor-cart")

    state = charge(windows)
    taps += 1
    assert taps == 17
    display = windows.customer.state()
    base, token = split_qr_url(display["qr_url"])
    payload = verify_token(token, key, GATEWAY)
    assert (base, payload.amount_fen, payload.order_no) == (GATEWAY, total, state["pending_seq"])
    assert display["qr_filter"] == "nearest"
    assert_qr_on_screen_is_exact(shots(windows.customer, "terminal-customer-qr"), display)
    shots(windows.vendor, "terminal-vendor-waiting")
    windows.vendor.wait_for(lambda s: s["outbox"]["sent"] >= 1, what="the sale's PUBACK")

    publish_result(mqtt_broker.port, result_for(device_id, state["pending_seq"], total, "paid",
                                                key, updated_at_ms=1))
    windows.customer.wait_for(lambda s: s["phase"] == "paid", what="Paid on the display")
    after = windows.vendor.wait_for(lambda s: not s["locked"], what="the vendor screen unlocked")
    assert after["lines"] == [] and after["total_fen"] == 0
    assert {"seq": state["pending_seq"], "status": "paid"}.items() <= next(
        sale for sale in after["sales"] if sale["seq"] == state["pending_seq"]).items()
    shots(windows.customer, "terminal-customer-paid")


def test_forged_result_is_ignored_and_failure_keeps_the_cart(windows, device, mqtt_broker):
    _, device_id, key = device
    tap_all(windows, "product-tofu")
    state = charge(windows)
    forged = result_for(device_id, state["pending_seq"], 350, "paid", b"\x01" * 32, 10)
    publish_result(mqtt_broker.port, forged)
    publish_result(mqtt_broker.port, result_for(device_id, state["pending_seq"], 350, "failed",
                                                key, updated_at_ms=20))
    windows.customer.wait_for(lambda s: s["phase"] == "failed", what="Failed on the display")
    after = windows.vendor.wait_for(lambda s: not s["locked"], what="unlocked")
    assert [line["product_code"] for line in after["lines"]] == ["tofu"]
    assert next(s for s in after["sales"] if s["seq"] == state["pending_seq"])["status"] \
        == "failed"
    tap_all(windows, "clear-cart")
    assert windows.vendor.state()["lines"] == []


def test_cancel_takes_the_qr_down_and_voids_the_sale(windows):
    tap_all(windows, "key-3", "product-tofu")
    state = charge(windows)
    tap_all(windows, "cancel")
    windows.customer.wait_for(lambda s: s["phase"] == "cancelled", what="Cancelled")
    after = windows.vendor.state()
    assert not after["locked"] and after["lines"][0]["quantity"] == 3
    assert next(s for s in after["sales"] if s["seq"] == state["pending_seq"])["status"] == "void"
    tap_all(windows, "clear-cart")


def test_language_switches_both_windows_at_run_time(windows):
    tap_all(windows, "product-tofu", "language")
    assert windows.vendor.state()["lang"] == "en"
    windows.customer.wait_for(lambda s: s["lang"] == "en" and s["lines"] == ["Tofu"],
                              what="English on the customer display")
    tap_all(windows, "language", "clear-cart")
    assert windows.vendor.state()["lang"] == "zh"


def test_price_edit_mode_changes_a_quick_key(windows, device):
    tap_all(windows, "edit-prices", "key-1", "key-dot", "key-8", "product-cabbage",
            "edit-prices")
    state = windows.vendor.state()
    assert state["products"]["cabbage"] == 180 and state["mode"] == "weight"
    data_dir, *_ = device
    assert '"unit_price_fen": 180' in (data_dir / "catalogue.json").read_text()


def test_day_screens_void_and_z_report(windows, device, shots):
    tap_all(windows, "product-tofu")
    state = charge(windows)
    seq = state["pending_seq"]
    tap_all(windows, "open-sales")
    assert windows.vendor.state()["screen"] == "sales"
    tap_all(windows, "void")
    assert windows.vendor.state()["notice"] == "请先选中一笔"
    tap_all(windows, f"sale-{seq}", "void")
    after = windows.vendor.state()
    assert next(s for s in after["sales"] if s["seq"] == seq)["status"] == "void"
    assert not after["locked"]  # the voided sale's QR was taken down
    windows.customer.wait_for(lambda s: s["phase"] == "cancelled", what="QR taken down")
    tap_all(windows, "refund")  # the voided sale is still selected
    assert windows.vendor.state()["notice"] == "只能退已付款的销售"
    assert windows.vendor.state()["screen"] == "sales"
    tap_all(windows, "open-z-report")
    report = windows.vendor.state()
    assert report["screen"] == "z_report" and "日结报表" in report["z_report"]
    assert "已付金额: ¥53.20 (1)" in report["z_report"]
    assert "作废笔数: 2" in report["z_report"]
    shots(windows.vendor, "terminal-vendor-z-report")
    tap_all(windows, "save-z-report")
    data_dir, *_ = device
    saved = list((data_dir / "reports").glob("z-*.png"))
    assert len(saved) == 1 and saved[0].stat().st_size > 1000
    tap_all(windows, "back", "back", "clear-cart")
    assert windows.vendor.state()["screen"] == "ring_up"


def test_offline_with_the_simulated_scale_a_five_line_sale_takes_six_taps(screen, tmp_path):
    device_id = f"T-UI-{uuid.uuid4().hex[:6]}"
    # No broker listens on this port: the QR must appear with no network at all.
    enrol_offline(tmp_path / "t", device_id, gateway_url=GATEWAY, mqtt_port=free_port())
    with TerminalWindows(tmp_path / "t", screen.display, log_path=tmp_path / "app.log",
                         scale="simulated") as running:
        vendor = running.vendor
        vendor.request(op="scale_place", grams=803, settle=False)
        vendor.tap("product-cabbage")
        # the scale's refusal in the screen's language (zh), from the one strings table
        assert vendor.state()["notice"] == "秤: 重量还在变动, 请等稳定"
        assert vendor.state()["lines"] == []
        taps = 0
        for grams, target in ((803, "product-cabbage"), (350, "product-tomato"),
                              (1200, "product-chicken"), (0, "product-tofu"),
                              (0, "product-eggs")):
            vendor.request(op="scale_place", grams=grams or 500)
            taps += tap_all(running, target)
        state = charge(running)
        taps += 1
        assert taps == 6
        assert [(line["product_code"], line["weight_g"]) for line in state["lines"]] == [
            ("cabbage", 804), ("tomato", 350), ("chicken", 1200), ("tofu", None),
            ("eggs", 500)]
        vendor.wait_for(lambda s: s["scale_text"].startswith("秤 500"), what="live weight")
        assert state["outbox"] == {"queued": 1, "sent": 0}
        assert running.customer.state()["qr_url"].startswith(GATEWAY + "/q/")


def test_a_killed_customer_display_comes_back_showing_the_qr(windows):
    tap_all(windows, "product-tofu")
    state = charge(windows)
    old_pid = state["display_pid"]
    os.kill(old_pid, 9)
    windows.vendor.wait_for(lambda s: s["display_pid"] != old_pid and s["display_connected"],
                            timeout=60, what="a new customer display")
    windows.customer.close()
    windows.customer.connect(60, lambda: True)
    windows.customer.wait_for(lambda s: s["phase"] == "qr"
                              and s["sale_id"] == state["pending_sale_id"], what="QR again")
    tap_all(windows, "cancel", "clear-cart")


def refund_result(device_id: str, seq: int, key: bytes, refunded_fen: int,
                  updated_at_ms: int) -> dict:
    record = {"schema": PAYMENT_RESULT_SCHEMA, "payment_id": f"pay-{seq}",
              "device_id": device_id, "seq": seq, "status": "partially_refunded",
              "amount_fen": 5320, "currency": "CNY", "channel": "sandbox",
              "channel_txn_id": None, "trace_code": None, "updated_at_ms": updated_at_ms,
              "refunded_fen": refunded_fen, "mac": "0" * 64}
    record["mac"] = mac_record(record, key)
    return record


def test_partial_refund_with_a_reason_shows_queued_then_the_refunded_amount(
        windows, device, mqtt_broker, shots):
    data_dir, device_id, key = device
    tap_all(windows, "open-sales")
    paid = next(s for s in windows.vendor.state()["sales"] if s["status"] == "paid")
    assert paid["total_fen"] == 5320
    tap_all(windows, f"sale-{paid['seq']}", "refund")
    state = windows.vendor.state()
    assert state["screen"] == "refund" and state["refund"]["amount_fen"] == 5320
    tap_all(windows, "refund-send")  # no reason yet
    windows.vendor.wait_for(lambda s: not s["refund"]["busy"], what="the check")
    assert windows.vendor.state()["notice"] == "请选择退款原因"
    tap_all(windows, "refund-key-9", "refund-key-9", "refund-reason-quality", "refund-send")
    windows.vendor.wait_for(lambda s: not s["refund"]["busy"], what="the check")
    state = windows.vendor.state()
    assert state["notice"] == "最多可退 ¥53.20" and state["refund"]["outcome"] is None
    tap_all(windows, "refund-key-back", "refund-key-back", "refund-key-5", "refund-key-.",
            "refund-key-5", "refund-words")
    windows.type("bruised")
    state = windows.vendor.state()
    assert state["refund"]["amount_fen"] == 550
    assert state["refund"]["reason"] == "quality: bruised"
    tap_all(windows, "refund-send")
    state = windows.vendor.wait_for(lambda s: s["refund"]["outcome"], what="the request")
    # the test gateway address answers nothing: the refund waits in the outbox
    assert state["refund"]["outcome"]["state"] == "queued"
    assert "已排队" in state["refund"]["status"] and "¥5.50" in state["refund"]["status"]
    with sqlite3.connect(data_dir / "outbox.sqlite") as db:
        rows = db.execute("SELECT kind, body FROM requests").fetchall()
    assert len(rows) == 1 and rows[0][0] == "refund"
    body = json.loads(rows[0][1])
    assert (body["sale_id"], body["amount_fen"], body["reason"]) == \
        (paid["sale_id"], 550, "quality: bruised")
    publish_result(mqtt_broker.port, refund_result(device_id, paid["seq"], key, 550, 1000))
    state = windows.vendor.wait_for(lambda s: s["refund"]["refunded_fen"] == 550,
                                    what="the refunded amount")
    windows.vendor.wait_for(lambda s: "已退 ¥5.50" in s["refund"]["status"],
                            what="the refunded amount on screen")
    shots(windows.vendor, "terminal-vendor-refund")
    tap_all(windows, "refund-back")
    after = windows.vendor.state()
    assert after["screen"] == "sales" and after["refund"] is None
    assert next(s for s in after["sales"] if s["seq"] == paid["seq"])["status"] \
        == "partially_refunded"
    assert after["sale_rows"][str(paid["seq"])] == "¥53.20 (-¥5.50)"
    tap_all(windows, "back")


def test_a_wedge_scanned_weight_label_adds_a_line_and_an_unknown_plu_is_named(windows):
    from pos_terminal.barcodes import ean13_check_digit

    tomato = "250000300350"  # PLU 00003 (third quick key), 350 g
    windows.type(tomato + str(ean13_check_digit(tomato)) + "\r")
    state = windows.vendor.state()
    assert [(line["product_code"], line["weight_g"]) for line in state["lines"]] == \
        [("tomato", 350)]
    unknown = "259999900350"
    windows.type(unknown + str(ean13_check_digit(unknown)) + "\r")
    state = windows.vendor.state()
    assert state["notice"] == "未知商品编号 99999" and len(state["lines"]) == 1
    tap_all(windows, "clear-cart")


def test_long_press_on_a_quick_key_edits_its_price(windows, device):
    windows.vendor.tap("product-carrot", hold_s=2.0)
    state = windows.vendor.state()
    assert state["price_for"] == "carrot" and state["lines"] == []
    assert state["notice"].startswith("改价 胡萝卜")
    tap_all(windows, "key-2", "key-dot", "key-6", "product-carrot")
    state = windows.vendor.state()
    assert state["products"]["carrot"] == 260 and state["price_for"] is None
    assert state["lines"] == [] and state["mode"] == "weight"
    data_dir, *_ = device
    assert '"unit_price_fen": 260' in (data_dir / "catalogue.json").read_text()
    tap_all(windows, "product-tofu")  # a quick tap still rings up
    assert [line["product_code"] for line in windows.vendor.state()["lines"]] == ["tofu"]
    tap_all(windows, "clear-cart")


def test_the_report_screen_shows_sales_by_product_and_hour_and_saves_csv(
        windows, device, mqtt_broker):
    data_dir, device_id, key = device
    tap_all(windows, "key-2", "product-tofu")  # 2 pieces
    state = charge(windows)
    windows.vendor.wait_for(lambda s: s["outbox"]["sent"] >= 1, what="the sale's PUBACK")
    publish_result(mqtt_broker.port, result_for(device_id, state["pending_seq"],
                                                state["total_fen"], "paid", key,
                                                updated_at_ms=1))
    windows.vendor.wait_for(lambda s: not s["locked"], what="the sale paid")
    tap_all(windows, "open-sales", "open-z-report", "report-day")
    shown = windows.vendor.state()
    assert shown["screen"] == "z_report"
    lines = shown["z_report"].splitlines()
    assert lines[0] == "今日销售（按商品、按小时）"
    assert any(line.strip().startswith("豆腐") and " 个 " in line for line in lines), lines
    assert "按小时" in lines
    tap_all(windows, "report-week")
    assert windows.vendor.state()["z_report"].startswith("本周销售")
    tap_all(windows, "save-report-csv")
    saved = sorted((data_dir / "reports").glob("*-week-*.csv"))
    assert [path.name.split("-")[0] for path in saved] == ["hours", "products"]
    products = saved[1].read_text(encoding="utf-8").splitlines()
    assert products[0].startswith("product_code,name,name_zh")
    assert any(row.startswith("tofu,") and ",豆腐," in row for row in products)
    tap_all(windows, "report-z")
    assert "日结报表" in windows.vendor.state()["z_report"]
    tap_all(windows, "back", "back")
    assert windows.vendor.state()["screen"] == "ring_up"
