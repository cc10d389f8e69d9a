"""The pure payment state machine and channel choice: known answers."""

from __future__ import annotations

import pytest

from aggregation_gateway.channel_choice import choose_channel
from aggregation_gateway.payment_states import (
    STATUSES,
    TRANSITIONS,
    decide,
    refund_status,
    status_from_channel,
)


@pytest.mark.parametrize(("current", "target"), [
    ("created", "pending"), ("pending", "paid"), ("pending", "failed"), ("pending", "expired"),
    ("paid", "partially_refunded"), ("paid", "refunded"),
    ("partially_refunded", "partially_refunded"), ("partially_refunded", "refunded"),
    ("expired", "paid"), ("failed", "paid"), ("created", "expired"),
])
def test_legal_moves(current: str, target: str) -> None:
    assert decide(current, target).apply


@pytest.mark.parametrize(("current", "target"), [
    ("paid", "failed"), ("paid", "expired"), ("paid", "pending"), ("refunded", "paid"),
    ("refunded", "partially_refunded"), ("expired", "pending"), ("failed", "expired"),
    ("pending", "refunded"), ("created", "refunded"), ("partially_refunded", "paid"),
])
def test_illegal_moves_are_refused(current: str, target: str) -> None:
    decision = decide(current, target)
    assert not decision.apply
    assert decision.refused
    assert current in decision.reason


def test_repeats_are_noops_not_refusals() -> None:
    for status in ("pending", "paid", "failed", "expired", "refunded"):
        decision = decide(status, status)
        assert not decision.apply and not decision.refused


def test_every_status_has_a_row_and_unknown_statuses_raise() -> None:
    assert set(TRANSITIONS) == set(STATUSES)
    with pytest.raises(ValueError):
        decide("paid", "teleported")


def test_channel_status_mapping_and_refund_status() -> None:
    assert status_from_channel("paid") == "paid"
    assert status_from_channel("closed") == "failed"
    assert status_from_channel("pending") is None
    assert refund_status(100, 40) == "partially_refunded"
    assert refund_status(100, 100) == "refunded"
    with pytest.raises(ValueError):
        refund_status(100, 101)


@pytest.mark.parametrize(("agent", "configured", "requested", "expected"), [
    ("Mozilla/5.0 MicroMessenger/8.0", {"wechatpay", "alipay"}, None, "wechatpay"),
    ("Mozilla/5.0 AlipayClient/10.5", {"wechatpay", "alipay"}, None, "alipay"),
    ("Mozilla/5.0 Safari", {"wechatpay", "alipay"}, None, None),
    ("Mozilla/5.0 Safari", {"sandbox"}, None, "sandbox"),
    ("Mozilla/5.0 MicroMessenger", {"sandbox"}, None, "sandbox"),
    ("Mozilla/5.0 Safari", {"wechatpay", "alipay"}, "alipay", "alipay"),
    ("Mozilla/5.0 Safari", {"alipay"}, "wechatpay", None),
])
def test_channel_choice(agent, configured, requested, expected) -> None:
    assert choose_channel(agent, configured, requested) == expected
