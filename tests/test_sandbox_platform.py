"""The sandbox payment platform as a real process, driven over HTTP like a merchant would.

A real notify receiver (werkzeug on a loopback port) stands in for the gateway; it can be
told to refuse deliveries so that retries are observable.
"""

from __future__ import annotations

import csv
import io
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask, request
from werkzeug.serving import make_server

from market_protocol import canonical_json, signing
from service_base.testing import ServiceProcess, free_port, tracepay_command, wait_until

pytestmark = pytest.mark.slow  # a sandbox platform process

SCHEDULE = "0,0.2,0.2,0.2,0.2"


class NotifyReceiver:
    """A merchant's notify endpoint: refuses the first ``fail_first`` deliveries per order."""

    def __init__(self, fail_first: int = 0, port: int | None = None) -> None:
        self.fail_first = fail_first
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        app = Flask("notify-receiver")

        @app.post("/notify")
        def notify():  # type: ignore[no-untyped-def]
            body = request.get_data()
            with self.lock:
                self.received.append((dict(request.headers), body))
                seen = sum(1 for _, b in self.received
                           if orjson.loads(b)["out_trade_no"] == orjson.loads(body)["out_trade_no"])
            if seen <= self.fail_first:
                return "busy", 500
            return "success", 200

        self.port = port or free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}/notify"

    def for_trade(self, out_trade_no: str) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return [(h, b) for h, b in self.received
                    if orjson.loads(b)["out_trade_no"] == out_trade_no]

    def __enter__(self) -> NotifyReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()


class Merchant:
    """A merchant app that signs its requests to the platform and checks the answers."""

    def __init__(self, base_url: str, app_id: str | None = None) -> None:
        self.base_url = base_url
        self.app_id = app_id or f"app-{uuid.uuid4().hex[:8]}"
        self.key = Ed25519PrivateKey.generate()
        self.platform_key = None
        self.http = requests.Session()
        self.http.trust_env = False

    def register(self, merchant_name: str = "Stall 17 Greens") -> requests.Response:
        response = self.http.post(f"{self.base_url}/sandbox/apps", json={
            "app_id": self.app_id, "public_key_pem": signing.public_key_pem(self.key),
            "merchant_name": merchant_name})
        self.platform_key = signing.load_public_key(response.json()["platform_public_key_pem"])
        return response

    def signed_headers(self, method: str, target: str, body: bytes = b"", *,
                       key: Ed25519PrivateKey | None = None, timestamp: int | None = None,
                       nonce: str | None = None) -> dict[str, str]:
        """X-App-Id, X-Timestamp, X-Nonce and X-Signature over
        METHOD\\nTARGET\\nTIMESTAMP\\nNONCE\\nBODY (docs/protocol.md section 5)."""
        stamp = str(int(time.time() * 1000) if timestamp is None else timestamp)
        nonce = nonce or secrets.token_urlsafe(18)
        message = f"{method}\n{target}\n{stamp}\n{nonce}\n".encode() + body
        return {"X-App-Id": self.app_id, "X-Timestamp": stamp, "X-Nonce": nonce,
                "X-Signature": signing.sign(key or self.key, message)}

    def post(self, path: str, body: Any = None, *, raw: bytes | None = None,
             key: Ed25519PrivateKey | None = None) -> requests.Response:
        data = raw if raw is not None else (canonical_json.dumps(body) if body is not None
                                             else b"")
        return self.http.post(f"{self.base_url}{path}", data=data, headers={
            "Content-Type": "application/json",
            **self.signed_headers("POST", path, data, key=key)})

    def get(self, path: str, *, signed_path: str | None = None,
            **extra_headers: str) -> requests.Response:
        return self.http.get(f"{self.base_url}{path}", headers={
            **self.signed_headers("GET", signed_path or path), **extra_headers})

    def verified(self, response: requests.Response) -> Any:
        """The answer's JSON, after checking the platform's signature on it."""
        assert signing.verify(self.platform_key, response.content,
                              response.headers["X-Signature"]), "platform signature"
        return response.json()

    def order(self, notify_url: str, amount_fen: int = 1250, **extra: Any) -> dict[str, Any]:
        return {"out_trade_no": f"T{uuid.uuid4().hex[:12]}", "amount_fen": amount_fen,
                "currency": "CNY", "subject": "Bok choy 1.25 kg", "notify_url": notify_url,
                "return_url": "http://127.0.0.1:9/receipt/p1", **extra}


def start_platform(data_dir: Path, port: int, *extra: str) -> ServiceProcess:
    return ServiceProcess(
        tracepay_command("sandbox-platform", "--port", str(port), "--data-dir", str(data_dir),
                         "--notify-schedule", SCHEDULE, *extra),
        log_path=data_dir.parent / f"platform-{port}.log",
        health_url=f"http://127.0.0.1:{port}/healthz").start()


@pytest.fixture(scope="module")
def receiver() -> Iterator[NotifyReceiver]:
    with NotifyReceiver(fail_first=2) as running:
        yield running


@pytest.fixture(scope="module")
def platform_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    process = start_platform(tmp_path_factory.mktemp("platform") / "data", port)
    yield f"http://127.0.0.1:{port}"
    process.stop()


@pytest.fixture
def merchant(platform_url: str) -> Merchant:
    merchant = Merchant(platform_url)
    assert merchant.register().status_code == 201
    return merchant


def pay(merchant: Merchant, order_id: str, payer_id: str = "buyer-7a3f") -> requests.Response:
    return merchant.http.post(f"{merchant.base_url}/checkout/{order_id}/pay",
                              data={"payer_id": payer_id},
                              headers={"Accept": "application/json"})


# --- service basics -------------------------------------------------------------------


def test_healthz_and_openapi(platform_url: str) -> None:
    assert requests.get(f"{platform_url}/healthz").json()["status"] == "ok"
    document = requests.get(f"{platform_url}/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert {"/v1/orders", "/v1/refunds", "/v1/statements/{day}"} <= set(document["paths"])


def test_register_app_twice_keeps_one_app_and_returns_platform_key(platform_url: str) -> None:
    merchant = Merchant(platform_url)
    first = merchant.register()
    again = merchant.register()
    assert (first.status_code, again.status_code) == (201, 200)
    keys = requests.get(f"{platform_url}/v1/keys").json()
    assert first.json()["platform_public_key_pem"] == keys["platform_public_key_pem"]


def test_register_app_refuses_a_non_ed25519_key(platform_url: str) -> None:
    response = requests.post(f"{platform_url}/sandbox/apps", json={
        "app_id": "x", "public_key_pem": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


# --- orders ---------------------------------------------------------------------------


def test_create_order_is_signed_and_idempotent(merchant: Merchant, receiver: NotifyReceiver) -> None:
    order = merchant.order(receiver.url)
    created = merchant.post("/v1/orders", order)
    assert created.status_code == 201
    body = merchant.verified(created)
    assert body["status"] == "WAIT_PAY"
    assert body["out_trade_no"] == order["out_trade_no"]
    assert body["checkout_url"] == f"{merchant.base_url}/checkout/{body['order_id']}"
    again = merchant.post("/v1/orders", order)
    assert again.status_code == 200
    assert merchant.verified(again)["order_id"] == body["order_id"]


def test_same_out_trade_no_with_another_amount_is_a_conflict(
        merchant: Merchant, receiver: NotifyReceiver) -> None:
    order = merchant.order(receiver.url)
    assert merchant.post("/v1/orders", order).status_code == 201
    response = merchant.post("/v1/orders", {**order, "amount_fen": order["amount_fen"] + 1})
    assert response.status_code == 409
    assert response.json()["error"] == "order_conflict"


def test_same_out_trade_no_from_two_apps_is_two_orders(
        platform_url: str, receiver: NotifyReceiver) -> None:
    first, second = Merchant(platform_url), Merchant(platform_url)
    first.register()
    second.register()
    order = first.order(receiver.url)
    a = first.verified(first.post("/v1/orders", order))
    b = second.verified(second.post("/v1/orders", order))
    assert a["order_id"] != b["order_id"]


@pytest.mark.parametrize("tamper", ["other_key", "other_body", "missing", "unknown_app"])
def test_bad_signature_is_refused(merchant: Merchant, receiver: NotifyReceiver,
                                  tamper: str) -> None:
    order = merchant.order(receiver.url)
    data = canonical_json.dumps(order)
    headers = merchant.signed_headers("POST", "/v1/orders", data)
    if tamper == "other_key":
        headers = merchant.signed_headers("POST", "/v1/orders", data,
                                          key=Ed25519PrivateKey.generate())
    elif tamper == "other_body":
        data = canonical_json.dumps({**order, "amount_fen": 1})
    elif tamper == "missing":
        del headers["X-Signature"]
    else:
        headers["X-App-Id"] = "nobody"
    response = requests.post(f"{merchant.base_url}/v1/orders", data=data, headers=headers)
    assert response.status_code in (401, 403)
    assert response.json()["error"] in {"bad_signature", "missing_signature", "unknown_app"}
    assert merchant.get(f"/v1/orders/{order['out_trade_no']}").status_code == 404


def test_refusals_are_signed_too(merchant: Merchant, receiver: NotifyReceiver) -> None:
    order = merchant.order(receiver.url)
    merchant.post("/v1/orders", order)
    conflict = merchant.post("/v1/orders", {**order, "amount_fen": 1})
    assert conflict.status_code == 409
    assert merchant.verified(conflict)["error"] == "order_conflict"
    missing = merchant.get("/v1/orders/never-made")
    assert merchant.verified(missing)["error"] == "unknown_order"


def test_a_signature_is_bound_to_method_and_path(merchant: Merchant,
                                                 receiver: NotifyReceiver) -> None:
    """A body-less request's signature names its order: it cannot be moved to another."""
    first, second = merchant.order(receiver.url), merchant.order(receiver.url)
    merchant.post("/v1/orders", first)
    merchant.post("/v1/orders", second)
    close_a = f"/v1/orders/{first['out_trade_no']}/close"
    close_b = f"/v1/orders/{second['out_trade_no']}/close"
    captured = merchant.signed_headers("POST", close_a)
    moved = requests.post(f"{merchant.base_url}{close_b}", headers=captured)
    assert moved.status_code == 403
    assert merchant.verified(moved)["error"] == "bad_signature"
    as_get = requests.get(f"{merchant.base_url}/v1/orders/{first['out_trade_no']}",
                          headers=merchant.signed_headers("POST", f"/v1/orders/"
                                                          f"{first['out_trade_no']}"))
    assert as_get.status_code == 403
    bare = requests.get(f"{merchant.base_url}/v1/orders/{second['out_trade_no']}",
                        headers={"X-App-Id": merchant.app_id, "X-Signature": signing.sign(
                            merchant.key, f"/v1/orders/{second['out_trade_no']}".encode())})
    assert bare.status_code == 401  # the old path-only form is no longer enough
    assert merchant.verified(merchant.get(f"/v1/orders/{second['out_trade_no']}")
                             )["status"] == "WAIT_PAY"
    assert merchant.verified(merchant.get(f"/v1/orders/{first['out_trade_no']}")
                             )["status"] == "WAIT_PAY"


def test_a_request_cannot_be_replayed(merchant: Merchant, receiver: NotifyReceiver) -> None:
    order = merchant.order(receiver.url)
    merchant.post("/v1/orders", order)
    path = f"/v1/orders/{order['out_trade_no']}/close"
    headers = merchant.signed_headers("POST", path)
    assert merchant.verified(requests.post(f"{merchant.base_url}{path}",
                                           headers=headers))["status"] == "CLOSED"
    again = requests.post(f"{merchant.base_url}{path}", headers=headers)
    assert again.status_code == 401
    assert merchant.verified(again)["error"] == "replayed_nonce"
    data = canonical_json.dumps(merchant.order(receiver.url))
    create = merchant.signed_headers("POST", "/v1/orders", data)
    assert requests.post(f"{merchant.base_url}/v1/orders", data=data,
                         headers=create).status_code == 201
    replay = requests.post(f"{merchant.base_url}/v1/orders", data=data, headers=create)
    assert replay.status_code == 401 and replay.json()["error"] == "replayed_nonce"


@pytest.mark.parametrize("skew_s", [-301, 301])
def test_a_stale_or_future_timestamp_is_refused(merchant: Merchant, skew_s: int) -> None:
    path = "/v1/orders/whatever"
    stamp = int(time.time() * 1000) + skew_s * 1000
    response = requests.get(f"{merchant.base_url}{path}",
                            headers=merchant.signed_headers("GET", path, timestamp=stamp))
    assert response.status_code == 401
    assert merchant.verified(response)["error"] == "stale_timestamp"
    assert "300 s" in response.json()["message"]


@pytest.mark.parametrize("change", ["no_nonce", "short_nonce", "bad_timestamp",
                                    "timestamp_changed"])
def test_malformed_replay_headers_are_refused(merchant: Merchant, change: str) -> None:
    path = "/v1/orders/whatever"
    headers = merchant.signed_headers("GET", path)
    if change == "no_nonce":
        del headers["X-Nonce"]
    elif change == "short_nonce":
        headers = merchant.signed_headers("GET", path, nonce="abc")
    elif change == "bad_timestamp":
        headers["X-Timestamp"] = "yesterday"
    else:
        headers["X-Timestamp"] = str(int(headers["X-Timestamp"]) + 1)
    response = requests.get(f"{merchant.base_url}{path}", headers=headers)
    assert response.status_code in (401, 403)
    assert response.json()["error"] == {
        "no_nonce": "missing_signature", "short_nonce": "bad_nonce",
        "bad_timestamp": "bad_timestamp", "timestamp_changed": "bad_signature"}[change]


def test_a_forged_request_does_not_use_up_a_nonce(merchant: Merchant) -> None:
    path = "/v1/orders/whatever"
    good = merchant.signed_headers("GET", path)
    forged = {**good, "X-Signature": merchant.signed_headers(
        "GET", path, key=Ed25519PrivateKey.generate(), timestamp=int(good["X-Timestamp"]),
        nonce=good["X-Nonce"])["X-Signature"]}
    assert requests.get(f"{merchant.base_url}{path}", headers=forged).status_code == 403
    answer = requests.get(f"{merchant.base_url}{path}", headers=good)
    assert answer.status_code == 404 and answer.json()["error"] == "unknown_order"


def test_malformed_json_is_400(merchant: Merchant) -> None:
    response = merchant.post("/v1/orders", raw=b'{"out_trade_no": ')
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"


@pytest.mark.parametrize("change, field", [
    ({"amount_fen": 0}, "$.amount_fen"),
    ({"amount_fen": "12.50"}, "$.amount_fen"),
    ({"amount_fen": 12.5}, "$.amount_fen"),
    ({"currency": "cny"}, "$.currency"),
    ({"out_trade_no": "has space"}, "$.out_trade_no"),
    ({"notify_url": "ftp://127.0.0.1/x"}, "$.notify_url"),
    ({"notify_url": "http://example.com/notify"}, "$.notify_url"),
    ({"subject": "  "}, "$.subject"),
    ({"expires_at_ms": 1_000}, "$.expires_at_ms"),
    ({"surprise": 1}, "$.surprise"),
])
def test_invalid_order_fields_are_named(merchant: Merchant, receiver: NotifyReceiver,
                                        change: dict[str, Any], field: str) -> None:
    order = {**merchant.order(receiver.url), **change}
    raw = orjson.dumps(order)  # not canonical: floats must reach the server too
    response = merchant.post("/v1/orders", raw=raw)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert response.json()["field"] == field


@pytest.mark.parametrize("raw, status, error", [
    (b"[1, 2]", 400, "invalid_request"),
    (b"null", 400, "invalid_request"),
    (b"", 400, "malformed_json"),
    (b"\xff\xfe{", 400, "malformed_json"),
    (b'{"pad": "' + b"x" * 70_000 + b'"}', 413, "request_entity_too_large"),
])
def test_bodies_that_are_not_an_order(merchant: Merchant, raw: bytes, status: int,
                                      error: str) -> None:
    response = merchant.post("/v1/orders", raw=raw)
    assert response.status_code == status
    assert response.json()["error"] == error


def test_checkout_pay_with_broken_json_is_400(merchant: Merchant,
                                              receiver: NotifyReceiver) -> None:
    created = merchant.verified(merchant.post("/v1/orders", merchant.order(receiver.url)))
    response = requests.post(f"{merchant.base_url}/checkout/{created['order_id']}/pay",
                             data=b"{nope", headers={"Content-Type": "application/json",
                                                     "Accept": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"


def test_missing_field_is_named(merchant: Merchant, receiver: NotifyReceiver) -> None:
    order = merchant.order(receiver.url)
    del order["return_url"]
    response = merchant.post("/v1/orders", order)
    assert response.status_code == 400
    assert response.json()["field"] == "$.return_url"


def test_query_is_signed_over_method_and_path(merchant: Merchant,
                                              receiver: NotifyReceiver) -> None:
    order = merchant.order(receiver.url)
    merchant.post("/v1/orders", order)
    path = f"/v1/orders/{order['out_trade_no']}"
    body = merchant.verified(merchant.get(path))
    assert body["status"] == "WAIT_PAY"
    assert body["amount_fen"] == order["amount_fen"]
    assert body["payer_id"] is None
    replayed = merchant.get(path, signed_path="/v1/orders/someone-else")
    assert replayed.status_code == 403
    assert merchant.get("/v1/orders/never-made").status_code == 404


# --- checkout -------------------------------------------------------------------------


def test_checkout_page_shows_amount_subject_merchant_and_buttons(
        merchant: Merchant, receiver: NotifyReceiver) -> None:
    created = merchant.verified(merchant.post("/v1/orders", merchant.order(receiver.url, 1250)))
    page = requests.get(created["checkout_url"])
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    for text in ("¥12.50", "Bok choy 1.25 kg", "Stall 17 Greens", 'name="payer_id"',
                 'value="buyer-', 'id="pay"', 'id="cancel"'):
        assert text in page.text


def test_unknown_checkout_is_404_json(platform_url: str) -> None:
    response = requests.get(f"{platform_url}/checkout/ord_nope")
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_order"


def test_pay_once_then_409(merchant: Merchant, receiver: NotifyReceiver) -> None:
    order = merchant.order(receiver.url)
    created = merchant.verified(merchant.post("/v1/orders", order))
    paid = pay(merchant, created["order_id"])
    assert paid.status_code == 200
    assert paid.json()["status"] == "PAID"
    assert paid.json()["payer_id"] == "buyer-7a3f"
    assert paid.json()["channel_txn_id"].startswith("txn_")
    second = pay(merchant, created["order_id"], "buyer-other")
    assert second.status_code == 409
    assert second.json()["error"] == "already_paid"
    status = merchant.verified(merchant.get(f"/v1/orders/{order['out_trade_no']}"))
    assert status["status"] == "PAID"
    assert status["payer_id"] == "buyer-7a3f"
    assert status["channel_txn_id"] == paid.json()["channel_txn_id"]


def test_browser_pay_redirects_to_return_url_and_a_second_pay_changes_nothing(
        merchant: Merchant, receiver: NotifyReceiver) -> None:
    order = merchant.order(receiver.url)
    created = merchant.verified(merchant.post("/v1/orders", order))
    url = f"{merchant.base_url}/checkout/{created['order_id']}/pay"
    first = requests.post(url, data={"payer_id": "buyer-1"}, allow_redirects=False)
    assert first.status_code == 303
    assert first.headers["Location"] == order["return_url"]
    second = requests.post(url, data={"payer_id": "buyer-2"}, allow_redirects=False)
    assert second.status_code == 303
    status = merchant.verified(merchant.get(f"/v1/orders/{order['out_trade_no']}"))
    assert status["payer_id"] == "buyer-1"


def test_bad_payer_id_is_400(merchant: Merchant, receiver: NotifyReceiver) -> None:
    created = merchant.verified(merchant.post("/v1/orders", merchant.order(receiver.url)))
    response = pay(merchant, created["order_id"], "<script>")
    assert response.status_code == 400
    assert response.json()["error"] == "bad_payer_id"


def test_cancel_closes_and_a_closed_order_cannot_be_paid(
        merchant: Merchant, receiver: NotifyReceiver) -> None:
    order = merchant.order(receiver.url)
    created = merchant.verified(merchant.post("/v1/orders", order))
    cancelled = requests.post(f"{merchant.base_url}/checkout/{created['order_id']}/cancel",
                              allow_redirects=False)
    assert cancelled.status_code == 303
    assert cancelled.headers["Location"] == order["return_url"]
    refused = pay(merchant, created["order_id"])
    assert refused.status_code == 409
    assert refused.json()["error"] == "order_closed"
    html = requests.post(f"{merchant.base_url}/checkout/{created['order_id']}/pay",
                         data={"payer_id": "buyer-1"}, allow_redirects=False)
    assert html.status_code == 409
    assert "closed" in html.text
    status = merchant.verified(merchant.get(f"/v1/orders/{order['out_trade_no']}"))
    assert status["status"] == "CLOSED"


def test_close_by_api_and_a_paid_order_does_not_close(
        merchant: Merchant, receiver: NotifyReceiver) -> None:
    open_order = merchant.order(receiver.url)
    merchant.post("/v1/orders", open_order)
    closed = merchant.post(f"/v1/orders/{open_order['out_trade_no']}/close")
    assert closed.status_code == 200
    assert merchant.verified(closed)["status"] == "CLOSED"
    assert merchant.post(f"/v1/orders/{open_order['out_trade_no']}/close").status_code == 200
    paid_order = merchant.order(receiver.url)
    created = merchant.verified(merchant.post("/v1/orders", paid_order))
    pay(merchant, created["order_id"])
    refused = merchant.post(f"/v1/orders/{paid_order['out_trade_no']}/close")
    assert refused.status_code == 409
    assert refused.json()["error"] == "order_paid"
    assert merchant.post("/v1/orders/never-made/close").status_code == 404


def test_an_expired_order_is_closed_and_cannot_be_paid(
        merchant: Merchant, receiver: NotifyReceiver) -> None:
    expires = int(time.time() * 1000) + 300
    order = merchant.order(receiver.url, expires_at_ms=expires)
    created = merchant.verified(merchant.post("/v1/orders", order))
    assert created["expires_at_ms"] == expires
    wait_until(lambda: time.time() * 1000 > expires + 50)
    refused = pay(merchant, created["order_id"])
    assert refused.status_code == 409
    status = merchant.verified(merchant.get(f"/v1/orders/{order['out_trade_no']}"))
    assert status["status"] == "CLOSED"


# --- notifications --------------------------------------------------------------------


def _notifications(merchant: Merchant, out_trade_no: str) -> list[dict[str, Any]]:
    return requests.get(f"{merchant.base_url}/sandbox/notifications",
                        params={"out_trade_no": out_trade_no}).json()["notifications"]


def test_notification_is_retried_until_acknowledged_then_stops(
        merchant: Merchant, receiver: NotifyReceiver) -> None:
    order = merchant.order(receiver.url)
    created = merchant.verified(merchant.post("/v1/orders", order))
    paid = pay(merchant, created["order_id"]).json()
    delivered = wait_until(lambda: [n for n in _notifications(merchant, order["out_trade_no"])
                                    if n["status"] == "delivered"])
    assert len(delivered) == 1
    log = delivered[0]["attempt_log"]
    assert [a["http_status"] for a in log] == [500, 500, 200]
    assert delivered[0]["attempts"] == 3
    assert delivered[0]["next_attempt_at_ms"] is None
    # the schedule has two more delays left; none of them may be used once acknowledged
    time.sleep(1.0)
    deliveries = receiver.for_trade(order["out_trade_no"])
    assert len(deliveries) == 3
    headers, body = deliveries[-1]
    assert signing.verify(merchant.platform_key, body, headers["X-Signature"])
    notification = orjson.loads(body)
    assert notification == {
        "notify_id": delivered[0]["notify_id"], "order_id": created["order_id"],
        "out_trade_no": order["out_trade_no"], "status": "PAID",
        "amount_fen": order["amount_fen"], "currency": "CNY", "payer_id": "buyer-7a3f",
        "channel_txn_id": paid["channel_txn_id"], "paid_at_ms": paid["paid_at_ms"]}
    assert {h["X-Notify-Id"] for h, _ in deliveries} == {notification["notify_id"]}


def test_notification_gives_up_after_the_schedule(merchant: Merchant) -> None:
    with NotifyReceiver(fail_first=99) as refusing:
        order = merchant.order(refusing.url)
        created = merchant.verified(merchant.post("/v1/orders", order))
        pay(merchant, created["order_id"])
        given_up = wait_until(lambda: [n for n in _notifications(merchant, order["out_trade_no"])
                                       if n["status"] == "gave_up"])
        assert given_up[0]["attempts"] == len(SCHEDULE.split(","))
        assert len(refusing.for_trade(order["out_trade_no"])) == len(SCHEDULE.split(","))


def test_an_ack_other_than_success_is_retried(merchant: Merchant) -> None:
    answers = iter([("ok", 200), ("success", 200)])
    app = Flask("picky")
    app.post("/n")(lambda: next(answers))
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        order = merchant.order(f"http://127.0.0.1:{port}/n")
        created = merchant.verified(merchant.post("/v1/orders", order))
        pay(merchant, created["order_id"])
        done = wait_until(lambda: [n for n in _notifications(merchant, order["out_trade_no"])
                                   if n["status"] == "delivered"])
        assert [a["response_excerpt"] for a in done[0]["attempt_log"]] == ["ok", "success"]
    finally:
        server.shutdown()


def test_pending_notifications_survive_a_crash(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    notify_port = free_port()  # nobody listens yet: every attempt is refused
    platform = start_platform(data_dir, port, "--notify-schedule", "0,0.3,0.3,0.3,0.3,0.3,60")
    try:
        merchant = Merchant(f"http://127.0.0.1:{port}")
        merchant.register()
        order = merchant.order(f"http://127.0.0.1:{notify_port}/notify")
        created = merchant.verified(merchant.post("/v1/orders", order))
        pay(merchant, created["order_id"])
        wait_until(lambda: _notifications(merchant, order["out_trade_no"])[0]["attempts"] >= 1)
    finally:
        platform.kill()
    with NotifyReceiver(port=notify_port) as receiver:
        platform = start_platform(data_dir, port, "--notify-schedule",
                                  "0,0.3,0.3,0.3,0.3,0.3,60")
        try:
            delivered = wait_until(
                lambda: [n for n in _notifications(merchant, order["out_trade_no"])
                         if n["status"] == "delivered"])
        finally:
            platform.stop()
    assert delivered[0]["attempt_log"][-1]["http_status"] == 200
    assert len(receiver.for_trade(order["out_trade_no"])) == 1


def test_notifications_query_rejects_a_bad_limit(platform_url: str) -> None:
    response = requests.get(f"{platform_url}/sandbox/notifications", params={"limit": "x"})
    assert response.status_code == 400


# --- refunds and statements -----------------------------------------------------------


def _paid_order(merchant: Merchant, receiver: NotifyReceiver, amount_fen: int) -> dict[str, Any]:
    order = merchant.order(receiver.url, amount_fen)
    created = merchant.verified(merchant.post("/v1/orders", order))
    assert pay(merchant, created["order_id"]).status_code == 200
    return order


def test_partial_and_full_refunds_never_exceed_the_paid_amount(
        merchant: Merchant, receiver: NotifyReceiver) -> None:
    order = _paid_order(merchant, receiver, 1000)
    refund = {"out_trade_no": order["out_trade_no"], "out_refund_no": "R1", "amount_fen": 300,
              "reason": "bruised leaves"}
    first = merchant.post("/v1/refunds", refund)
    assert first.status_code == 201
    assert merchant.verified(first)["refunded_total_fen"] == 300
    again = merchant.post("/v1/refunds", refund)
    assert again.status_code == 200
    assert merchant.verified(again)["refund_id"] == merchant.verified(first)["refund_id"]
    conflict = merchant.post("/v1/refunds", {**refund, "amount_fen": 301})
    assert conflict.status_code == 409
    assert conflict.json()["error"] == "refund_conflict"
    too_much = merchant.post("/v1/refunds", {**refund, "out_refund_no": "R2", "amount_fen": 701})
    assert too_much.status_code == 409
    assert too_much.json()["error"] == "refund_exceeds_paid"
    rest = merchant.post("/v1/refunds", {**refund, "out_refund_no": "R3", "amount_fen": 700})
    assert merchant.verified(rest)["refunded_total_fen"] == 1000
    status = merchant.verified(merchant.get(f"/v1/orders/{order['out_trade_no']}"))
    assert (status["status"], status["refunded_fen"]) == ("REFUNDED", 1000)
    more = merchant.post("/v1/refunds", {**refund, "out_refund_no": "R4", "amount_fen": 1})
    assert more.status_code == 409


def test_refund_of_an_unpaid_or_unknown_order_is_refused(
        merchant: Merchant, receiver: NotifyReceiver) -> None:
    order = merchant.order(receiver.url)
    merchant.post("/v1/orders", order)
    unpaid = merchant.post("/v1/refunds", {"out_trade_no": order["out_trade_no"],
                                           "out_refund_no": "U1", "amount_fen": 1})
    assert (unpaid.status_code, unpaid.json()["error"]) == (409, "order_not_paid")
    unknown = merchant.post("/v1/refunds", {"out_trade_no": "nope", "out_refund_no": "U2",
                                            "amount_fen": 1})
    assert unknown.status_code == 404
    negative = merchant.post("/v1/refunds", {"out_trade_no": order["out_trade_no"],
                                             "out_refund_no": "U3", "amount_fen": -5})
    assert negative.status_code == 400


def test_daily_statement_lists_payments_and_refunds_with_fees(
        platform_url: str, receiver: NotifyReceiver) -> None:
    merchant = Merchant(platform_url)
    merchant.register()
    first = _paid_order(merchant, receiver, 250)     # fee 0.6% = 1.5 -> 2 fen (half up)
    second = _paid_order(merchant, receiver, 10000)  # fee 60 fen
    merchant.post("/v1/orders", merchant.order(receiver.url, 999))  # unpaid: not listed
    merchant.post("/v1/refunds", {"out_trade_no": second["out_trade_no"],
                                  "out_refund_no": "S1", "amount_fen": 10000})
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    response = merchant.get(f"/v1/statements/{day}")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert signing.verify(merchant.platform_key, response.content,
                          response.headers["X-Signature"])
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["kind"], r["out_trade_no"], int(r["amount_fen"]), int(r["fee_fen"]))
            for r in rows] == [("payment", first["out_trade_no"], 250, 2),
                               ("payment", second["out_trade_no"], 10000, 60),
                               ("refund", second["out_trade_no"], -10000, -60)]
    assert sum(int(r["net_fen"]) for r in rows) == 248
    as_json = merchant.get(f"/v1/statements/{day}", Accept="application/json")
    statement = merchant.verified(as_json)
    assert [line["out_trade_no"] for line in statement["lines"]] == [r["out_trade_no"]
                                                                     for r in rows]
    assert statement["totals"] == {"payments": 2, "refunds": 1, "amount_fen": 250,
                                   "fee_fen": 2, "net_fen": 248}
    empty = merchant.get("/v1/statements/2001-01-01")
    assert empty.text.strip().count("\n") == 0


@pytest.mark.parametrize("day", ["2026-13-01", "yesterday", "2026-1-1"])
def test_statement_day_must_be_a_date(merchant: Merchant, day: str) -> None:
    response = merchant.get(f"/v1/statements/{day}")
    assert response.status_code == 400
    assert response.json()["error"] == "bad_date"


def test_several_http_workers_share_one_notifier(tmp_path: Path) -> None:
    port = free_port()
    platform = start_platform(tmp_path / "data", port, "--workers", "2")
    try:
        with NotifyReceiver() as acking:
            merchant = Merchant(f"http://127.0.0.1:{port}")
            merchant.register()
            trades = []
            for _ in range(4):
                order = merchant.order(acking.url)
                created = merchant.verified(merchant.post("/v1/orders", order))
                assert pay(merchant, created["order_id"]).status_code == 200
                trades.append(order["out_trade_no"])
            for out_trade_no in trades:
                wait_until(lambda n=out_trade_no: _notifications(merchant, n)[0]["status"]
                           == "delivered")
            assert all(len(acking.for_trade(n)) == 1 for n in trades)
    finally:
        platform.stop()
