"""The dynamic QR token: round trip, MAC binding, refusal of every kind of tampering."""

from __future__ import annotations

import base64

import pytest
import qrcode
from qrcode.constants import ERROR_CORRECT_M

from market_protocol import (
    QRPayload,
    QRTokenError,
    decode_token,
    derive_device_key,
    encode_token,
    qr_url,
    split_qr_url,
    verify_token,
)

MASTER = bytes(range(32))
GATEWAY = "https://pay.market.example:8443"
PAYLOAD = QRPayload(device_id="stall-0042", key_version=1, order_no=1234, amount_fen=2350,
                    currency="CNY", issued_at=1_790_000_000, nonce=bytes.fromhex("0011223344556677"))


def device_key(device_id: str = "stall-0042", version: int = 1) -> bytes:
    return derive_device_key(MASTER, device_id, version)


def test_device_key_is_the_documented_hmac():
    # HMAC-SHA256(master, "tracepay-device-key/1|stall-0042|1"), computed independently.
    import hashlib
    import hmac

    expected = hmac.new(MASTER, b"tracepay-device-key/1|stall-0042|1", hashlib.sha256).digest()
    assert device_key() == expected
    assert device_key(version=2) != expected
    assert device_key("stall-0043") != expected


def test_round_trip_gives_back_every_field():
    token = encode_token(PAYLOAD, device_key(), GATEWAY)
    assert verify_token(token, device_key(), GATEWAY) == PAYLOAD


def test_wire_layout_is_stable():
    token = encode_token(PAYLOAD, device_key(), GATEWAY)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert raw[0] == 1  # version
    assert raw[1] == 1  # key version
    assert int.from_bytes(raw[2:6], "big") == 2350
    assert int.from_bytes(raw[6:8], "big") == 156  # CNY
    assert int.from_bytes(raw[8:12], "big") == 1234
    assert raw[-16 - len(b"stall-0042"):-16] == b"stall-0042"
    assert len(raw) == 25 + len("stall-0042") + 16


def test_url_fits_a_version_10_qr_at_level_m():
    url = qr_url(GATEWAY, encode_token(PAYLOAD, device_key(), GATEWAY))
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M)
    code.add_data(url)
    code.make(fit=True)
    assert code.version <= 10
    assert split_qr_url(url) == (GATEWAY, url.rsplit("/", 1)[1])


@pytest.mark.parametrize("position", [0, 5, 20, 35, -1])
def test_any_flipped_byte_is_refused(position: int):
    token = encode_token(PAYLOAD, device_key(), GATEWAY)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[position] ^= 0x01
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(QRTokenError):
        verify_token(forged, device_key(), GATEWAY)


def test_token_is_bound_to_its_gateway_and_key():
    token = encode_token(PAYLOAD, device_key(), GATEWAY)
    with pytest.raises(QRTokenError) as other_gateway:
        verify_token(token, device_key(), "https://evil.example")
    assert other_gateway.value.code == "bad_mac"
    with pytest.raises(QRTokenError):
        verify_token(token, device_key(version=2), GATEWAY)


@pytest.mark.parametrize("token", ["", "short", "!" * 60, "A" * 300, "AAAA" * 15])
def test_malformed_tokens_are_refused_with_a_code(token: str):
    with pytest.raises(QRTokenError) as error:
        decode_token(token)
    assert error.value.code in {"malformed_token", "unsupported_version"}


def test_encoding_refuses_nonsense():
    with pytest.raises(ValueError):
        encode_token(QRPayload("bad id!", 1, 1, 100, "CNY", 0, bytes(8)), device_key(), GATEWAY)
    with pytest.raises(ValueError):
        encode_token(QRPayload("stall-1", 1, 1, 0, "CNY", 0, bytes(8)), device_key(), GATEWAY)
    with pytest.raises(ValueError):
        encode_token(QRPayload("stall-1", 1, 1, 100, "XXX", 0, bytes(8)), device_key(), GATEWAY)
