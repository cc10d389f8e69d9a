"""Device ids of every length against the EMV payload's 99-character values.

The token (template 27) embeds the device id, so an id past a limit that depends on the
gateway's address cannot be encoded. The gateway refuses to enrol such an id, and a
terminal whose code cannot be built keeps no sale (before, the sale was committed and
then the QR failed, leaving an unpaid sale in the books)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_gateway_support import MANAGER, ServedGateway

from market_protocol import derive_device_key, encode_token, new_nonce, verify_token
from market_protocol.emvco import (
    EmvError,
    max_device_id_length,
    merchant_payload,
    read_merchant_payload,
)
from market_protocol.qr_token import QRPayload
from pos_terminal import DEFAULT_PRODUCTS, Cart, Terminal, TerminalError
from pos_terminal.provisioning import update_config
from pos_terminal.testing import TEST_MASTER_KEY, enrol_offline

URLS = ["http://127.0.0.1:8200", "https://pay.example.cn",
        "https://pay.a-very-long-market-group-name.example.com.cn:8443"]


def _payload(gateway_url: str, device_id: str) -> str:
    key = derive_device_key(TEST_MASTER_KEY, device_id, 1)
    token = encode_token(QRPayload(device_id, 1, 7, 1250, "CNY", 1_765_000_000,
                                   new_nonce()), key, gateway_url)
    return merchant_payload(gateway_url=gateway_url, device_id=device_id, token=token,
                            amount_fen=1250, currency="CNY", order_no=7,
                            merchant_name="Li", merchant_city="Shanghai")


@pytest.mark.parametrize("gateway_url", URLS)
def test_every_length_encodes_exactly_up_to_the_limit(gateway_url: str) -> None:
    limit = max_device_id_length(gateway_url)
    assert 8 <= limit < 32
    for length in range(1, 33):
        device_id = "d" * length
        if length <= limit:
            sale = read_merchant_payload(_payload(gateway_url, device_id))
            assert sale.device_id == device_id
            key = derive_device_key(TEST_MASTER_KEY, device_id, 1)
            assert verify_token(sale.token, key, gateway_url).device_id == device_id
        else:
            with pytest.raises(EmvError, match="exceeds 99"):
                _payload(gateway_url, device_id)


def test_the_gateway_refuses_ids_its_codes_cannot_carry(tmp_path: Path) -> None:
    with ServedGateway(tmp_path, "") as gw:
        limit = max_device_id_length(gw.settings["public_url"])
        for length, status in ((limit, 201), (limit + 1, 400), (32, 400)):
            answer = gw.http.post(f"{gw.url}/v1/devices", auth=MANAGER, json={
                "merchant_id": "stall-1", "merchant_name": "Li", "org": "retail_market",
                "device_id": "d" * length})
            assert answer.status_code == status, (length, answer.text)
            if status == 400:
                assert answer.json()["error"] == "device_id_too_long"
                assert str(limit) in answer.json()["message"]


@pytest.mark.parametrize("public_url", URLS)
def test_the_gateways_own_ids_always_fit(tmp_path: Path, public_url: str) -> None:
    with ServedGateway(tmp_path, "", public_url=public_url) as gw:
        made_up = gw.enrol()["device_id"]
        assert len(made_up) <= max_device_id_length(public_url)
        _payload(public_url, made_up)  # encodes


def _emv_terminal(tmp_path: Path, device_id: str, gateway_url: str) -> Terminal:
    enrol_offline(tmp_path, device_id, gateway_url=gateway_url)
    update_config(tmp_path, qr_format="emv")
    return Terminal.open(tmp_path)


def test_a_terminal_keeps_no_sale_whose_code_cannot_be_made(tmp_path: Path) -> None:
    url = URLS[0]
    limit = max_device_id_length(url)
    cart = Cart()
    cart.add(DEFAULT_PRODUCTS[0], weight_g=1000)
    with _emv_terminal(tmp_path / "long", "d" * (limit + 1), url) as term:
        with pytest.raises(TerminalError, match="not kept"):
            term.charge(cart)
        assert term.outbox_counts() == {"queued": 0, "sent": 0}
        assert term.outbox.next_seq() == 1  # no gap, no unpaid sale in the books
    with _emv_terminal(tmp_path / "fits", "d" * limit, url) as term:
        charged = term.charge(cart)
        assert read_merchant_payload(charged.qr_text).device_id == "d" * limit
        assert term.outbox_counts()["queued"] == 1
