"""The vendor screen and customer display at the panel sizes markets have: 800x480, 1024x600
and 1280x800, in both languages.

Each size runs the real app under Xvfb with a scale attached (so its reading, Zero and Tare
are on the bar too) and reads every visible control's window rectangle through the UI
control socket: each must be inside the window, apart from every other, and wide enough for
its words. The screenshots are kept in test-artifacts/screens/ (the docs show them). At the
smallest size a paid, a failed and a partly refunded sale are played through the real
Mosquitto and must look different on both screens.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from test_terminal_ui_windows import publish_result, result_for

from market_protocol import PAYMENT_RESULT_SCHEMA, derive_device_key, mac_record
from pos_terminal.testing import TEST_MASTER_KEY, enrol_offline
from pos_terminal.ui.harness import TerminalWindows, VirtualScreen
from pos_terminal.ui.layout_check import layout_problems

pytestmark = pytest.mark.timeout(300)

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screens"
SIZES = ((800, 480), (1024, 600), (1280, 800))
GREEN, RED = (0.1, 0.7, 0.25, 1), (0.9, 0.18, 0.12, 1)


@pytest.fixture(scope="module")
def screen():
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is required for the UI tests (Debian package xvfb)")
    with VirtualScreen("2600x820x24") as virtual:
        yield virtual


def open_windows(screen, tmp_path: Path, mqtt_port: int, size: tuple[int, int]):
    width, height = size
    device_id = f"T-SCR-{uuid.uuid4().hex[:6]}"
    enrol_offline(tmp_path / "terminal", device_id, gateway_url="http://127.0.0.1:9",
                  mqtt_port=mqtt_port)
    windows = TerminalWindows(
        tmp_path / "terminal", screen.display, log_path=tmp_path / "app.log", scale="simulated",
        extra_args=("--geometry", f"{width}x{height}+0+0",
                    "--display-geometry", f"{width}x{height}+{width + 10}+0"))
    return windows, device_id, derive_device_key(TEST_MASTER_KEY, device_id, 1)


def check_layout(client, size: tuple[int, int], name: str) -> list[dict]:
    """No problems, the window has the asked size, and the screenshot is kept."""
    layout = client.layout()
    assert tuple(layout["window"]) == size
    problems = layout_problems(layout["controls"], size)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = client.screenshot(ARTIFACTS / f"{name}-{size[0]}x{size[1]}.png")
    assert shot.stat().st_size > 1000
    assert problems == [], f"{name} at {size}: see {shot}\n" + "\n".join(problems)
    return layout["controls"]


def tap_ids(controls: list[dict]) -> set[str]:
    return {c["tap_id"] for c in controls if c["tap_id"]}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_control_fits_the_panel_in_both_languages(screen, tmp_path, mqtt_broker, size):
    windows, *_ = open_windows(screen, tmp_path, mqtt_broker.port, size)
    with windows:
        windows.vendor.wait_for(lambda s: s["display_connected"], what="customer display")
        for target in ("key-3", "product-tofu", "key-5", "key-0", "key-0", "product-chicken"):
            windows.vendor.tap(target)
        windows.customer.wait_for(lambda s: s["phase"] == "items", what="items shown")
        controls = check_layout(windows.vendor, size, "vendor-zh")
        assert {"language", "open-sales", "edit-prices", "scale-zero", "scale-tare",
                "scale-reading", "charge", "cash", "key-0", "key-back", "key-dot",
                "mode-price", "line-1", "clear-cart"} <= tap_ids(controls)
        check_layout(windows.customer, size, "customer-items")
        windows.vendor.tap("language")
        windows.vendor.wait_for(lambda s: s["lang"] == "en", what="English")
        check_layout(windows.vendor, size, "vendor-en")
        windows.vendor.tap("open-sales")
        check_layout(windows.vendor, size, "vendor-sales-en")
        windows.vendor.tap("back")
        windows.vendor.tap("language")
        windows.vendor.tap("charge")
        windows.customer.wait_for(lambda s: s["phase"] == "qr", what="the QR")
        check_layout(windows.customer, size, "customer-qr")
        check_layout(windows.vendor, size, "vendor-waiting")
        windows.vendor.tap("cancel")
        windows.vendor.wait_for(lambda s: not s["locked"], what="cancelled")


def partial_refund(device_id: str, seq: int, key: bytes, amount_fen: int,
                   refunded_fen: int) -> dict:
    record = {"schema": PAYMENT_RESULT_SCHEMA, "payment_id": f"pay-{seq}",
              "device_id": device_id, "seq": seq, "status": "partially_refunded",
              "amount_fen": amount_fen, "currency": "CNY", "channel": "sandbox",
              "channel_txn_id": None, "trace_code": None, "updated_at_ms": 5000,
              "refunded_fen": refunded_fen, "mac": "0" * 64}
    record["mac"] = mac_record(record, key)
    return record


def test_paid_failed_and_part_refunded_look_different(screen, tmp_path, mqtt_broker):
    size = SIZES[0]
    windows, device_id, key = open_windows(screen, tmp_path, mqtt_broker.port, size)
    with windows:
        vendor, customer = windows.vendor, windows.customer
        vendor.wait_for(lambda s: s["display_connected"], what="customer display")
        looks = {}
        for status, updated in (("paid", 1), ("failed", 2)):
            vendor.tap("product-tofu")
            vendor.tap("charge")
            state = vendor.wait_for(lambda s: s["pending_seq"], what="a pending sale")
            vendor.wait_for(lambda s: s["outbox"]["sent"] >= 1 and s["outbox"]["queued"] == 0,
                            what="the sale sent")
            publish_result(mqtt_broker.port, result_for(device_id, state["pending_seq"], 350,
                                                        status, key, updated_at_ms=updated))
            shown = customer.wait_for(lambda s, st=status: s["phase"] == st, what=status)
            after = vendor.wait_for(lambda s, st=status: s["phase"] == st, what=status)
            check_layout(customer, size, f"customer-{status}")
            check_layout(vendor, size, f"vendor-{status}")
            looks[status] = (shown["status_text"], shown["status_colour"],
                             after["pending_text"], after["pending_rgba"])
            if status == "failed":
                vendor.tap("clear-cart")
        assert looks["paid"][0].startswith("✔") and looks["failed"][0].startswith("✘")
        assert looks["paid"][2].startswith("✔") and looks["failed"][2].startswith("✘")
        assert looks["paid"][1] == looks["paid"][3] == list(GREEN)
        assert looks["failed"][1] == looks["failed"][3] == list(RED)

        paid_seq = next(s["seq"] for s in vendor.state()["sales"] if s["status"] == "paid")
        publish_result(mqtt_broker.port, partial_refund(device_id, paid_seq, key, 350, 100))
        vendor.wait_for(lambda s: any(x["status"] == "partially_refunded" for x in s["sales"]),
                        what="the partial refund")
        vendor.tap("open-sales")
        state = vendor.state()
        marks = state["sale_marks"]
        assert marks[str(paid_seq)]["status"] == "partially_refunded"
        assert marks[str(paid_seq)]["text"] == "◐ 部分退款"
        assert state["sale_rows"][str(paid_seq)] == "¥3.50 (-¥1.00)"
        failed_seq = next(s["seq"] for s in state["sales"] if s["status"] == "failed")
        assert marks[str(failed_seq)]["text"] == "✘ 失败"
        assert marks[str(failed_seq)]["rgba"] == list(RED)
        assert len({tuple(m["rgba"]) for m in marks.values()}) == 2
        check_layout(vendor, size, "vendor-sales-zh")


def test_the_layout_check_names_what_is_off_screen_overlapping_or_cut():
    def control(tap_id, rect, texture=None, path=(0,)):
        return {"tap_id": tap_id, "kind": "Button", "text": tap_id, "rect": rect,
                "texture": texture, "path": list(path), "in_scroll": False, "clip": None}

    fine = [control("a", [0, 0, 100, 50], [80, 20], (0, 0)),
            control("b", [100, 0, 100, 50], [80, 20], (0, 1))]
    assert layout_problems(fine, (800, 480)) == []
    problems = layout_problems([
        control("language", [760, 430, 80, 50], [60, 20], (0, 0)),     # past the right edge
        control("charge", [0, 0, 100, 60], [140, 30], (0, 1)),         # words cut off
        control("cash", [50, 10, 100, 50], None, (0, 2)),              # on top of charge
    ], (800, 480))
    assert problems == [
        "language 'language' at [760, 430, 80, 50] is outside the window",
        "charge 'charge': its words need [140, 30], it has [100, 60]",
        "charge 'charge' overlaps cash 'cash'"]
