"""Charging offline: the sale is committed before the QR exists, and the QR verifies."""

from __future__ import annotations

import io
import sqlite3
import stat

import pytest
from PIL import Image

from market_protocol import (
    SchemaError,
    canonical_json,
    check_sale,
    derive_device_key,
    split_qr_url,
    trace_code_for_sale,
    verify_record_mac,
    verify_token,
)
from pos_terminal import DEFAULT_PRODUCTS, Cart, Terminal, TerminalError
from pos_terminal.provisioning import ProvisioningError
from pos_terminal.qr_image import QRTooLargeError, qr_matrix
from pos_terminal.testing import TEST_MASTER_KEY, enrol_offline

GATEWAY = "http://127.0.0.1:8080"


@pytest.fixture
def terminal(tmp_path):
    enrol_offline(tmp_path, "T-CHARGE", gateway_url=GATEWAY)
    with Terminal.open(tmp_path) as term:
        yield term


def _cart(*weights):
    cart = Cart()
    for index, weight in enumerate(weights):
        cart.add(DEFAULT_PRODUCTS[index], weight_g=weight)
    return cart


def test_charge_commits_a_valid_maced_sale_and_a_verifiable_qr(terminal, tmp_path):
    charged = terminal.charge(_cart(1234, 500))
    sale = charged.sale
    check_sale(sale)
    key = derive_device_key(TEST_MASTER_KEY, "T-CHARGE", 1)
    assert verify_record_mac(sale, key)
    assert sale["seq"] == 1 and sale["total_fen"] == 370 + 300
    base, token = split_qr_url(charged.qr_url)
    assert base == GATEWAY
    payload = verify_token(token, key, GATEWAY)
    assert (payload.order_no, payload.amount_fen, payload.device_id) == (1, 670, "T-CHARGE")
    assert payload.nonce.hex() == sale["qr_nonce"]
    assert payload.issued_at == sale["qr_issued_at"]
    assert charged.trace_code == trace_code_for_sale(sale["sale_id"])
    # Committed: another connection (another process would do the same) sees the row.
    with sqlite3.connect(tmp_path / "outbox.sqlite") as other:
        state, record = other.execute("SELECT state, record FROM sales WHERE seq = 1").fetchone()
    assert state == "queued"
    assert canonical_json.loads(record) == sale


def test_sequence_numbers_are_monotonic_across_restarts(tmp_path):
    enrol_offline(tmp_path, "T-SEQ")
    with Terminal.open(tmp_path) as term:
        seqs = [term.charge(_cart(100), render_png=False).seq for _ in range(3)]
    with Terminal.open(tmp_path) as term:
        seqs.append(term.charge(_cart(100), render_png=False).seq)
        assert term.outbox_counts() == {"queued": 4, "sent": 0}
    assert seqs == [1, 2, 3, 4]


def test_sale_ids_are_unique(terminal):
    ids = {terminal.charge(_cart(100), render_png=False).sale_id for _ in range(20)}
    assert len(ids) == 20


def test_qr_png_is_level_m_version_at_most_10(terminal):
    charged = terminal.charge(_cart(100, 200, 300))
    image = Image.open(io.BytesIO(charged.qr_png))
    assert image.format == "PNG"
    version, matrix = qr_matrix(charged.qr_url)
    assert version <= 10
    # Size with the 4-module quiet zone: (17 + 4 * version + 8) modules of 8 px.
    assert len(matrix) == 17 + 4 * version + 8
    assert image.size == (len(matrix) * 8, len(matrix) * 8)


def test_oversized_qr_payload_is_refused():
    with pytest.raises(QRTooLargeError, match="version"):
        qr_matrix("http://127.0.0.1/q/" + "A" * 400)


def test_empty_cart_is_refused_and_nothing_is_stored(terminal):
    with pytest.raises(TerminalError, match="empty"):
        terminal.charge(Cart())
    assert terminal.outbox_counts() == {"queued": 0, "sent": 0}


def test_a_sale_the_schema_refuses_is_not_stored(terminal):
    cart = Cart()
    cart.add(DEFAULT_PRODUCTS[0], weight_g=100, unit_price_fen=0)  # total 0: not payable
    with pytest.raises(SchemaError, match="total_fen"):
        terminal.charge(cart)
    assert terminal.outbox_counts() == {"queued": 0, "sent": 0}
    assert terminal.outbox.next_seq() == 1


def test_key_file_is_private_and_unenrolled_dir_says_how_to_fix(tmp_path):
    enrol_offline(tmp_path / "a", "T-KEY")
    for name in ("device.key", "terminal.json"):
        assert stat.S_IMODE((tmp_path / "a" / name).stat().st_mode) == 0o600
    with pytest.raises(ProvisioningError, match="--enrol-code"):
        Terminal.open(tmp_path / "b")
    (tmp_path / "a" / "device.key").chmod(0o644)
    with pytest.raises(ProvisioningError, match="chmod 600"):
        Terminal.open(tmp_path / "a")


def test_config_repr_hides_the_mqtt_password(tmp_path):
    config = enrol_offline(tmp_path, "T-REPR")
    assert config.mqtt_password not in repr(config)
