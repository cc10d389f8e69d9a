"""Sales by product and by hour, for today and the last seven days, over the terminal's
real outbox: only paid sales count, refunds come off, CSV and the headless command."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from market_protocol import PAYMENT_RESULT_SCHEMA, mac_record
from pos_terminal.cart import Cart
from pos_terminal.catalogue import DEFAULT_PRODUCTS
from pos_terminal.sales_report import hours_csv, period_bounds, products_csv
from pos_terminal.terminal import Terminal
from pos_terminal.testing import enrol_offline
from service_base.testing import free_port, tracepay_command

CABBAGE = next(p for p in DEFAULT_PRODUCTS if p.unit != "piece")
TOFU = next(p for p in DEFAULT_PRODUCTS if p.unit == "piece")
TODAY = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)


def at(days_ago: int, hour: int, minute: int = 0) -> int:
    return int((TODAY - timedelta(days=days_ago)).replace(hour=hour, minute=minute)
               .timestamp() * 1000)


@pytest.fixture
def term(tmp_path: Path):
    enrol_offline(tmp_path, "T-REP-1", gateway_url=f"http://127.0.0.1:{free_port()}")
    terminal = Terminal.open(tmp_path)
    yield terminal
    terminal.close()


def sell(term: Terminal, when_ms: int, product, *, status: str | None = "paid",
         refunded_fen: int = 0, **amount) -> int:
    term._clock = lambda: when_ms
    cart = Cart()
    cart.add(product, **amount)
    charged = term.charge(cart, render_png=False)
    if status is not None:
        result = {"schema": PAYMENT_RESULT_SCHEMA, "payment_id": f"p-{charged.seq}",
                  "device_id": term.device_id, "seq": charged.seq, "status": status,
                  "amount_fen": charged.total_fen, "currency": "CNY", "channel": "sandbox",
                  "channel_txn_id": None, "trace_code": None, "updated_at_ms": when_ms,
                  "refunded_fen": refunded_fen, "mac": ""}
        result["mac"] = mac_record(result, term.device_key)
        term.outbox.record_result(result)
    return charged.total_fen


def test_today_and_the_week_by_product_and_hour(term: Terminal) -> None:
    sell(term, at(8, 10), CABBAGE, weight_g=2000)            # too old for the week
    sell(term, at(6, 9, 30), CABBAGE, weight_g=1000)         # first day of the week
    first = sell(term, at(0, 9, 10), CABBAGE, weight_g=500)
    tofu = sell(term, at(0, 9, 40), TOFU, quantity=4, status="partially_refunded",
                refunded_fen=TOFU.unit_price_fen)                  # one of four given back
    sell(term, at(0, 14, 5), TOFU, quantity=1, status=None)  # never paid
    now = at(0, 18)

    day = term.sales_report("day", now_ms=now)
    assert (day["sales"], day["amount_fen"], day["refunded_fen"]) == (2, first + tofu,
                                                                      TOFU.unit_price_fen)
    assert day["net_fen"] == first + tofu - TOFU.unit_price_fen
    by_code = {row["product_code"]: row for row in day["products"]}
    assert by_code[CABBAGE.code]["weight_g"] == 500 and by_code[CABBAGE.code]["quantity"] == 0
    assert by_code[TOFU.code]["quantity"] == 4
    assert by_code[TOFU.code]["net_fen"] == tofu - TOFU.unit_price_fen
    assert by_code[TOFU.code]["name_zh"] == TOFU.name_zh
    assert [row["hour"][-5:] for row in day["hours"]] == ["09:00"]
    assert day["hours"][0]["sales"] == 2

    week = term.sales_report("week", now_ms=now)
    assert week["sales"] == 3
    assert {row["product_code"]: row["weight_g"] for row in week["products"]}[
        CABBAGE.code] == 1500
    assert [row["hour"][:10] for row in week["hours"]] == [
        (TODAY - timedelta(days=6)).date().isoformat(), TODAY.date().isoformat()]
    start, end = period_bounds("week", now)
    assert (end - start) == 7 * 86_400_000 and start == at(6, 0)

    rows = list(csv.DictReader(io.StringIO(products_csv(week))))
    assert rows[0]["product_code"] == max(week["products"], key=lambda r: r["net_fen"])[
        "product_code"]
    assert {row["product_code"] for row in rows} == {CABBAGE.code, TOFU.code}
    assert hours_csv(day).splitlines() == ["hour,sales,amount_fen",
                                           f"{day['hours'][0]['hour']},2,"
                                           f"{first + tofu - TOFU.unit_price_fen}"]
    with pytest.raises(ValueError, match="period"):
        period_bounds("month", now)


def test_the_headless_command_prints_the_report_and_writes_csv(term: Terminal,
                                                               tmp_path: Path) -> None:
    sold = sell(term, int(datetime.now().timestamp() * 1000), TOFU, quantity=2)
    term.close()
    out = subprocess.run(tracepay_command(
        "terminal", "--headless", "--data-dir", str(tmp_path), "--drain-timeout", "0",
        "--report", "day", "--csv-dir", str(tmp_path / "csv")),
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["event"] == "sales_report" and report["amount_fen"] == sold
    products = Path(next(path for path in report["csv"] if "products-day" in path))
    assert f"{TOFU.code},{TOFU.name}" in products.read_text(encoding="utf-8")
