"""WeChat Pay v3 adapter against a stand-in WeChat Pay built from our own TEST-ONLY keys.

The stand-in checks every request's Authorization signature with our merchant public key,
the way WeChat Pay does, and signs its answers and notifications with the "platform" test
key. Notification resources are encrypted here with a test APIv3 key. No live calls.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from cryptography.hazmat.primitives import serialization

from aggregation_gateway.channels.base import (
    ChannelError,
    ChannelOrder,
    ChannelSignatureError,
    HttpRequest,
    HttpResponse,
)
from aggregation_gateway.channels.wechatpay import (
    WeChatPayChannel,
    authorization_header,
    decrypt_resource,
    encrypt_resource,
    from_settings,
    request_message,
    response_message,
    sign_sha256_rsa,
    verify_sha256_rsa,
)

KEYS = Path(__file__).parent / "fixtures" / "channels"
NOW = 1795228200  # 2026-11-21T10:30:00+08:00
MCH_ID = "1230000109"
APP_ID = "wxd678efh567hg6787"
MERCHANT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
PLATFORM_SERIAL = "PUB_KEY_ID_0112300001092026112100000000000001"
API_V3_KEY = b"TEST-ONLY-apiv3-key-32-bytes-xx!"


def _private(name: str) -> Any:
    return serialization.load_pem_private_key((KEYS / f"TEST_ONLY_{name}_private.pem")
                                              .read_bytes(), password=None)


def _public(name: str) -> Any:
    return serialization.load_pem_public_key((KEYS / f"TEST_ONLY_{name}_public.pem").read_bytes())


MERCHANT_KEY, MERCHANT_PUBLIC = _private("wechatpay_merchant"), _public("wechatpay_merchant")
PLATFORM_KEY, PLATFORM_PUBLIC = _private("wechatpay_platform"), _public("wechatpay_platform")

AUTH = re.compile(r'WECHATPAY2-SHA256-RSA2048 mchid="(?P<mchid>[^"]+)",'
                  r'nonce_str="(?P<nonce>[^"]+)",signature="(?P<signature>[^"]+)",'
                  r'timestamp="(?P<timestamp>\d+)",serial_no="(?P<serial>[^"]+)"')


def signed_headers(body: bytes, *, key: Any = PLATFORM_KEY, timestamp: int = NOW,
                   nonce: str = "C3A4F7DE0A7B11EFB1D3", serial: str = PLATFORM_SERIAL
                   ) -> dict[str, str]:
    return {"Wechatpay-Timestamp": str(timestamp), "Wechatpay-Nonce": nonce,
            "Wechatpay-Serial": serial,
            "Wechatpay-Signature": sign_sha256_rsa(key, response_message(str(timestamp), nonce,
                                                               body.decode()))}


class FakeWeChatPay:
    """Answers like api.mch.weixin.qq.com; ``answers`` maps (method, path) to (status, body)."""

    def __init__(self, answers: dict[tuple[str, str], tuple[int, Any]], *,
                 sign_with: Any = PLATFORM_KEY, sign: bool = True) -> None:
        self.answers = answers
        self.sign_with = sign_with
        self.sign = sign
        self.requests: list[tuple[HttpRequest, dict[str, str]]] = []

    def __call__(self, request: HttpRequest) -> HttpResponse:
        url = urlsplit(request.url)
        assert url.hostname == "wechatpay.test"
        path = url.path + (f"?{url.query}" if url.query else "")
        auth = AUTH.fullmatch(request.headers["Authorization"])
        assert auth, request.headers["Authorization"]
        assert (auth["mchid"], auth["serial"]) == (MCH_ID, MERCHANT_SERIAL)
        assert verify_sha256_rsa(MERCHANT_PUBLIC, request_message(
            request.method, path, auth["timestamp"], auth["nonce"], request.body.decode()),
            auth["signature"]), "request signature"
        self.requests.append((request, auth.groupdict()))
        status, answer = self.answers[(request.method, path)]
        body = orjson.dumps(answer) if answer is not None else b""
        headers = signed_headers(body, key=self.sign_with) if self.sign else {}
        return HttpResponse(status, {"Content-Type": "application/json", **headers}, body)


def channel(fake: FakeWeChatPay, **options: Any) -> WeChatPayChannel:
    return WeChatPayChannel(MCH_ID, APP_ID, MERCHANT_KEY, MERCHANT_SERIAL, API_V3_KEY,
                            PLATFORM_PUBLIC, fake, platform_serial_no=PLATFORM_SERIAL,
                            base_url="https://wechatpay.test", clock=lambda: NOW,
                            nonce=lambda: "593BEC0C930BF1AFEB40B4A08C8FB242", **options)


def order(**changes: Any) -> ChannelOrder:
    fields = {"out_trade_no": "GW20261121000001", "amount_fen": 1250, "currency": "CNY",
              "subject": "小白菜 1.25 kg", "notify_url": "https://gw.test/v1/notify/wechatpay",
              "return_url": "https://shop.test/receipt/p1"}
    return ChannelOrder(**{**fields, **changes})


TRANSACTION = {
    "appid": APP_ID, "mchid": MCH_ID, "out_trade_no": "GW20261121000001",
    "transaction_id": "4200000000202611211234567890", "trade_type": "NATIVE",
    "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "bank_type": "OTHERS",
    "success_time": "2026-11-21T10:31:01+08:00",
    "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
    "amount": {"total": 1250, "payer_total": 1250, "currency": "CNY", "payer_currency": "CNY"}}


def notification(resource: dict[str, Any] | None = None, *, event_type: str = "TRANSACTION.SUCCESS",
                 associated_data: str = "transaction") -> tuple[dict[str, str], bytes]:
    plaintext = orjson.dumps(resource or TRANSACTION)
    body = orjson.dumps({
        "id": "EV-2026112110310100001", "create_time": "2026-11-21T10:31:02+08:00",
        "resource_type": "encrypt-resource", "event_type": event_type, "summary": "支付成功",
        "resource": {**encrypt_resource(API_V3_KEY, plaintext, "fdasflkja484",
                                        associated_data), "original_type": "transaction"}})
    return signed_headers(body), body


# --- the published algorithm, byte for byte ---------------------------------------------


def test_request_message_is_the_five_lines_of_the_spec() -> None:
    assert request_message("post", "/v3/pay/transactions/native", "1554208460",
                           "593BEC0C930BF1AFEB40B4A08C8FB242",
                           '{"appid":"wxd678efh567hg6787","mchid":"1230000109"}') == (
        "POST\n/v3/pay/transactions/native\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n"
        '{"appid":"wxd678efh567hg6787","mchid":"1230000109"}\n')
    assert request_message("GET", "/v3/certificates", "1", "N", "") == (
        "GET\n/v3/certificates\n1\nN\n\n")


def test_authorization_header_signature_equals_openssl() -> None:
    # computed once with: printf 'POST\n/v3/pay/transactions/native\n1554208460\n593BEC0C9
    #   30BF1AFEB40B4A08C8FB242\n{"appid":"wxd678efh567hg6787","mchid":"1230000109"}\n' |
    #   openssl dgst -sha256 -sign TEST_ONLY_wechatpay_merchant_private.pem | base64 -w0
    expected = (
        "FUIlEKHN7qFEoK1uADwXT/N1xuApjUd3LziRW70wrhi3LWcfNm4Wr/lzTrIlj/+kBHSd0NkfhoTKRRGq3a00Y"
        "qSj14lDKr4X4s/g04P3N++de7e/J3xzfkj9/iq+Pc/kpmp8Cn5ILLSjn3rvFS84/ArzPV0TjOXg3x9wFpZEK"
        "JfyQ/4LLF0L5/l/W4Bs8urWtTpNNjvzjwt4Q+Th6OJY+vVX9JNyECfmYfloPmk6TEQb2okdqM0tvY61PsDAN"
        "NvvM9HNV2tdUP9fZ3g62A5nQ0xUmkOZuYxpKOT/wMb6VeMwb+H+BgdHsHLrfNK7yyGMkjOh3X05Je04vlCrC"
        "LVdpg==")
    header = authorization_header(MCH_ID, MERCHANT_SERIAL, MERCHANT_KEY, "POST",
                                  "/v3/pay/transactions/native",
                                  '{"appid":"wxd678efh567hg6787","mchid":"1230000109"}',
                                  "1554208460", "593BEC0C930BF1AFEB40B4A08C8FB242")
    assert header == (
        f'WECHATPAY2-SHA256-RSA2048 mchid="1230000109",nonce_str="593BEC0C930BF1AFEB40B4A08C8F'
        f'B242",signature="{expected}",timestamp="1554208460",serial_no="{MERCHANT_SERIAL}"')


def test_response_message() -> None:
    assert response_message("1554209980", "c5ac7061fccab6bf3e254dcf98995b8c", '{"a":1}') == (
        '1554209980\nc5ac7061fccab6bf3e254dcf98995b8c\n{"a":1}\n')


def test_aes_gcm_resource_round_trip_and_known_tag() -> None:
    resource = encrypt_resource(API_V3_KEY, b'{"x":1}', "fdasflkja484", "transaction")
    assert decrypt_resource(API_V3_KEY, resource) == b'{"x":1}'
    raw = base64.b64decode(resource["ciphertext"])
    assert len(raw) == len(b'{"x":1}') + 16  # ciphertext || 16-byte GCM tag, as WeChat sends


@pytest.mark.parametrize("tamper", ["ciphertext", "associated_data", "nonce", "key"])
def test_a_tampered_resource_does_not_decrypt(tamper: str) -> None:
    resource = encrypt_resource(API_V3_KEY, b'{"x":1}', "fdasflkja484", "transaction")
    key = API_V3_KEY
    if tamper == "ciphertext":
        raw = bytearray(base64.b64decode(resource["ciphertext"]))
        raw[0] ^= 1
        resource["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    elif tamper == "associated_data":
        resource["associated_data"] = "refund"
    elif tamper == "nonce":
        resource["nonce"] = "fdasflkja485"
    else:
        key = b"x" * 32
    with pytest.raises(ChannelSignatureError):
        decrypt_resource(key, resource)


# --- requests -------------------------------------------------------------------------


def test_native_order_sends_fen_and_returns_code_url() -> None:
    fake = FakeWeChatPay({("POST", "/v3/pay/transactions/native"): (
        200, {"code_url": "weixin://wxpay/bizpayurl?pr=p4lpSuKzz"})})
    created = channel(fake).create_order(order(expires_at_ms=(NOW + 300) * 1000))
    assert created.checkout_url == "weixin://wxpay/bizpayurl?pr=p4lpSuKzz"
    request, auth = fake.requests[0]
    assert auth["timestamp"] == str(NOW)
    assert request.headers["Content-Type"] == "application/json"
    assert orjson.loads(request.body) == {
        "appid": APP_ID, "mchid": MCH_ID, "description": "小白菜 1.25 kg",
        "out_trade_no": "GW20261121000001", "notify_url": "https://gw.test/v1/notify/wechatpay",
        "amount": {"total": 1250, "currency": "CNY"},
        "time_expire": "2026-11-21T10:35:00+08:00"}


def test_h5_order_redirects_back_to_return_url() -> None:
    fake = FakeWeChatPay({("POST", "/v3/pay/transactions/h5"): (
        200, {"h5_url": "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx1"})})
    created = channel(fake, product="h5").create_order(order())
    assert created.checkout_url.endswith(
        "prepay_id=wx1&redirect_url=https%3A%2F%2Fshop.test%2Freceipt%2Fp1")
    sent = orjson.loads(fake.requests[0][0].body)
    assert sent["scene_info"]["h5_info"] == {"type": "Wap"}


def test_jsapi_pay_params_are_signed_with_the_merchant_key() -> None:
    fake = FakeWeChatPay({("POST", "/v3/pay/transactions/jsapi"): (
        200, {"prepay_id": "wx201410272009395522657a690389285100"})})
    params = channel(fake).create_jsapi_order(order(), "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")
    assert params["package"] == "prepay_id=wx201410272009395522657a690389285100"
    assert verify_sha256_rsa(MERCHANT_PUBLIC, f"{APP_ID}\n{NOW}\n{params['nonceStr']}\n"
                   f"{params['package']}\n", params["paySign"])


@pytest.mark.parametrize("trade_state, expected", [
    ("SUCCESS", "paid"), ("REFUND", "refunded"), ("NOTPAY", "pending"),
    ("USERPAYING", "pending"), ("CLOSED", "closed"), ("REVOKED", "closed"),
    ("PAYERROR", "failed")])
def test_query_maps_trade_state(trade_state: str, expected: str) -> None:
    path = f"/v3/pay/transactions/out-trade-no/GW20261121000001?mchid={MCH_ID}"
    fake = FakeWeChatPay({("GET", path): (200, {**TRANSACTION, "trade_state": trade_state})})
    status = channel(fake).query_order("GW20261121000001")
    assert status.status == expected
    assert status.amount_fen == 1250
    assert status.channel_txn_id == "4200000000202611211234567890"
    assert fake.requests[0][0].body == b""
    if expected in ("paid", "refunded"):
        assert status.paid_at_ms == int(datetime(2026, 11, 21, 2, 31, 1, tzinfo=UTC)
                                        .timestamp() * 1000)
        assert status.payer_id == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


def test_close_answers_204_signed_over_an_empty_body() -> None:
    path = "/v3/pay/transactions/out-trade-no/GW20261121000001/close"
    fake = FakeWeChatPay({("POST", path): (204, None)})
    channel(fake).close_order("GW20261121000001")
    assert orjson.loads(fake.requests[0][0].body) == {"mchid": MCH_ID}


def test_refund() -> None:
    fake = FakeWeChatPay({("POST", "/v3/refund/domestic/refunds"): (200, {
        "refund_id": "50000000382019052709732678859", "out_refund_no": "RF1",
        "out_trade_no": "GW20261121000001", "status": "PROCESSING",
        "amount": {"refund": 300, "total": 1250, "currency": "CNY"}})})
    refund = channel(fake).refund("GW20261121000001", "RF1", 300, 1250, "bruised")
    assert (refund.status, refund.channel_refund_id) == (
        "processing", "50000000382019052709732678859")
    assert orjson.loads(fake.requests[0][0].body) == {
        "out_trade_no": "GW20261121000001", "out_refund_no": "RF1", "reason": "bruised",
        "amount": {"refund": 300, "total": 1250, "currency": "CNY"}}


def test_a_signed_refusal_carries_wechats_code() -> None:
    path = f"/v3/pay/transactions/out-trade-no/nope?mchid={MCH_ID}"
    fake = FakeWeChatPay({("GET", path): (404, {"code": "ORDER_NOT_EXIST",
                                                "message": "订单不存在"})})
    with pytest.raises(ChannelError) as caught:
        channel(fake).query_order("nope")
    assert caught.value.code == "ORDER_NOT_EXIST"


@pytest.mark.parametrize("problem", ["other_key", "unsigned"])
def test_an_answer_not_signed_by_the_platform_is_refused(problem: str) -> None:
    path = f"/v3/pay/transactions/out-trade-no/GW20261121000001?mchid={MCH_ID}"
    fake = FakeWeChatPay({("GET", path): (200, TRANSACTION)}, sign_with=MERCHANT_KEY,
                         sign=problem != "unsigned")
    with pytest.raises(ChannelSignatureError):
        channel(fake).query_order("GW20261121000001")


# --- notifications --------------------------------------------------------------------


def test_a_signed_notification_is_verified_and_decrypted() -> None:
    headers, body = notification()
    parsed = channel(FakeWeChatPay({})).parse_notification(headers, body)
    assert parsed.notify_id == "EV-2026112110310100001"
    assert (parsed.out_trade_no, parsed.status, parsed.amount_fen) == (
        "GW20261121000001", "paid", 1250)
    assert parsed.channel_txn_id == "4200000000202611211234567890"
    assert parsed.raw["resource"]["trade_state"] == "SUCCESS"


def test_a_refund_notification_maps_to_refunded() -> None:
    refund = {"mchid": MCH_ID, "out_trade_no": "GW20261121000001",
              "transaction_id": "4200000000202611211234567890", "out_refund_no": "RF1",
              "refund_id": "50000000382019052709732678859", "refund_status": "SUCCESS",
              "amount": {"total": 1250, "refund": 1250, "payer_total": 1250,
                         "payer_refund": 1250}}
    headers, body = notification(refund, event_type="REFUND.SUCCESS", associated_data="refund")
    parsed = channel(FakeWeChatPay({})).parse_notification(headers, body)
    assert (parsed.status, parsed.amount_fen) == ("refunded", 1250)


@pytest.mark.parametrize("tamper", ["body", "signature_key", "timestamp_header", "stale",
                                    "serial", "missing_header", "ciphertext"])
def test_a_tampered_notification_is_refused(tamper: str) -> None:
    headers, body = notification()
    if tamper == "body":
        body = body.replace(b"TRANSACTION.SUCCESS", b"TRANSACTION.SUCCESZ")
    elif tamper == "signature_key":
        headers = signed_headers(body, key=MERCHANT_KEY)
    elif tamper == "timestamp_header":
        headers["Wechatpay-Timestamp"] = str(NOW + 1)
    elif tamper == "stale":
        headers = signed_headers(body, timestamp=NOW - 301)
    elif tamper == "serial":
        headers = signed_headers(body, serial="PUB_KEY_ID_SOMEONE_ELSE")
    elif tamper == "missing_header":
        del headers["Wechatpay-Signature"]
    else:
        envelope = orjson.loads(body)
        envelope["resource"]["ciphertext"] = encrypt_resource(
            b"y" * 32, orjson.dumps(TRANSACTION), "fdasflkja484", "transaction")["ciphertext"]
        body = orjson.dumps(envelope)
        headers = signed_headers(body)
    with pytest.raises(ChannelSignatureError):
        channel(FakeWeChatPay({})).parse_notification(headers, body)


def test_a_notification_for_another_merchant_is_refused() -> None:
    headers, body = notification({**TRANSACTION, "mchid": "1999999999"})
    with pytest.raises(ChannelError) as caught:
        channel(FakeWeChatPay({})).parse_notification(headers, body)
    assert caught.value.code == "wrong_merchant"


def test_acknowledgement() -> None:
    adapter = channel(FakeWeChatPay({}))
    status, body, _ = adapter.acknowledge(True)
    assert status in (200, 204)
    assert orjson.loads(body)["code"] == "SUCCESS"
    assert adapter.acknowledge(False)[0] >= 400


def test_api_v3_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        WeChatPayChannel(MCH_ID, APP_ID, MERCHANT_KEY, MERCHANT_SERIAL, b"short",
                         PLATFORM_PUBLIC, FakeWeChatPay({}))


def test_from_settings_reads_pem_files() -> None:
    adapter = from_settings({
        "wechatpay_mch_id": MCH_ID, "wechatpay_app_id": APP_ID,
        "wechatpay_private_key": str(KEYS / "TEST_ONLY_wechatpay_merchant_private.pem"),
        "wechatpay_serial_no": MERCHANT_SERIAL, "wechatpay_api_v3_key": API_V3_KEY.decode(),
        "wechatpay_platform_public_key": str(KEYS / "TEST_ONLY_wechatpay_platform_public.pem"),
        "wechatpay_base_url": "https://wechatpay.test"}, FakeWeChatPay({}))
    adapter.clock = lambda: NOW
    headers, body = notification()
    assert adapter.parse_notification(headers, body).status == "paid"
