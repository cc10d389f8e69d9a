"""A JSON scan answered by the scan lane (no Flask) is byte for byte what the Flask view
answers, refusals included; a revoked terminal is refused at once on the lane too.

Each request is sent twice to the in-process app: once as the lane takes it, once with
``?format=json``, which the lane hands to Flask untouched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_gateway_support import (  # noqa: F401 - fixtures
    MANAGER,
    ServedGateway,
    pay_at_checkout,
    platform,
)

from aggregation_gateway.scan_lane import ScanLane

JSON = {"Accept": "application/json"}


class Counted:
    def __init__(self, gw: ServedGateway) -> None:
        self.gw = gw
        lane = gw.app.wsgi_app.app  # inside the trusted-proxy wrapper
        assert isinstance(lane, ScanLane)
        self.to_flask = 0
        inner = lane.flask_wsgi

        def counting(environ: dict[str, Any], start_response: Any) -> Any:
            self.to_flask += 1
            return inner(environ, start_response)

        lane.flask_wsgi = counting
        self.client = gw.app.test_client()

    def path(self, url: str) -> str:
        return url[len(self.gw.url):]

    def lane(self, url: str, **headers: str) -> Any:
        before = self.to_flask
        answer = self.client.get(self.path(url), headers={**JSON, **headers})
        assert self.to_flask == before, "the lane handed the scan to Flask"
        return answer

    def flask(self, url: str, **headers: str) -> Any:
        before = self.to_flask
        answer = self.client.get(self.path(url) + "?format=json", headers={**JSON, **headers})
        assert self.to_flask == before + 1
        return answer

    def both(self, url: str) -> tuple[Any, Any]:
        return self.lane(url), self.flask(url)


@pytest.fixture
def counted(tmp_path: Path, platform) -> Counted:  # noqa: F811
    with ServedGateway(tmp_path, platform.url) as served:
        yield Counted(served)


def _same(lane: Any, flask: Any) -> None:
    assert lane.status_code == flask.status_code
    assert lane.data == flask.data
    for header in ("Content-Type", "Content-Length", "X-Content-Type-Options"):
        assert lane.headers.get(header) == flask.headers.get(header), header


def test_a_new_scan_and_its_repeat(counted: Counted) -> None:
    terminal = counted.gw.terminal()
    url, _ = terminal.charge()
    first = counted.lane(url)
    assert first.status_code == 200, first.data
    assert first.get_json()["status"] == "pending"
    lane, flask = counted.both(url)
    assert lane.get_json()["payment_id"] == first.get_json()["payment_id"]
    _same(lane, flask)


def test_refusals_are_the_same(counted: Counted) -> None:
    terminal = counted.gw.terminal()
    forged, _ = terminal.charge(key=b"\x01" * 32)
    expired, _ = terminal.charge(issued_at=1_700_000_000)
    future, _ = terminal.charge(issued_at=4_000_000_000)
    cases = [(f"{counted.gw.url}/q/AAAA", 400, "malformed_token"),
             (forged, 403, "bad_mac"), (expired, 410, "qr_expired"),
             (future, 400, "bad_issue_time")]
    for url, status, code in cases:
        lane, flask = counted.both(url)
        assert lane.status_code == status and lane.get_json()["error"] == code, url
        _same(lane, flask)
    assert counted.gw.gateway.db.conn.execute("SELECT COUNT(*) FROM payments"
                                              ).fetchone()[0] == 0


def test_a_paid_code_and_a_revoked_terminal(counted: Counted) -> None:
    terminal = counted.gw.terminal()
    url, _ = terminal.charge()
    payment = counted.lane(url).get_json()
    assert pay_at_checkout(payment["checkout_url"]).status_code in (302, 303)
    counted.gw.wait_status(payment["payment_id"], "paid")
    lane, flask = counted.both(url)
    assert lane.status_code == 409 and lane.get_json() == {
        "error": "already_paid", "message": "this order has already been paid",
        "payment_id": payment["payment_id"]}
    _same(lane, flask)
    fresh, _ = terminal.charge()
    assert counted.gw.http.post(f"{counted.gw.url}/v1/devices/{terminal.device_id}/revoke",
                                auth=MANAGER).status_code == 200
    lane, flask = counted.both(fresh)  # refused at once, with no restart or cache expiry
    assert lane.status_code == 403 and lane.get_json()["error"] == "device_revoked"
    _same(lane, flask)


def test_rate_limit_is_one_bucket_for_both(tmp_path: Path, platform) -> None:  # noqa: F811
    with ServedGateway(tmp_path, platform.url, scan_limit_per_token="1/hour") as served:
        counted = Counted(served)
        terminal = served.terminal()
        url, _ = terminal.charge()
        assert counted.lane(url).status_code == 200  # the one scan this code may have
        lane, flask = counted.both(url)
        assert lane.status_code == 429 and lane.get_json()["error"] == "rate_limited"
        assert int(lane.headers["Retry-After"]) == lane.get_json()["retry_after_s"] > 0
        _same(lane, flask)


def test_what_the_lane_does_not_take_goes_to_flask(counted: Counted) -> None:
    terminal = counted.gw.terminal()
    url, _ = terminal.charge()
    before = counted.to_flask
    page = counted.client.get(counted.path(url), headers={"Accept": "text/html"})
    assert page.status_code == 200 and b"<html" in page.data.lower()
    chosen = counted.client.get(counted.path(url) + "?channel=sandbox", headers=JSON)
    assert chosen.status_code == 200
    assert counted.client.get("/q/a/b", headers=JSON).status_code == 404
    assert counted.to_flask == before + 3
    assert counted.lane(url).get_json()["payment_id"] == chosen.get_json()["payment_id"]
