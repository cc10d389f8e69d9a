"""Alipay adapter against a stand-in Alipay built from our own TEST-ONLY keys (no live calls).

The stand-in checks every request's RSA2 signature with our app's public key, the way
Alipay does, and signs its answers and notifications with the "Alipay" test key.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

import orjson
import pytest
from cryptography.hazmat.primitives import serialization

from aggregation_gateway.channels.alipay import (
    AlipayChannel,
    fen_to_yuan,
    from_settings,
    notification_string_to_sign,
    response_text,
    rsa2_sign,
    rsa2_verify,
    string_to_sign,
)
from aggregation_gateway.channels.base import (
    ChannelError,
    ChannelOrder,
    ChannelSignatureError,
    HttpRequest,
    HttpResponse,
)

KEYS = Path(__file__).parent / "fixtures" / "channels"
NOW = datetime(2026, 11, 21, 10, 30, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
APP_ID = "2021000000000001"


def _private(name: str) -> Any:
    return serialization.load_pem_private_key((KEYS / f"TEST_ONLY_{name}_private.pem")
                                              .read_bytes(), password=None)


def _public(name: str) -> Any:
    return serialization.load_pem_public_key((KEYS / f"TEST_ONLY_{name}_public.pem").read_bytes())


APP_KEY, APP_PUBLIC = _private("alipay_app"), _public("alipay_app")
ALIPAY_KEY, ALIPAY_PUBLIC = _private("alipay_platform"), _public("alipay_platform")


class FakeAlipay:
    """Answers like Alipay's gateway; records what it was sent."""

    def __init__(self, answers: dict[str, dict[str, Any]], *, sign_with: Any = ALIPAY_KEY,
                 sign: bool = True) -> None:
        self.answers = answers
        self.sign_with = sign_with
        self.sign = sign
        self.requests: list[dict[str, str]] = []

    def __call__(self, request: HttpRequest) -> HttpResponse:
        assert request.method == "POST"
        assert urlsplit(request.url).hostname == "alipay.test"
        params = dict(parse_qsl(request.body.decode()))
        assert rsa2_verify(APP_PUBLIC, string_to_sign(params), params["sign"]), "request sign"
        self.requests.append(params)
        node = params["method"].replace(".", "_") + "_response"
        inner = orjson.dumps(self.answers[params["method"]]).decode()
        text = f'{{"{node}":{inner}'
        if self.sign:
            text += f',"sign":"{rsa2_sign(self.sign_with, inner)}"'
        return HttpResponse(200, {"Content-Type": "application/json"}, (text + "}").encode())


def channel(fake: FakeAlipay, **options: Any) -> AlipayChannel:
    return AlipayChannel(APP_ID, APP_KEY, ALIPAY_PUBLIC, fake,
                         gateway_url="https://alipay.test/gateway.do", clock=lambda: NOW,
                         **options)


def order(**changes: Any) -> ChannelOrder:
    fields = {"out_trade_no": "GW20261121000001", "amount_fen": 1250, "currency": "CNY",
              "subject": "小白菜 1.25 kg", "notify_url": "https://gw.test/v1/notify/alipay",
              "return_url": "https://shop.test/receipt/p1"}
    return ChannelOrder(**{**fields, **changes})


def notification(**changes: str) -> bytes:
    params = {"notify_time": "2026-11-21 10:31:02", "notify_type": "trade_status_sync",
              "notify_id": "ac05099524730693a8b330c5ecf72da9786", "app_id": APP_ID,
              "charset": "utf-8", "version": "1.0", "sign_type": "RSA2",
              "trade_no": "2026112122001419980500012345", "out_trade_no": "GW20261121000001",
              "trade_status": "TRADE_SUCCESS", "total_amount": "12.50",
              "receipt_amount": "12.50", "buyer_id": "2088102122524333",
              "gmt_create": "2026-11-21 10:30:40", "gmt_payment": "2026-11-21 10:31:01",
              "subject": "小白菜 1.25 kg", "passback_params": ""}
    params.update(changes)
    params["sign"] = rsa2_sign(ALIPAY_KEY, notification_string_to_sign(params))
    return urlencode(params).encode()


# --- the published algorithm, byte for byte ---------------------------------------------


def test_string_to_sign_matches_the_published_example() -> None:
    params = {"app_id": "2014072300007148", "method": "alipay.mobile.public.menu.add",
              "charset": "GBK", "sign_type": "RSA2", "timestamp": "2014-07-24 03:07:50",
              "biz_content": '{"button":[{"actionParam":"ZFB_HFCZ","actionType":"out",'
                             '"name":"话费充值"}]}',
              "sign": "ignored", "version": "1.0", "notify_url": "", "app_auth_token": None}
    assert string_to_sign(params) == (
        'app_id=2014072300007148&biz_content={"button":[{"actionParam":"ZFB_HFCZ",'
        '"actionType":"out","name":"话费充值"}]}&charset=GBK&method=alipay.mobile.public.'
        'menu.add&sign_type=RSA2&timestamp=2014-07-24 03:07:50&version=1.0')


def test_rsa2_signature_equals_openssl_for_the_same_string() -> None:
    # computed once with: printf '%s' "$STRING" | openssl dgst -sha256 -sign
    #   tests/fixtures/channels/TEST_ONLY_alipay_app_private.pem | base64 -w0
    text = ('app_id=2014072300007148&biz_content={"button":[{"actionParam":"ZFB_HFCZ",'
            '"actionType":"out","name":"话费充值"}]}&charset=GBK&method=alipay.mobile.public.'
            'menu.add&sign_type=RSA2&timestamp=2014-07-24 03:07:50&version=1.0')
    assert rsa2_sign(APP_KEY, text) == (
        "MiPwUcS7KzLsvNFMQOnQ5EWU5nntkVG/tASVI8owBcX2S6AikKpbGa3DyfI9MORAfL3UNSLibe3r/PgrDwcR+"
        "t84NURj1HLLtwRl6ncOcILnApmlJ/G5GLhh6+n8BIs0bQYcK8J0hXyQQeSGd1P+HY6LeI7MSOHcSlNayO9Ovs"
        "61ojoeqdEE60N+h1ZUtRN281YNhL00OJPaM41wHHak6Txf8Vz2ZgNsobZgsYEGuzEYW2bvO7SKF0Q9QA0iPV"
        "xMjXAWOdj43feEXrNjQuSDnfSzmSzof+zSUzwzTRN7k7XQGx49IBsuj5HMY9Xj9yGrFU+krUqVGehRQsQwDu"
        "KgPQ==")


def test_notification_string_to_sign_leaves_out_sign_and_sign_type() -> None:
    assert notification_string_to_sign({"b": "2", "sign": "x", "sign_type": "RSA2", "a": "1",
                                        "c": ""}) == "a=1&b=2"


def test_response_text_is_cut_out_verbatim() -> None:
    body = ('{"alipay_trade_query_response":{"code":"10000","msg":"Su}c\\"cess",'
            '"n":{"x":1}},"sign":"abc"}')
    assert response_text(body, "alipay_trade_query_response") == (
        '{"code":"10000","msg":"Su}c\\"cess","n":{"x":1}}')
    assert response_text(body, "missing") is None


@pytest.mark.parametrize("fen, yuan", [(0, "0.00"), (5, "0.05"), (1250, "12.50"),
                                       (100000, "1000.00")])
def test_amounts_travel_as_yuan_with_two_decimals(fen: int, yuan: str) -> None:
    assert fen_to_yuan(fen) == yuan


# --- requests -------------------------------------------------------------------------


def test_wap_order_is_a_signed_redirect_with_no_server_call() -> None:
    fake = FakeAlipay({})
    created = channel(fake).create_order(order(expires_at_ms=int((NOW + 300) * 1000)))
    assert fake.requests == []
    url = urlsplit(created.checkout_url)
    assert (url.hostname, url.path) == ("alipay.test", "/gateway.do")
    params = dict(parse_qsl(url.query))
    assert rsa2_verify(APP_PUBLIC, string_to_sign(params), params["sign"])
    assert params["method"] == "alipay.trade.wap.pay"
    assert params["timestamp"] == "2026-11-21 10:30:00"
    assert params["notify_url"] == "https://gw.test/v1/notify/alipay"
    assert params["return_url"] == "https://shop.test/receipt/p1"
    assert orjson.loads(params["biz_content"]) == {
        "out_trade_no": "GW20261121000001", "total_amount": "12.50",
        "subject": "小白菜 1.25 kg", "product_code": "QUICK_WAP_WAY",
        "time_expire": "2026-11-21 10:35:00"}


def test_precreate_returns_the_qr_code() -> None:
    fake = FakeAlipay({"alipay.trade.precreate": {
        "code": "10000", "msg": "Success", "out_trade_no": "GW20261121000001",
        "qr_code": "https://qr.alipay.com/bax03431ljhokirwl38f00a7"}})
    created = channel(fake, product="precreate").create_order(order())
    assert created.checkout_url == "https://qr.alipay.com/bax03431ljhokirwl38f00a7"
    sent = fake.requests[0]
    assert (sent["method"], sent["sign_type"], sent["charset"]) == (
        "alipay.trade.precreate", "RSA2", "utf-8")
    assert orjson.loads(sent["biz_content"])["total_amount"] == "12.50"


@pytest.mark.parametrize("trade_status, refund_fee, expected", [
    ("WAIT_BUYER_PAY", None, "pending"), ("TRADE_SUCCESS", None, "paid"),
    ("TRADE_FINISHED", None, "paid"), ("TRADE_CLOSED", None, "closed"),
    ("TRADE_CLOSED", "12.50", "refunded")])
def test_query_maps_trade_status(trade_status: str, refund_fee: str | None,
                                 expected: str) -> None:
    answer = {"code": "10000", "msg": "Success", "out_trade_no": "GW20261121000001",
              "trade_no": "2026112122001419980500012345", "trade_status": trade_status,
              "total_amount": "12.50", "buyer_user_id": "2088102122524333",
              "buyer_logon_id": "159****5620", "send_pay_date": "2026-11-21 10:31:01"}
    if refund_fee:
        answer["refund_fee"] = refund_fee
    status = channel(FakeAlipay({"alipay.trade.query": answer})).query_order("GW20261121000001")
    assert status.status == expected
    assert status.amount_fen == 1250
    assert status.channel_txn_id == "2026112122001419980500012345"
    if expected in ("paid", "refunded"):
        assert status.paid_at_ms == int(datetime(2026, 11, 21, 2, 31, 1, tzinfo=UTC)
                                        .timestamp() * 1000)
    if expected == "pending":
        assert status.paid_at_ms is None


def test_refusal_carries_alipays_sub_code() -> None:
    fake = FakeAlipay({"alipay.trade.query": {
        "code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST",
        "sub_msg": "交易不存在"}})
    with pytest.raises(ChannelError) as caught:
        channel(fake).query_order("nope")
    assert caught.value.code == "ACQ.TRADE_NOT_EXIST"


def test_an_answer_signed_by_someone_else_is_refused() -> None:
    fake = FakeAlipay({"alipay.trade.query": {"code": "10000", "trade_status": "TRADE_SUCCESS",
                                              "total_amount": "12.50"}}, sign_with=APP_KEY)
    with pytest.raises(ChannelSignatureError):
        channel(fake).query_order("GW20261121000001")


def test_an_unsigned_success_is_refused() -> None:
    fake = FakeAlipay({"alipay.trade.query": {"code": "10000", "trade_status": "TRADE_SUCCESS",
                                              "total_amount": "12.50"}}, sign=False)
    with pytest.raises(ChannelSignatureError):
        channel(fake).query_order("GW20261121000001")


def test_close_treats_a_never_created_trade_as_closed_but_not_a_paid_one() -> None:
    channel(FakeAlipay({"alipay.trade.close": {
        "code": "40004", "sub_code": "ACQ.TRADE_NOT_EXIST", "msg": "x"}})).close_order("a")
    channel(FakeAlipay({"alipay.trade.close": {
        "code": "10000", "msg": "Success", "out_trade_no": "a"}})).close_order("a")
    with pytest.raises(ChannelError) as caught:
        channel(FakeAlipay({"alipay.trade.close": {
            "code": "40004", "sub_code": "ACQ.TRADE_STATUS_ERROR", "msg": "x"}})).close_order("a")
    assert caught.value.code == "ACQ.TRADE_STATUS_ERROR"


def test_refund_sends_out_request_no_and_yuan_amount() -> None:
    fake = FakeAlipay({"alipay.trade.refund": {
        "code": "10000", "msg": "Success", "trade_no": "2026112122001419980500012345",
        "out_trade_no": "GW20261121000001", "fund_change": "Y", "refund_fee": "3.00"}})
    refund = channel(fake).refund("GW20261121000001", "RF1", 300, 1250, "bruised")
    assert (refund.status, refund.amount_fen, refund.out_refund_no) == ("success", 300, "RF1")
    assert orjson.loads(fake.requests[0]["biz_content"]) == {
        "out_trade_no": "GW20261121000001", "refund_amount": "3.00",
        "out_request_no": "RF1", "refund_reason": "bruised"}


# --- notifications --------------------------------------------------------------------


def test_a_signed_notification_is_parsed() -> None:
    parsed = channel(FakeAlipay({})).parse_notification({}, notification())
    assert parsed.notify_id == "ac05099524730693a8b330c5ecf72da9786"
    assert (parsed.out_trade_no, parsed.status, parsed.amount_fen) == (
        "GW20261121000001", "paid", 1250)
    assert parsed.channel_txn_id == "2026112122001419980500012345"
    assert parsed.payer_id == "2088102122524333"
    assert parsed.paid_at_ms == int(datetime(2026, 11, 21, 10, 31, 1, tzinfo=ZoneInfo(
        "Asia/Shanghai")).timestamp() * 1000)


@pytest.mark.parametrize("tamper", ["amount", "status", "drop_sign", "bad_base64",
                                    "other_key", "sign_type"])
def test_a_tampered_notification_is_refused(tamper: str) -> None:
    params = dict(parse_qsl(notification().decode(), keep_blank_values=True))
    if tamper == "amount":
        params["total_amount"] = "0.01"
    elif tamper == "status":
        params["trade_status"] = "TRADE_FINISHED"
    elif tamper == "drop_sign":
        del params["sign"]
    elif tamper == "bad_base64":
        params["sign"] = "not base64!"
    elif tamper == "other_key":
        params["sign"] = rsa2_sign(APP_KEY, notification_string_to_sign(params))
    else:
        params["sign_type"] = "RSA"
    with pytest.raises(ChannelSignatureError):
        channel(FakeAlipay({})).parse_notification({}, urlencode(params).encode())


def test_a_notification_for_another_app_is_refused() -> None:
    with pytest.raises(ChannelError) as caught:
        channel(FakeAlipay({})).parse_notification({}, notification(app_id="2021999"))
    assert caught.value.code == "wrong_app"


def test_garbage_notification_is_a_channel_error() -> None:
    with pytest.raises(ChannelError):
        channel(FakeAlipay({})).parse_notification({}, b"\xff\xfe")


def test_acknowledgement_bodies() -> None:
    adapter = channel(FakeAlipay({}))
    assert adapter.acknowledge(True)[:2] == (200, b"success")
    assert adapter.acknowledge(False)[1] != b"success"


def test_from_settings_reads_pem_files() -> None:
    adapter = from_settings({
        "alipay_app_id": APP_ID,
        "alipay_private_key": str(KEYS / "TEST_ONLY_alipay_app_private.pem"),
        "alipay_public_key": str(KEYS / "TEST_ONLY_alipay_platform_public.pem"),
        "alipay_gateway_url": "https://alipay.test/gateway.do"}, FakeAlipay({}))
    assert adapter.name == "alipay"
    parsed = adapter.parse_notification({}, notification())
    assert parsed.status == "paid"
    assert base64.b64decode(rsa2_sign(adapter.app_private_key, "x"))
