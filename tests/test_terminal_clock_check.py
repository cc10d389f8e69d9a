"""The terminal's clock against the real gateway's: measured over HTTP, a warning past a
minute, no QR past the limit (cash still sold), nothing refused while nothing is known."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from test_gateway_support import ServedGateway

from pos_terminal.cart import Cart
from pos_terminal.catalogue import DEFAULT_PRODUCTS
from pos_terminal.clock_check import ClockCheck, classify, measure_offset_s
from pos_terminal.tender import settle
from pos_terminal.terminal import Terminal, TerminalError
from pos_terminal.testing import enrol_offline
from pos_terminal.ui.messages import clock_notice, service_notice
from service_base.testing import free_port


@pytest.fixture
def gateway(tmp_path: Path):
    with ServedGateway(tmp_path, "") as served:
        yield served


@pytest.mark.parametrize(("offset", "state"), [
    (None, "unknown"), (0.0, "ok"), (59.0, "ok"), (-61.0, "warn"), (150.0, "warn"),
    (181.0, "refuse"), (-900.0, "refuse")])
def test_offsets_are_classified(offset, state) -> None:
    assert classify(offset) == state


def test_the_offset_is_measured_against_the_gateway(gateway: ServedGateway) -> None:
    right = measure_offset_s(gateway.url)
    assert right is not None and abs(right) < 2
    behind = measure_offset_s(gateway.url, clock=lambda: time.time() - 200)
    assert behind is not None and 198 < behind < 202
    assert measure_offset_s(f"http://127.0.0.1:{free_port()}") is None


def _terminal(tmp_path: Path, gateway_url: str) -> Terminal:
    enrol_offline(tmp_path / "t", "T-CLOCK-1", gateway_url=gateway_url)
    return Terminal.open(tmp_path / "t")


def _cart() -> Cart:
    cart = Cart()
    cart.add(DEFAULT_PRODUCTS[9], quantity=2)
    return cart


def test_a_clock_far_off_refuses_qr_codes_but_not_cash(gateway: ServedGateway,
                                                        tmp_path: Path) -> None:
    with _terminal(tmp_path, gateway.url) as term:
        assert term.charge(_cart(), render_png=False).qr_url  # unknown: nothing refused
        term.clock_check = ClockCheck(gateway.url, clock=lambda: time.time() + 400)
        status = term.clock_check.measure()
        assert status.state == "refuse" and status.offset_s < -390
        with pytest.raises(TerminalError, match="ahead of the gateway's") as refused:
            term.charge(_cart(), render_png=False)
        notice = service_notice("charge_failed", refused.value)
        assert notice.key == "clock_refuse" and notice.error
        cart = _cart()
        cash = term.charge(cart, render_png=False,
                           tender=settle(cart.total_fen, all_cash=True,
                                         received_fen=cart.total_fen))
        assert cash.qr_url == "" and term.sale(cash.sale_id).payment_status == "paid"


def test_a_clock_a_little_off_is_a_standing_warning(gateway: ServedGateway,
                                                    tmp_path: Path) -> None:
    check = ClockCheck(gateway.url, clock=lambda: time.time() - 90)
    status = check.measure()
    assert status.state == "warn" and "behind" in status.message
    notice = clock_notice(status)
    assert notice is not None and not notice.error
    assert notice.render("zh").startswith("终端时钟与网关相差 9")
    assert "set the clock" in notice.render("en")
    # The gateway going away keeps the last measurement rather than forgetting it.
    check.gateway_url = f"http://127.0.0.1:{free_port()}"
    assert check.measure().state == "warn"
    assert clock_notice(ClockCheck(gateway.url).status()) is None
