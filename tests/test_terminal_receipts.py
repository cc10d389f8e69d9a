"""Printed receipts and the Z report: ESC/POS bytes from python-escpos, sent to a real TCP
printer port and a real serial line (a pty pair)."""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import threading
import time

import pytest

from market_protocol import PAYMENT_RESULT_SCHEMA, mac_record, trace_code_for_sale
from pos_terminal import DEFAULT_PRODUCTS, Cart, Terminal, TerminalError
from pos_terminal.counter import Counter
from pos_terminal.printer import PrinterError, PrinterSpec, parse_printer
from pos_terminal.receipt import CHINESE_MODE, COLUMNS, display_width, receipt_bytes
from pos_terminal.stall_settings import (
    StallSettings,
    StallSettingsError,
    load_stall_settings,
    save_stall_settings,
)
from pos_terminal.testing import enrol_offline
from service_base.testing import free_port

TRACE_BASE = "http://127.0.0.1:8600"
_COMMAND = re.compile(rb"\x1b@|\x1c[&.]|[\x1b\x1d][!EadV\-M].")


def gb(text: str) -> bytes:
    return text.encode("gb18030")


def qr_contents(stream: bytes) -> list[bytes]:
    """The data of every native QR 'store' command: GS ( k pL pH cn=49 fn=80 m=48 data."""
    found, at = [], 0
    while (at := stream.find(b"\x1d(k", at)) != -1:
        length = stream[at + 3] + 256 * stream[at + 4]
        body = stream[at + 5:at + 5 + length]
        if body[:3] == b"1P0":
            found.append(body[3:])
        at += 5 + length
    return found


def text_lines(stream: bytes) -> list[str]:
    """The printed text before the QR code, commands removed, decoded as the printer does."""
    text = _COMMAND.sub(b"", stream.split(b"\x1d(k")[0])
    return text.decode("gb18030").split("\n")


def pay(term: Terminal, sale: dict, channel: str = "wechatpay") -> None:
    result = {"schema": PAYMENT_RESULT_SCHEMA, "payment_id": f"p{sale['seq']}",
              "device_id": term.device_id, "seq": sale["seq"], "status": "paid",
              "amount_fen": sale["total_fen"], "refunded_fen": 0, "currency": "CNY",
              "channel": channel, "channel_txn_id": "t", "trace_code": None,
              "updated_at_ms": time.time_ns() // 1_000_000, "mac": ""}
    result["mac"] = mac_record(result, term.device_key)
    term.outbox.record_result(result)


@pytest.fixture
def terminal(tmp_path):
    enrol_offline(tmp_path, "T-RCPT", merchant_name="王家蔬菜")
    with Terminal.open(tmp_path) as term:
        yield term


def sold(term: Terminal) -> dict:
    cart = Cart()
    cart.add(DEFAULT_PRODUCTS[0], weight_g=1234)   # 大白菜, 1.50 / 斤
    cart.add(DEFAULT_PRODUCTS[9], quantity=2)      # 豆腐, 3.50 / piece
    sale = term.charge(cart, render_png=False).sale
    pay(term, sale)
    return sale


class PrinterPort:
    """A network printer's raw port (9100-style) on loopback: keeps every job's bytes."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server = socket.create_server(("127.0.0.1", self.port))
        self.jobs: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                chunks = []
                while data := conn.recv(65536):
                    chunks.append(data)
                self.jobs.append(b"".join(chunks))

    def wait_jobs(self, count: int, timeout: float = 10.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(self.jobs) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.jobs

    def close(self) -> None:
        # shutdown first: a bare close leaves the port listening while accept() blocks.
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()


@pytest.fixture
def printer_port():
    port = PrinterPort()
    yield port
    port.close()


def test_receipt_carries_stall_items_in_chinese_total_channel_time_and_trace_qr(terminal):
    sale = sold(terminal)
    names = {p.code: p.name_zh for p in DEFAULT_PRODUCTS}
    stream = receipt_bytes(terminal.sale(sale["sale_id"]), stall="王家蔬菜",
                           device_id=terminal.device_id, names_zh=names,
                           trace_base_url=TRACE_BASE)
    assert stream.startswith(b"\x1b@" + CHINESE_MODE)   # init, then Chinese character mode
    assert stream.endswith(b"\x1dV\x00")                # cut
    code = trace_code_for_sale(sale["sale_id"])
    assert qr_contents(stream) == [f"{TRACE_BASE}/trace/{code}".encode()]
    assert b"\x1d(k\x03\x001Q0" in stream                 # ... and the print-it command
    lines = text_lines(stream)
    assert "王家蔬菜" in lines
    assert "大白菜 Chinese cabbage" in lines and "豆腐 Tofu" in lines
    assert any(line.startswith("  1.234kg @1.50/斤") and line.endswith("3.70")
               for line in lines)
    assert any(line.startswith("  x2 @3.50/件") and line.endswith("7.00") for line in lines)
    assert any(line.startswith("合计 TOTAL ￥") and line.endswith("10.70") for line in lines)
    assert any(line.startswith("微信 wechatpay") and line.endswith("10.70") for line in lines)
    assert any(line.startswith("状态 Status") and line.endswith("已付 PAID") for line in lines)
    assert any(line.startswith("时间 Time") for line in lines)
    for part in ("王家蔬菜", "大白菜", "合计", "微信"):   # two-byte GB2312 codes on the wire
        assert gb(part) in stream and len(gb(part)) == 2 * len(part)
    assert gb(f"溯源码 {code}") in stream


@pytest.mark.parametrize("paper_mm", [80, 58])
def test_every_line_fits_the_paper(terminal, paper_mm):
    sale = sold(terminal)
    stream = receipt_bytes(terminal.sale(sale["sale_id"]), stall="王家蔬菜",
                           device_id=terminal.device_id, paper_mm=paper_mm,
                           names_zh={p.code: p.name_zh for p in DEFAULT_PRODUCTS},
                           trace_base_url=TRACE_BASE)
    widths = [display_width(line) for line in text_lines(stream)]
    assert max(widths) <= COLUMNS[paper_mm]
    assert COLUMNS[paper_mm] in widths  # the rule and the paired lines span the paper
    assert b"\x1d(k\x03\x001C" + bytes([6 if paper_mm == 80 else 5]) in stream  # module size


def test_a_sale_without_a_trace_url_prints_the_code_itself(terminal):
    sale = sold(terminal)
    stream = receipt_bytes(terminal.sale(sale["sale_id"]), stall="S", device_id="T-RCPT")
    assert qr_contents(stream) == [trace_code_for_sale(sale["sale_id"]).encode()]


def test_print_and_reprint_over_a_network_printer_even_after_a_restart(terminal, printer_port):
    save_stall_settings(terminal.data_dir, StallSettings(
        printer=f"network:127.0.0.1:{printer_port.port}", trace_url=TRACE_BASE))
    sale = sold(terminal)
    counter = Counter(terminal)
    with pytest.raises(TerminalError, match="no receipt"):
        counter.reprint_last()
    sent = counter.print_receipt(sale["sale_id"])
    assert printer_port.wait_jobs(1) == [sent]
    assert gb("大白菜") in sent and gb("重印") not in sent
    counter.close()
    again = Counter(terminal)                      # a new session on the same data dir
    reprinted = again.reprint_last()
    assert printer_port.wait_jobs(2)[1] == reprinted
    assert gb("** 重印 REPRINT **") in reprinted
    assert qr_contents(reprinted) == qr_contents(sent)
    again.close()


def test_z_report_prints_with_the_days_figures(terminal, printer_port):
    save_stall_settings(terminal.data_dir,
                        StallSettings(printer=f"network:127.0.0.1:{printer_port.port}"))
    sold(terminal)
    sold(terminal)
    counter = Counter(terminal)
    stream = counter.print_z_report(force=True)
    assert printer_port.wait_jobs(1) == [stream]
    lines = text_lines(stream)
    assert any(line.startswith("已付 Paid") and line.endswith("2  21.40") for line in lines)
    assert any(line.startswith("净额 NET") and line.endswith("21.40") for line in lines)
    assert gb("日结") in stream and gb("王家蔬菜") in stream
    counter.close()


def test_receipt_over_a_serial_printer(terminal):
    master, slave = os.openpty()
    try:
        save_stall_settings(terminal.data_dir,
                            StallSettings(printer=f"serial:{os.ttyname(slave)}:19200"))
        sale = sold(terminal)
        counter = Counter(terminal)
        os.set_blocking(master, False)
        sent = counter.print_receipt(sale["sale_id"])
        received, deadline = b"", time.monotonic() + 10
        while len(received) < len(sent) and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                received += os.read(master, 65536)
        assert received == sent
        counter.close()
    finally:
        os.close(master)
        os.close(slave)


def test_an_unreachable_printer_is_a_clear_error_and_a_missing_one_too(terminal):
    save_stall_settings(terminal.data_dir,
                        StallSettings(printer=f"network:127.0.0.1:{free_port()}"))
    sale = sold(terminal)
    counter = Counter(terminal)
    with pytest.raises(PrinterError, match="did not take the receipt"):
        counter.print_receipt(sale["sale_id"])
    assert counter.last_receipt_sale_id() is None
    counter.settings = StallSettings()
    with pytest.raises(PrinterError, match="no receipt printer"):
        counter.print_receipt(sale["sale_id"])
    with pytest.raises(TerminalError, match="no sale"):
        counter.print_receipt("T-RCPT.99.00000000")
    counter.close()


def test_printer_specs():
    assert parse_printer("none") == PrinterSpec("none")
    assert parse_printer("usb:0416:5011") == PrinterSpec("usb", number=0x5011, vendor_id=0x416)
    assert parse_printer("serial:/dev/ttyUSB0") == PrinterSpec("serial", "/dev/ttyUSB0", 9600)
    assert parse_printer("network:10.0.0.7") == PrinterSpec("network", "10.0.0.7", 9100)
    assert parse_printer("network:10.0.0.7:9101") == PrinterSpec("network", "10.0.0.7", 9101)
    for bad in ("", "usb:zz", "serial:", "lpt:1", "network:"):
        with pytest.raises(PrinterError, match="not understood"):
            parse_printer(bad)


def test_stall_settings_file(tmp_path):
    assert load_stall_settings(tmp_path) == StallSettings()
    save_stall_settings(tmp_path, StallSettings(paper_mm=58, rounding="jiao"))
    assert load_stall_settings(tmp_path).paper_mm == 58
    (tmp_path / "stall.json").write_text('{"paper": 58}')
    with pytest.raises(StallSettingsError, match="unknown stall setting"):
        load_stall_settings(tmp_path)
    for bad in ({"paper_mm": 76}, {"voice_volume": 300}, {"rounding": "fen"}):
        with pytest.raises(StallSettingsError):
            StallSettings(**bad)


def test_every_stall_setting_is_documented():
    from pathlib import Path

    from pos_terminal.stall_settings import STALL_SETTINGS

    docs = (Path(__file__).parent.parent / "docs" / "terminal.md").read_text()
    for name in STALL_SETTINGS:
        assert f"| `{name}` |" in docs, f"{name} is missing from docs/terminal.md"


def test_close_day_prints_the_z_report_from_the_command_line(tmp_path, printer_port):
    import json

    from click.testing import CliRunner

    from pos_terminal.cli import terminal as terminal_command

    enrol_offline(tmp_path, "T-CLI", merchant_name="王家蔬菜")
    save_stall_settings(tmp_path, StallSettings(printer=f"network:127.0.0.1:{printer_port.port}"))
    with Terminal.open(tmp_path) as term:
        sold(term)
    args = ["--headless", "--data-dir", str(tmp_path), "--drain-timeout", "0", "--close-day",
            "--force", "--print"]
    done = CliRunner().invoke(terminal_command, args)
    assert done.exit_code == 0, done.output
    event = json.loads(done.output.strip().splitlines()[-1])
    assert event["event"] == "z_report" and event["printed"] is True
    [job] = printer_port.wait_jobs(1)
    assert gb("日结") in job and b"10.70" in job
    printer_port.close()                       # the printer is gone: a clear failure
    failed = CliRunner().invoke(terminal_command, args)
    assert failed.exit_code == 1 and "not printed" in failed.output
