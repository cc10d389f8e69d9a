"""EMVCo merchant-presented QR: checked by a parser written here, apart from the encoder.

The independent parser below walks the payload with its own code and checks the CRC with
the standard library's ``binascii.crc_hqx`` (CRC-CCITT), so an encoder bug cannot hide
behind a decoder sharing it.
"""

from __future__ import annotations

import binascii

import pytest

from market_protocol import derive_device_key, verify_token
from market_protocol.emvco import (
    EmvError,
    crc16_ccitt,
    decode_payload,
    encode_payload,
    merchant_payload,
    read_merchant_payload,
    tlv,
)
from pos_terminal import DEFAULT_PRODUCTS, Cart, Terminal
from pos_terminal.provisioning import update_config
from pos_terminal.qr_image import qr_matrix
from pos_terminal.testing import TEST_MASTER_KEY, enrol_offline

TEMPLATES = {str(n) for n in range(26, 52)} | {"62", "64"}


def independent_parse(payload: str) -> dict:
    """Reads ID/LEN/VALUE triples; nested for templates. Checks the CRC with crc_hqx."""
    assert payload[-8:-4] == "6304", "CRC object must be last"
    crc = binascii.crc_hqx(payload[:-4].encode("utf-8"), 0xFFFF)
    assert payload[-4:] == format(crc, "04X"), "CRC does not match"

    def walk(text):
        out, i = {}, 0
        while i < len(text):
            tag, size = text[i:i + 2], int(text[i + 2:i + 4])
            value = text[i + 4:i + 4 + size]
            assert len(value) == size
            out[tag] = walk(value) if tag in TEMPLATES else value
            i += 4 + size
        return out

    return walk(payload)


@pytest.mark.parametrize("data, crc", [
    (b"123456789", 0x29B1),
    (b"", 0xFFFF),
    (b"A", 0xB915),
])
def test_crc_known_answers(data, crc):
    assert crc16_ccitt(data) == crc
    assert binascii.crc_hqx(data, 0xFFFF) == crc


def test_published_example_payload_crc():
    # Shaped like the EMV MPM specification's example, with a Chinese language template:
    # both CRC implementations agree over multi-byte UTF-8, and the decoder reads it.
    body = ("00020101021229300012D156000000000510A93FO3230Q31280012D1560000000"
            "1030812345678520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104"
            "最佳运输0202北京540523.7253031565502016233030412340603***0708A60086670902ME"
            "91320016A0112233449988770708123456786304")
    assert f"{crc16_ccitt(body.encode('utf-8')):04X}" == \
        format(binascii.crc_hqx(body.encode("utf-8"), 0xFFFF), "04X")
    decoded = decode_payload(body + f"{crc16_ccitt(body.encode('utf-8')):04X}")
    assert decoded["59"] == "BEST TRANSPORT" and decoded["64"]["01"] == "最佳运输"


def sample(**changes):
    fields = dict(gateway_url="http://127.0.0.1:8000/", device_id="T-EMV-1",
                  token="AQEAAAQuAJwAAAABawGT6UY2NSvehz9ZCFQtVEVTVC0xIAolaMV6LZUUFARTySMfFg",
                  amount_fen=1070, currency="CNY", order_no=42, merchant_name="Wang Veg",
                  merchant_city="Shanghai", name_zh="王家蔬菜", city_zh="上海")
    fields.update(changes)
    return merchant_payload(**fields)


def test_payload_decodes_in_the_independent_parser():
    parsed = independent_parse(sample())
    assert list(parsed)[0] == "00" and list(parsed)[-1] == "63"
    assert parsed["00"] == "01" and parsed["01"] == "12"
    assert parsed["26"] == {"00": "cn.tracepay", "01": "http://127.0.0.1:8000",
                            "02": "T-EMV-1"}
    assert parsed["27"]["01"].startswith("AQEAAAQu")
    assert (parsed["52"], parsed["53"], parsed["54"], parsed["58"]) == \
        ("5411", "156", "10.70", "CN")
    assert (parsed["59"], parsed["60"]) == ("Wang Veg", "Shanghai")
    assert parsed["62"] == {"05": "42", "07": "T-EMV-1"}
    assert parsed["64"] == {"00": "ZH", "01": "王家蔬菜", "02": "上海"}


@pytest.mark.parametrize("fen, text", [(1, "0.01"), (100, "1.00"), (123456, "1234.56")])
def test_amounts_are_exact(fen, text):
    assert independent_parse(sample(amount_fen=fen))["54"] == text
    assert read_merchant_payload(sample(amount_fen=fen)).amount_fen == fen


def test_round_trip_and_url():
    sale = read_merchant_payload(sample())
    assert sale.order_no == 42 and sale.currency == "CNY" and sale.device_id == "T-EMV-1"
    assert sale.qr_url == ("http://127.0.0.1:8000/q/"
                           "AQEAAAQuAJwAAAABawGT6UY2NSvehz9ZCFQtVEVTVC0xIAolaMV6LZUUFARTySMfFg")
    assert (sale.merchant_name, sale.merchant_city, sale.mcc) == ("Wang Veg", "Shanghai", "5411")


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p[:-4] + "0000", "CRC mismatch"),
    (lambda p: p.replace("5411", "5412"), "CRC mismatch"),
    (lambda p: p[:-8], "does not end with the CRC"),
    (lambda p: "short", "too short"),
])
def test_damaged_payloads_are_refused(mutate, message):
    with pytest.raises(EmvError, match=message):
        decode_payload(mutate(sample()))


def test_structural_errors_are_named():
    bad_first = encode_payload([("01", "12"), ("00", "01")])
    with pytest.raises(EmvError, match="first data object must be 00"):
        decode_payload(bad_first)
    repeated = encode_payload([("00", "01"), ("59", "A"), ("59", "B")])
    with pytest.raises(EmvError, match="tag 59 appears twice"):
        decode_payload(repeated)
    overrun = "000201" + "5920AB" + "6304"
    overrun += f"{crc16_ccitt(overrun.encode()):04X}"
    with pytest.raises(EmvError, match="tag 59 says 20"):
        decode_payload(overrun)
    not_ours = encode_payload([("00", "01"), ("01", "12"), ("26", [("00", "com.other")])])
    with pytest.raises(EmvError, match="does not name cn.tracepay"):
        read_merchant_payload(not_ours)


@pytest.mark.parametrize("kwargs, message", [
    ({"merchant_name": "王家蔬菜"}, "tag 59: use printable ASCII"),
    ({"currency": "XXX"}, "unsupported currency"),
    ({"amount_fen": 0}, "amount must be positive"),
    ({"mcc": "54"}, "4 digits"),
    ({"gateway_url": "http://" + "x" * 90}, "exceeds 99"),
])
def test_bad_inputs_are_refused(kwargs, message):
    with pytest.raises(EmvError, match=message):
        sample(**kwargs)


def test_tlv_limits():
    assert tlv("59", "AB") == "5902AB"
    with pytest.raises(EmvError, match="two digits"):
        tlv("5", "x")
    with pytest.raises(EmvError, match="empty"):
        tlv("59", "")


def test_emv_terminal_charges_with_a_verifiable_emv_qr(tmp_path):
    enrol_offline(tmp_path, "T-EMV-2", gateway_url="http://127.0.0.1:8000",
                  merchant_name="王家蔬菜")
    update_config(tmp_path, qr_format="emv")
    cart = Cart()
    cart.add(DEFAULT_PRODUCTS[2], weight_g=1500)
    with Terminal.open(tmp_path) as term:
        charged = term.charge(cart)
    parsed = independent_parse(charged.qr_text)
    assert parsed["54"] == "12.00" and parsed["62"]["05"] == str(charged.seq)
    assert parsed["59"] == "m-test" and parsed["64"]["01"] == "王家蔬菜"
    key = derive_device_key(TEST_MASTER_KEY, "T-EMV-2", 1)
    payload = verify_token(parsed["27"]["01"], key, parsed["26"]["01"])
    assert (payload.order_no, payload.amount_fen) == (charged.seq, 1200)
    assert read_merchant_payload(charged.qr_text).qr_url == charged.qr_url
    version, _ = qr_matrix(charged.qr_text, max_version=13)
    assert version <= 13 and charged.qr_png.startswith(b"\x89PNG")
