"""The windowless parts of the terminal UI: IPC, QR texels, fonts, options, day rows."""

from __future__ import annotations

import os
import stat
import threading
from multiprocessing import AuthenticationError
from pathlib import Path

import pytest

from pos_terminal.cart import Cart
from pos_terminal.catalogue import DEFAULT_PRODUCTS
from pos_terminal.day_report import day_summary
from pos_terminal.qr_image import qr_matrix
from pos_terminal.terminal import Terminal
from pos_terminal.testing import enrol_offline
from pos_terminal.ui.app import _options
from pos_terminal.ui.day_model import sale_view, z_report_lines
from pos_terminal.ui.display_link import MAX_FRAME, VendorLink, connect_display, decode
from pos_terminal.ui.environment import LANG_ENV
from pos_terminal.ui.fonts import CJK_FONT_PACKAGES, find_cjk_font
from pos_terminal.ui.qr_texture import qr_pixels
from pos_terminal.ui.window_setup import parse_geometry

URL = "http://127.0.0.1:8000/q/AQEAABTIAJwAAAABawGVeZ4FEAsmu4rBC1QtVUktZDAxZjdimPb53bJilTYqD"


# -- display link (real Unix sockets) -------------------------------------------------------
def receive(conn, count: int) -> list[dict]:
    return [decode(conn.recv_bytes()) for _ in range(count)]


def test_display_link_replays_the_current_screen_then_streams():
    replies: list[dict] = []
    got_reply = threading.Event()
    link = VendorLink(on_reply=lambda reply: (replies.append(reply), got_reply.set()))
    try:
        assert stat.S_IMODE(os.stat(Path(link.address).parent).st_mode) == 0o700
        link.send({"type": "lang", "lang": "en"})
        link.send({"type": "cart", "total_fen": 1, "lines": []})
        link.send({"type": "qr", "sale_id": "s1", "url": URL})
        link.send({"type": "result", "sale_id": "s1", "status": "paid"})
        conn = connect_display(link.address, link.authkey)
        replay = receive(conn, 3)
        assert [m["type"] for m in replay] == ["lang", "qr", "result"]
        assert all(isinstance(m["sent_ns"], int) for m in replay)
        link.send({"type": "idle"})
        assert receive(conn, 1)[0]["type"] == "idle"
        conn.send_bytes(b'{"type": "shown", "phase": "idle"}')
        assert got_reply.wait(10) and replies == [{"type": "shown", "phase": "idle"}]
        conn.close()
    finally:
        link.close()
    assert not Path(link.address).exists()


def test_display_link_refuses_a_wrong_key_and_keeps_serving():
    link = VendorLink()
    try:
        with pytest.raises(AuthenticationError):
            connect_display(link.address, b"not the key" * 3)
        conn = connect_display(link.address, link.authkey)
        link.send({"type": "idle"})
        assert receive(conn, 1)[0]["type"] == "idle"
        conn.close()
    finally:
        link.close()


def test_display_needs_its_key_from_the_environment(monkeypatch):
    monkeypatch.delenv("TRACEPAY_DISPLAY_AUTHKEY", raising=False)
    with pytest.raises(RuntimeError, match="TRACEPAY_DISPLAY_AUTHKEY"):
        connect_display("/nonexistent.sock")


@pytest.mark.parametrize("frame, reason", [
    (b"[1, 2]", "JSON object"),
    (b"{" + b" " * MAX_FRAME + b"}", "exceeds"),
    (b"\xff\xfe", None),
])
def test_display_frames_must_be_small_json_objects(frame, reason):
    with pytest.raises(ValueError, match=reason):
        decode(frame)


# -- QR texels ------------------------------------------------------------------------------
def test_qr_pixels_are_one_opaque_black_or_white_texel_per_module_bottom_up():
    _, matrix = qr_matrix(URL)
    side, pixels = qr_pixels(URL)
    assert side == len(matrix) and len(pixels) == side * side * 4
    texels = [pixels[i:i + 4] for i in range(0, len(pixels), 4)]
    assert set(texels) == {b"\x00\x00\x00\xff", b"\xff\xff\xff\xff"}
    for row in (0, 4, side // 2, side - 1):
        gl_row = texels[(side - 1 - row) * side:(side - row) * side]
        assert [t == b"\x00\x00\x00\xff" for t in gl_row] == list(matrix[row])
    assert not any(matrix[0]) and not any(matrix[3])  # the 4-module quiet zone


# -- fonts, window geometry and run() options ------------------------------------------------
def test_a_cjk_font_is_installed_for_the_chinese_screens():
    assert find_cjk_font() is not None, f"install {' or '.join(CJK_FONT_PACKAGES)}"


def test_find_cjk_font_prefers_the_first_existing_candidate(tmp_path):
    font = tmp_path / "chosen.ttc"
    font.write_bytes(b"x")
    assert find_cjk_font((str(tmp_path / "missing.ttc"), str(font))) == str(font)


def test_geometry_parses_and_refuses_junk():
    assert parse_geometry("800x600+1030+0") == (800, 600, 1030, 0)
    assert parse_geometry("1024x700") == (1024, 700, None, None)
    for bad in ("800x", "800x600+1", "big", "-800x600"):
        with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
            parse_geometry(bad)


def test_run_options_from_a_path_a_mapping_and_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(LANG_ENV, raising=False)
    options = _options(tmp_path)
    assert options["data_dir"] == tmp_path and options["lang"] == "zh"
    assert options["scale"] == "manual" and options["customer_display"] is True
    monkeypatch.setenv(LANG_ENV, "en")
    assert _options({"data_dir": str(tmp_path), "scale": "simulated"})["lang"] == "en"
    assert _options({"data_dir": str(tmp_path), "lang": "zh"})["lang"] == "zh"
    with pytest.raises(ValueError, match="unknown terminal UI option"):
        _options({"data_dir": str(tmp_path), "colour": "red"})
    with pytest.raises(ValueError, match="needs data_dir"):
        _options({})
    with pytest.raises(ValueError, match="lang must be zh or en"):
        _options({"data_dir": str(tmp_path), "lang": "fr"})


# -- day rows and Z report lines -------------------------------------------------------------
def test_sale_rows_and_z_report_lines_from_the_real_outbox(tmp_path):
    enrol_offline(tmp_path, "T-DAY-1")
    with Terminal.open(tmp_path) as terminal:
        cart = Cart()
        cart.add(DEFAULT_PRODUCTS[0], weight_g=1000)
        first = terminal.charge(cart, render_png=False)
        second = terminal.charge(cart, render_png=False)
        terminal.void(second.sale_id)
        rows = {view.seq: view for view in map(sale_view, terminal.today_sales())}
        summary = day_summary(terminal.today_sales(), day_ms=0)
    assert (rows[first.seq].status, rows[first.seq].voidable, rows[first.seq].refundable) \
        == ("open", True, False)
    assert rows[second.seq].status == "void" and not rows[second.seq].voidable
    lines = z_report_lines(summary, "en", "Stall 7", "T-DAY-1")
    assert lines[1:] == ["Merchant: Stall 7", "Terminal: T-DAY-1", "Sales: 1", "Paid: ¥0.00 (0)",
                         "Unpaid: ¥3.00 (1)", "Voided: 1", "Refunded: ¥0.00",
                         "Not sent: 2"]


def test_every_string_the_kv_files_use_is_in_the_table():
    import re

    from pos_terminal.ui.strings import STRINGS

    kv_dir = Path(__file__).parents[1] / "pos_terminal" / "ui" / "kv"
    used = {key for path in kv_dir.glob("*.kv")
            for key in re.findall(r"app\.t\['([a-z_0-9]+)'\]", path.read_text())}
    assert used and used <= set(STRINGS), used - set(STRINGS)


def test_qr_pixels_draw_an_emvco_payload_too(tmp_path):
    from pos_terminal.provisioning import update_config

    enrol_offline(tmp_path, "T-EMV-1")
    update_config(tmp_path, qr_format="emv")
    with Terminal.open(tmp_path) as terminal:
        cart = Cart()
        cart.add(DEFAULT_PRODUCTS[9], quantity=2)
        charged = terminal.charge(cart, render_png=False)
    side, pixels = qr_pixels(charged.qr_text)
    assert charged.qr_text.startswith("000201") and side == len(qr_matrix(
        charged.qr_text, 40)[1])
