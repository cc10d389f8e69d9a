"""The scan landing checks the code before it looks at channels: a forged, expired or
replayed QR gets its own refusal even when no payment channel is available."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from test_gateway_support import ServedGateway


@pytest.fixture
def no_channels(tmp_path: Path) -> ServedGateway:
    with ServedGateway(tmp_path, "") as served:
        assert not served.gateway.channels
        yield served


def test_forged_token_is_bad_mac_even_without_channels(no_channels: ServedGateway) -> None:
    terminal = no_channels.terminal()
    url, _ = terminal.charge(key=b"\x01" * 32)
    for headers in ({"Accept": "application/json"}, {"Accept": "text/html"},
                    {"Accept": "application/json", "User-Agent": "AlipayClient/10"}):
        answer = no_channels.http.get(url, headers=headers)
        assert answer.status_code == 403, answer.text
        assert "bad_mac" in answer.text
    answer = no_channels.http.get(url + "?channel=nope",
                                  headers={"Accept": "application/json"})
    assert answer.status_code == 403 and answer.json()["error"] == "bad_mac"


def test_expired_and_malformed_codes_are_refused_before_channels(
        no_channels: ServedGateway) -> None:
    terminal = no_channels.terminal()
    url, _ = terminal.charge(issued_at=int(time.time()) - 3600)
    assert no_channels.scan(url).json()["error"] == "qr_expired"
    assert no_channels.scan(f"{no_channels.url}/q/not-a-token").json()["error"] == \
        "malformed_token"


def test_genuine_code_without_channels_is_unavailable(no_channels: ServedGateway) -> None:
    url, _ = no_channels.terminal().charge()
    answer = no_channels.scan(url)
    assert answer.status_code == 503 and answer.json()["error"] == "channel_unavailable"
