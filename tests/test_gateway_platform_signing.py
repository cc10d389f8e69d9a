"""The gateway's requests to the real sandbox platform are signed so that a captured one
can be neither sent again nor moved to another order (docs/protocol.md section 5)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_gateway_support import ServedGateway, platform  # noqa: F401 - fixtures

from aggregation_gateway.channels.base import ChannelError, HttpRequest
from aggregation_gateway.channels.http_transport import KeepAliveTransport


class Recording:
    """Passes every request through to the real transport and keeps a copy."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.requests: list[HttpRequest] = []

    def __call__(self, req: HttpRequest) -> Any:
        self.requests.append(req)
        return self.inner(req)


@pytest.fixture
def gw(tmp_path: Path, platform) -> ServedGateway:  # noqa: F811
    with ServedGateway(tmp_path, platform.url) as served:
        yield served


def _two_orders(gw: ServedGateway) -> tuple[dict, dict]:
    terminal = gw.terminal()
    return gw.scan(terminal.charge()[0]).json(), gw.scan(terminal.charge()[0]).json()


def test_every_request_carries_a_fresh_timestamp_and_nonce(gw: ServedGateway) -> None:
    channel = gw.gateway.channels["sandbox"]
    channel.transport = recording = Recording(channel.transport)
    first, second = _two_orders(gw)
    channel.query_order(first["payment_id"])
    channel.close_order(second["payment_id"])
    assert len(recording.requests) == 4
    nonces = {req.headers["X-Nonce"] for req in recording.requests}
    assert len(nonces) == 4
    now_ms = time.time() * 1000
    for req in recording.requests:
        assert abs(int(req.headers["X-Timestamp"]) - now_ms) < 60_000
        assert req.headers["X-App-Id"] == gw.settings["platform_app_id"]


def test_captured_close_cannot_be_replayed_or_moved(gw: ServedGateway) -> None:
    channel = gw.gateway.channels["sandbox"]
    channel.transport = recording = Recording(channel.transport)
    first, second = _two_orders(gw)
    channel.close_order(first["payment_id"])
    captured = recording.requests[-1]
    assert captured.url.endswith(f"/v1/orders/{first['payment_id']}/close")
    wire = KeepAliveTransport()
    again = wire(captured)
    assert again.status == 401
    assert orjson.loads(again.body)["error"] == "replayed_nonce"
    moved = wire(dataclasses.replace(
        captured, url=captured.url.replace(first["payment_id"], second["payment_id"])))
    assert moved.status == 403
    assert orjson.loads(moved.body)["error"] == "bad_signature"
    assert channel.query_order(second["payment_id"]).status == "pending"
    assert channel.query_order(first["payment_id"]).status == "closed"


def test_captured_order_creation_cannot_be_replayed(gw: ServedGateway) -> None:
    channel = gw.gateway.channels["sandbox"]
    channel.transport = recording = Recording(channel.transport)
    _two_orders(gw)
    create = next(req for req in recording.requests if req.url.endswith("/v1/orders"))
    answer = KeepAliveTransport()(create)
    assert answer.status == 401 and orjson.loads(answer.body)["error"] == "replayed_nonce"


def test_gateway_with_a_wrong_clock_is_told_why(gw: ServedGateway) -> None:
    channel = gw.gateway.channels["sandbox"]
    first, _ = _two_orders(gw)
    channel.clock = lambda: time.time() - 3600
    with pytest.raises(ChannelError) as refused:
        channel.query_order(first["payment_id"])
    assert refused.value.code == "stale_timestamp"


class SentTwice:
    """A connection that dies after the platform took the request: the transport's retry
    sends the same bytes again, and only the second answer comes back."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.answers: list[int] = []

    def __call__(self, req: HttpRequest) -> Any:
        if not self.answers:
            self.inner(req)
        answer = self.inner(req)
        self.answers.append(answer.status)
        return answer


def test_a_resent_request_is_asked_again_under_a_fresh_nonce(gw: ServedGateway) -> None:
    channel = gw.gateway.channels["sandbox"]
    first, _ = _two_orders(gw)
    channel.transport = twice = SentTwice(channel.transport)
    assert channel.query_order(first["payment_id"]).status == "pending"
    assert twice.answers == [401, 200]  # the replay was refused, the fresh request answered
