"""The platform's pure parts: retry schedules, fees, statement days."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from sandbox_platform.fees import fee_fen, refund_fee_fen
from sandbox_platform.notify_schedule import parse_schedule
from sandbox_platform.statement import day_bounds_ms, parse_day, statement_csv

RATE = Decimal("0.006")


def test_wechat_schedule_is_the_published_one() -> None:
    delays = parse_schedule("wechat")
    assert delays[0] == 0  # the first notification goes at once
    assert delays[1:5] == (15, 15, 30, 180)
    assert len(delays) - 1 == 15  # 15 retries
    assert sum(delays) == 24 * 3600 + 4 * 60


def test_alipay_schedule_is_8_notifications_within_25_hours() -> None:
    delays = parse_schedule("ALIPAY")
    assert len(delays) == 8
    assert delays[1:] == (240, 600, 600, 3600, 7200, 21600, 54000)
    assert sum(delays) < 25 * 3600


def test_custom_schedule() -> None:
    assert parse_schedule("0, 1,2.5") == (0, 1, 2.5)


@pytest.mark.parametrize("text", ["", "1,,2", "1,-1", "fast", "nan"])
def test_bad_schedule_says_why(text: str) -> None:
    with pytest.raises(ValueError, match="schedule"):
        parse_schedule(text)


@pytest.mark.parametrize("amount, fee", [(0, 0), (83, 0), (84, 1), (250, 2), (249, 1),
                                         (10000, 60), (1, 0)])
def test_fee_is_rounded_half_up(amount: int, fee: int) -> None:
    assert fee_fen(amount, RATE) == fee


def test_partial_refunds_return_exactly_the_charged_fee() -> None:
    paid, returned, before = 999, 0, 0
    for part in (333, 333, 333):
        returned += refund_fee_fen(paid, before, part, RATE)
        before += part
    assert returned == fee_fen(paid, RATE) == 6


def test_refund_fee_refuses_more_than_paid() -> None:
    with pytest.raises(ValueError, match="exceed"):
        refund_fee_fen(100, 50, 51, RATE)


def test_statement_day_follows_the_time_zone() -> None:
    start, end = day_bounds_ms(date(2026, 11, 21), "Asia/Shanghai")
    assert start == 1795190400000  # 2026-11-20T16:00:00Z
    assert end - start == 86_400_000


@pytest.mark.parametrize("text", ["2026-11-21T00:00", "20261121", "2026-02-30"])
def test_parse_day_refuses_other_forms(text: str) -> None:
    with pytest.raises(ValueError):
        parse_day(text)


def test_statement_net_column_sums_to_settlement() -> None:
    paid = [{"paid_at_ms": 2, "order_id": "o1", "out_trade_no": "t1", "channel_txn_id": "x",
             "payer_id": "b", "amount_fen": 500, "fee_fen": 3}]
    refunds = [{"created_at_ms": 3, "order_id": "o1", "out_trade_no": "t1",
                "out_refund_no": "r1", "amount_fen": 200, "fee_fen": 1}]
    text = statement_csv(paid, refunds).decode()
    lines = text.strip().split("\n")
    assert lines[0] == ("kind,time_ms,order_id,out_trade_no,out_refund_no,channel_txn_id,"
                        "payer_id,amount_fen,fee_fen,net_fen")
    assert lines[1:] == ["payment,2,o1,t1,,x,b,500,3,497", "refund,3,o1,t1,r1,,,-200,-1,-199"]


@pytest.mark.parametrize("args, message", [
    (["--notify-schedule", "fast"], "notify schedule"),
    (["--fee-rate", "1.5"], "fee rate"),
    (["--order-ttl", "0"], "positive"),
])
def test_cli_refuses_bad_settings_before_starting(tmp_path, args: list[str],
                                                  message: str) -> None:
    from click.testing import CliRunner

    from sandbox_platform.cli import command

    result = CliRunner().invoke(command, ["--data-dir", str(tmp_path / "d"), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "d").exists()
