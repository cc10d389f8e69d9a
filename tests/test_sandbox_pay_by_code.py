# ruff: noqa: F811 - pytest fixtures imported from test_sandbox_platform
"""Pay-by-code (付款码) at the sandbox platform, driven over HTTP against the real process:
paid at once, waiting for the shopper's password, refused, reversed; one code, one order;
one notification and at most one refund whatever is retried."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from test_sandbox_platform import (  # noqa: F401 - fixtures
    Merchant,
    NotifyReceiver,
    merchant,
    platform_url,
)

from sandbox_platform import payer_code_store
from sandbox_platform.payer_code_store import PayerCodes
from sandbox_platform.store import Store, StoreConflict
from service_base.testing import wait_until


@pytest.fixture(scope="module")
def receiver():
    with NotifyReceiver() as running:
        yield running


def issue(merchant: Merchant, behaviour: str = "pay", payer: str = "wallet-buyer-1") -> str:
    response = merchant.http.post(f"{merchant.base_url}/sandbox/payer-codes",
                                  json={"payer_id": payer, "behaviour": behaviour})
    assert response.status_code == 201, response.text
    code = response.json()["auth_code"]
    assert len(code) == 18 and code.isdigit()
    return code


def charge(merchant: Merchant, receiver: NotifyReceiver, code: str, *,
           out_trade_no: str | None = None, amount_fen: int = 1250) -> Any:
    body = {"out_trade_no": out_trade_no or f"C{uuid.uuid4().hex[:12]}",
            "amount_fen": amount_fen, "currency": "CNY", "subject": "Pork 0.5 kg",
            "notify_url": receiver.url, "auth_code": code}
    return merchant.post("/v1/orders/pay-by-code", body), body["out_trade_no"]


def query(merchant: Merchant, out_trade_no: str) -> dict[str, Any]:
    return merchant.verified(merchant.get(f"/v1/orders/{out_trade_no}"))


def test_a_code_that_pays_at_once_pays_once_and_notifies_once(merchant, receiver):
    code = issue(merchant)
    response, no = charge(merchant, receiver, code)
    order = merchant.verified(response)
    assert response.status_code == 200 and order["status"] == "PAID", response.text
    assert order["trade_state"] == "PAID" and order["payer_id"] == "wallet-buyer-1"
    again, _ = charge(merchant, receiver, code, out_trade_no=no)  # a retried request
    assert merchant.verified(again)["channel_txn_id"] == order["channel_txn_id"]
    wait_until(lambda: receiver.for_trade(no))
    assert len(receiver.for_trade(no)) == 1


def test_a_waiting_shopper_is_userpaying_until_they_confirm(merchant, receiver):
    code = issue(merchant, "password")
    response, no = charge(merchant, receiver, code)
    order = merchant.verified(response)
    assert order["status"] == "WAIT_PAY" and order["trade_state"] == "USERPAYING"
    assert query(merchant, no)["trade_state"] == "USERPAYING"
    assert receiver.for_trade(no) == []
    confirmed = merchant.http.post(f"{merchant.base_url}/sandbox/payer-codes/{code}/confirm")
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "PAID"
    assert query(merchant, no)["status"] == "PAID"
    wait_until(lambda: receiver.for_trade(no))
    twice = merchant.http.post(f"{merchant.base_url}/sandbox/payer-codes/{code}/confirm")
    assert twice.status_code == 409 and twice.json()["error"] == "not_waiting"


def test_a_shopper_who_cancels_leaves_the_order_closed_unpaid(merchant, receiver):
    code = issue(merchant, "password")
    _, no = charge(merchant, receiver, code)
    cancelled = merchant.http.post(f"{merchant.base_url}/sandbox/payer-codes/{code}/cancel")
    assert cancelled.json()["status"] == "CLOSED"
    order = query(merchant, no)
    assert order["status"] == "CLOSED" and order["fail_reason"] == "payer_cancelled"


def test_reversing_a_waiting_order_closes_it_and_the_shopper_can_no_longer_pay(
        merchant, receiver):
    code = issue(merchant, "password")
    _, no = charge(merchant, receiver, code)
    reversed_ = merchant.verified(merchant.post(f"/v1/orders/{no}/reverse"))
    assert reversed_["status"] == "CLOSED" and reversed_["reversed_at_ms"]
    late = merchant.http.post(f"{merchant.base_url}/sandbox/payer-codes/{code}/confirm")
    assert late.status_code == 409
    assert query(merchant, no)["status"] == "CLOSED" and receiver.for_trade(no) == []


def test_reversing_a_paid_order_refunds_it_in_full_exactly_once(merchant, receiver):
    code = issue(merchant)
    _, no = charge(merchant, receiver, code, amount_fen=880)
    first = merchant.verified(merchant.post(f"/v1/orders/{no}/reverse"))
    second = merchant.verified(merchant.post(f"/v1/orders/{no}/reverse"))
    assert first["status"] == second["status"] == "REFUNDED"
    assert first["refunded_fen"] == second["refunded_fen"] == 880
    refund = merchant.verified(merchant.get(f"/v1/refunds/reverse-{no}"))
    assert refund["amount_fen"] == 880 and refund["refunded_total_fen"] == 880


@pytest.mark.parametrize(("behaviour", "reason"), [("decline", "payer_declined"),
                                                   ("insufficient", "insufficient_funds")])
def test_a_refused_code_closes_the_order_with_the_reason(merchant, receiver, behaviour, reason):
    response, no = charge(merchant, receiver, issue(merchant, behaviour))
    order = merchant.verified(response)
    assert order["status"] == "CLOSED" and order["fail_reason"] == reason
    assert receiver.for_trade(no) == []


def test_one_code_pays_one_order_even_when_ten_race_for_it(merchant, receiver):
    code = issue(merchant)
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: charge(merchant, receiver, code)[0], range(10)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [422] * 9
    assert {a.json()["error"] for a in answers if a.status_code == 422} == {"payer_code_used"}


def test_bad_codes_and_requests_are_refused_clearly(merchant, receiver):
    unknown, _ = charge(merchant, receiver, "289999999999999999")
    assert unknown.status_code == 422 and unknown.json()["error"] == "payer_code_invalid"
    malformed, _ = charge(merchant, receiver, "not-a-code")
    assert malformed.status_code == 400 and "auth_code" in malformed.json()["message"]
    code = issue(merchant)
    _, no = charge(merchant, receiver, code)
    other, _ = charge(merchant, receiver, issue(merchant), out_trade_no=no)
    assert other.status_code == 409 and other.json()["error"] == "order_conflict"
    unsigned = merchant.http.post(f"{merchant.base_url}/v1/orders/pay-by-code", json={})
    assert unsigned.status_code == 401
    bad_issue = merchant.http.post(f"{merchant.base_url}/sandbox/payer-codes",
                                   json={"payer_id": "x", "behaviour": "steal"})
    assert bad_issue.status_code == 400


def test_an_expired_code_is_refused_and_closes_its_order(tmp_path, monkeypatch):
    store = Store(tmp_path / "platform.sqlite")
    store.register_app("app-1", "pem", "Stall")
    codes = PayerCodes(store)
    code = codes.issue("wallet-1", "pay")["auth_code"]
    later = payer_code_store.now_ms() + payer_code_store.CODE_TTL_MS + 1
    monkeypatch.setattr(payer_code_store, "now_ms", lambda: later)
    fields = {"out_trade_no": "T1", "amount_fen": 100, "currency": "CNY", "subject": "x",
              "notify_url": "http://127.0.0.1/n", "auth_code": code}
    with pytest.raises(StoreConflict) as refused:
        codes.pay("app-1", fields, None, 60_000, lambda *a: {})
    assert refused.value.code == "payer_code_expired"
    order = store.order_by_trade_no("app-1", "T1")
    assert order is not None and order["status"] == "CLOSED"
    assert order["fail_reason"] == "payer_code_expired"


def test_the_gateways_sandbox_adapter_charges_and_reverses_a_code(platform_url, receiver):
    """The gateway's channel adapter, against the real platform process: each answer is
    verified against the platform's key before it is believed."""
    from aggregation_gateway.channels.base import ChannelError, ChannelOrder
    from aggregation_gateway.channels.http_transport import KeepAliveTransport
    from aggregation_gateway.channels.sandbox import SandboxChannel

    shop = Merchant(platform_url)
    assert shop.register().status_code == 201
    channel = SandboxChannel(platform_url, shop.app_id, shop.key, shop.platform_key,
                             KeepAliveTransport())

    def order(no: str) -> ChannelOrder:
        return ChannelOrder(no, 660, "CNY", "Tofu", receiver.url, receiver.url)

    paid = channel.pay_by_code(order("A1" + uuid.uuid4().hex[:8]), issue(shop))
    assert paid.status == "paid" and paid.amount_fen == 660 and paid.channel_txn_id
    waiting_no = "A2" + uuid.uuid4().hex[:8]
    waiting = channel.pay_by_code(order(waiting_no), issue(shop, "password"))
    assert waiting.status == "pending"
    assert channel.query_order(waiting_no).status == "pending"
    assert channel.reverse_order(waiting_no).status == "closed"
    assert channel.reverse_order(waiting_no).status == "closed"  # a lost answer, retried
    assert channel.reverse_order(paid.out_trade_no).status == "refunded"
    with pytest.raises(ChannelError) as refused:
        channel.pay_by_code(order("A3" + uuid.uuid4().hex[:8]), "280000000000000000")
    assert refused.value.code == "payer_code_invalid" and refused.value.definite
