"""The receipt printer named in ``stall.json``: USB, serial or network, through python-escpos.

A receipt is rendered to bytes first (``pos_terminal.receipt``) and written in one go, so
a printer that drops off half way never gets a mix of two receipts. The printer is opened
for each job and closed after it: a USB printer unplugged and plugged back, or a network
printer that rebooted, works again on the next receipt without restarting the terminal.

Specs: ``none``, ``usb:VID:PID`` (hex, e.g. ``usb:0416:5011``), ``serial:/dev/ttyUSB0[:BAUD]``
(9600 by default), ``network:HOST[:PORT]`` (9100 by default).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

__all__ = ["PrinterSpec", "PrinterError", "parse_printer", "send_to_printer"]


class PrinterError(RuntimeError):
    """The printer cannot be reached or the spec is wrong; the message is fit for the vendor."""


@dataclass(frozen=True)
class PrinterSpec:
    kind: str  # none | usb | serial | network
    target: str = ""
    number: int = 0  # USB product id, serial baud rate or TCP port
    vendor_id: int = 0


def parse_printer(spec: str) -> PrinterSpec:
    """Read a printer spec; raises PrinterError with the accepted forms."""
    kind, _, rest = spec.partition(":")
    try:
        if kind == "none" and not rest:
            return PrinterSpec("none")
        if kind == "usb":
            vendor, product = rest.split(":")
            return PrinterSpec("usb", number=int(product, 16), vendor_id=int(vendor, 16))
        if kind == "serial" and rest:
            device, _, baud = rest.partition(":")
            return PrinterSpec("serial", device, int(baud or 9600))
        if kind == "network" and rest:
            host, _, port = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
            return PrinterSpec("network", host or rest, int(port or 9100))
    except ValueError:
        pass
    raise PrinterError(f"printer {spec!r} not understood: use none, usb:VID:PID, "
                       "serial:/dev/ttyUSB0[:BAUD] or network:HOST[:PORT]")


def _open(spec: PrinterSpec, timeout_s: float) -> Any:
    from escpos import printer as escpos_printer

    if spec.kind == "network":
        return escpos_printer.Network(spec.target, port=spec.number, timeout=timeout_s)
    if spec.kind == "serial":
        return escpos_printer.Serial(spec.target, baudrate=spec.number, timeout=timeout_s)
    if spec.kind == "usb":
        if not escpos_printer.Usb.is_usable():
            raise PrinterError("USB printers need pyusb: pip install 'python-escpos[usb]'")
        return escpos_printer.Usb(spec.vendor_id, spec.number, timeout=int(timeout_s * 1000))
    raise PrinterError("no receipt printer is set up (printer in stall.json)")


def send_to_printer(spec: str | PrinterSpec, data: bytes, *, timeout_s: float = 10.0) -> None:
    """Write ``data`` (a whole rendered receipt) to the printer and close it again."""
    parsed = parse_printer(spec) if isinstance(spec, str) else spec
    device = _open(parsed, timeout_s)
    try:
        device.open()
        device._raw(data)
    except PrinterError:
        raise
    except Exception as exc:  # escpos raises its own, OSError, serial and usb errors
        raise PrinterError(f"the printer did not take the receipt: {exc}") from exc
    finally:
        with contextlib.suppress(Exception):  # closing a printer that never opened
            device.close()
