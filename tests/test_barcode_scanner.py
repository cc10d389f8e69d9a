"""A serial barcode scanner over a real pseudo-terminal."""

from __future__ import annotations

import os

import pytest

from pos_terminal.barcode_scanner import SerialBarcodeScanner
from pos_terminal.barcodes import BarcodeError, EmbeddedBarcode, ProductBarcode


@pytest.fixture
def scanner_and_device():
    master, slave = os.openpty()
    scanner = SerialBarcodeScanner.open(os.ttyname(slave), timeout=0.2)
    yield scanner, master
    scanner.close()
    os.close(master)
    os.close(slave)


def test_codes_arrive_line_by_line(scanner_and_device):
    scanner, device = scanner_and_device
    os.write(device, b"2700456012340\r\n6901234567892\r")
    os.write(device, b"27004560")
    first = scanner.read()
    assert first == EmbeddedBarcode("2700456012340", 27, "00456", price_fen=None, weight_g=1234)
    assert scanner.read() == ProductBarcode("6901234567892")
    assert scanner.read() is None  # half a code: wait for the rest
    os.write(device, b"12340\n")
    assert scanner.read().weight_g == 1234


def test_bad_scans_are_reported(scanner_and_device):
    scanner, device = scanner_and_device
    os.write(device, b"2700456012344\r")
    result = scanner.read()
    assert isinstance(result, BarcodeError) and "check digit" in str(result)
    os.write(device, b"x" * 300)
    result = scanner.read()
    assert isinstance(result, BarcodeError) and "over-long" in str(result)
