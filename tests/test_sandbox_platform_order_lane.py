"""``POST /v1/orders`` answered by the order lane (no Flask) is byte for byte what the
Flask view answers: every refusal, the idempotent repeat, the signature on each.

The same request is sent twice to the in-process app: once as the lane takes it, once with
a (signed) query string, which the lane hands to Flask untouched.
"""

from __future__ import annotations

import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from market_protocol import canonical_json, signing
from sandbox_platform.app import create_app
from sandbox_platform.order_lane import OrderLane


class Lanes:
    def __init__(self, tmp_path: Path) -> None:
        self.app = create_app({"data_dir": str(tmp_path / "platform")})
        assert isinstance(self.app.wsgi_app, OrderLane)
        self.to_flask = 0
        inner = self.app.wsgi_app.flask_wsgi

        def counting(environ: dict[str, Any], start_response: Any) -> Any:
            self.to_flask += 1
            return inner(environ, start_response)

        self.app.wsgi_app.flask_wsgi = counting
        self.client = self.app.test_client()
        self.key = Ed25519PrivateKey.generate()
        self.app_id = f"app-{uuid.uuid4().hex[:8]}"
        registered = self.client.post("/sandbox/apps", json={
            "app_id": self.app_id, "public_key_pem": signing.public_key_pem(self.key)})
        assert registered.status_code == 201
        self.platform_key = signing.load_public_key(
            registered.get_json()["platform_public_key_pem"])
        self.to_flask = 0

    def headers(self, target: str, body: bytes, **change: Any) -> dict[str, str]:
        stamp = str(change.pop("timestamp", int(time.time() * 1000)))
        nonce = change.pop("nonce", secrets.token_urlsafe(18))
        key = change.pop("key", self.key)
        message = f"POST\n{target}\n{stamp}\n{nonce}\n".encode() + body
        headers = {"X-App-Id": change.pop("app_id", self.app_id), "X-Timestamp": stamp,
                   "X-Nonce": nonce, "X-Signature": signing.sign(key, message),
                   "Content-Type": "application/json", "Content-Length": str(len(body))}
        for name in change.pop("drop", ()):
            headers.pop(name)
        assert not change
        return headers

    def both(self, body: bytes, **change: Any) -> tuple[Any, Any]:
        """(lane answer, Flask answer) to the same request."""
        before = self.to_flask
        lane = self.client.post("/v1/orders", data=body,
                                headers=self.headers("/v1/orders", body, **dict(change)))
        assert self.to_flask == before, "the lane handed the request to Flask"
        flask = self.client.post("/v1/orders?via=flask", data=body,
                                 headers=self.headers("/v1/orders?via=flask", body,
                                                      **dict(change)))
        assert self.to_flask == before + 1
        return lane, flask


@pytest.fixture
def lanes(tmp_path: Path) -> Lanes:
    return Lanes(tmp_path)


def _order(**extra: Any) -> dict[str, Any]:
    return {"out_trade_no": f"T{uuid.uuid4().hex[:12]}", "amount_fen": 1250,
            "currency": "CNY", "subject": "Bok choy 1.25 kg",
            "notify_url": "http://127.0.0.1:9/notify", "return_url": "http://127.0.0.1:9/r",
            **extra}


def _same(lane: Any, flask: Any, lanes: Lanes) -> None:
    assert lane.status_code == flask.status_code
    assert lane.data == flask.data
    assert lane.headers["Content-Type"] == flask.headers["Content-Type"]
    assert lane.headers["Content-Length"] == flask.headers["Content-Length"]
    assert lane.headers["X-Signature"] == flask.headers["X-Signature"]
    assert signing.verify(lanes.platform_key, lane.data, lane.headers["X-Signature"])


def test_a_new_order_and_its_repeat(lanes: Lanes) -> None:
    order = _order()
    body = canonical_json.dumps(order)
    created = lanes.client.post("/v1/orders", data=body,
                                headers=lanes.headers("/v1/orders", body))
    assert created.status_code == 201 and lanes.to_flask == 0
    view = created.get_json()
    assert view["out_trade_no"] == order["out_trade_no"] and view["status"] == "WAIT_PAY"
    assert view["checkout_url"] == f"http://localhost/checkout/{view['order_id']}"
    assert signing.verify(lanes.platform_key, created.data, created.headers["X-Signature"])
    lane, flask = lanes.both(body)  # the same order again: 200, the same order
    assert lane.status_code == 200 and lane.get_json() == view
    _same(lane, flask, lanes)


def test_an_order_created_by_flask_is_found_by_the_lane(lanes: Lanes) -> None:
    body = canonical_json.dumps(_order())
    flask = lanes.client.post("/v1/orders?x=1", data=body,
                              headers=lanes.headers("/v1/orders?x=1", body))
    lane = lanes.client.post("/v1/orders", data=body,
                             headers=lanes.headers("/v1/orders", body))
    assert (flask.status_code, lane.status_code) == (201, 200)
    assert lane.get_json() == flask.get_json()


@pytest.mark.parametrize(("body", "change", "status", "code"), [
    (b"", {}, 400, "malformed_json"),
    (b"{not json", {}, 400, "malformed_json"),
    (b"[1]", {}, 400, "invalid_request"),
    (canonical_json.dumps(_order(amount_fen=0)), {}, 400, "invalid_request"),
    (canonical_json.dumps(_order(notify_url="http://example.com/n")), {}, 400,
     "invalid_request"),
    (b"{}", {"drop": ["X-Signature"]}, 401, "missing_signature"),
    (b"{}", {"drop": ["X-Timestamp"]}, 401, "missing_signature"),
    (b"{}", {"nonce": "short"}, 401, "bad_nonce"),
    (b"{}", {"timestamp": "12x"}, 401, "bad_timestamp"),
    (b"{}", {"timestamp": 1}, 401, "stale_timestamp"),
    (b"{}", {"app_id": "nobody"}, 401, "unknown_app"),
    (b"{}", {"key": Ed25519PrivateKey.generate()}, 403, "bad_signature"),
])
def test_refusals_are_the_same(lanes: Lanes, body: bytes, change: dict[str, Any],
                               status: int, code: str) -> None:
    lane, flask = lanes.both(body, **change)
    assert lane.status_code == status and lane.get_json()["error"] == code
    _same(lane, flask, lanes)


def test_a_past_expiry_is_refused_the_same_way(lanes: Lanes) -> None:
    lane, flask = lanes.both(canonical_json.dumps(_order(expires_at_ms=1)))
    assert lane.status_code == flask.status_code == 400
    assert lane.get_json()["field"] == flask.get_json()["field"] == "$.expires_at_ms"
    # The message names the platform's clock, so only the shape can be the same.
    assert lane.get_json().keys() == flask.get_json().keys()
    assert signing.verify(lanes.platform_key, lane.data, lane.headers["X-Signature"])


def test_a_conflicting_order_and_a_replayed_nonce_are_the_same(lanes: Lanes) -> None:
    order = _order()
    first = canonical_json.dumps(order)
    lanes.client.post("/v1/orders", data=first, headers=lanes.headers("/v1/orders", first))
    other = canonical_json.dumps({**order, "amount_fen": 99})
    lane, flask = lanes.both(other)
    assert lane.status_code == 409 and lane.get_json()["error"] == "order_conflict"
    _same(lane, flask, lanes)
    fresh = canonical_json.dumps(_order())
    headers = lanes.headers("/v1/orders", fresh)
    assert lanes.client.post("/v1/orders", data=fresh, headers=headers).status_code == 201
    replay = lanes.client.post("/v1/orders", data=fresh, headers=headers)
    assert replay.status_code == 401 and replay.get_json()["error"] == "replayed_nonce"
    assert signing.verify(lanes.platform_key, replay.data, replay.headers["X-Signature"])


def test_what_the_lane_does_not_take_goes_to_flask(lanes: Lanes) -> None:
    body = canonical_json.dumps(_order())
    assert lanes.client.get("/v1/orders").status_code == 405
    too_big = b"{" + b" " * (64 * 1024) + b"}"
    assert lanes.client.post("/v1/orders", data=too_big, headers=lanes.headers(
        "/v1/orders", too_big)).status_code == 413
    assert lanes.to_flask == 2
    assert lanes.client.post("/v1/orders", data=body, headers=lanes.headers(
        "/v1/orders", body)).status_code == 201
    assert lanes.to_flask == 2
