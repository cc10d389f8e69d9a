"""The terminal service the screens and the simulator drive: charge, results, day operations.

``Terminal.open(data_dir)`` loads the enrolment; ``charge(cart)`` commits the sale to the
outbox first and only then builds the QR, offline; ``start()`` runs the MQTT uplink that
drains the outbox and reports payment results to ``on_result`` callbacks (called on the
uplink's network thread: a Kivy screen hops to its own thread with ``Clock.schedule_once``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from market_protocol import PAYMENT_RESULT_SCHEMA, new_nonce, trace_code_for_sale
from market_protocol.emvco import EmvError

from .cart import Cart
from .catalogue import Product, load_catalogue, save_catalogue
from .clock_check import ClockCheck
from .day_report import day_start_ms, day_summary, render_z_report
from .emv_qr import EMV_MAX_QR_VERSION, emv_payload_for_sale
from .errors import TerminalError, UnsentSales
from .outbox import OUTBOX_FILE, Outbox, OutboxError, StoredSale
from .payer_codes import PayerCodeOutcome, charge_payer_code
from .provisioning import TerminalConfig, load_config
from .qr_image import MAX_VERSION, QRTooLargeError, qr_png
from .refunds import request_refund, send_queued_requests
from .sale_record import build_sale, new_sale_id, sale_qr_url, with_status
from .sales_report import period_bounds, sales_report
from .status_poll import poll_payment_status
from .tender import CASH_CHANNEL, Tender
from .uplink import ResultCallback, Uplink

__all__ = ["Terminal", "TerminalError", "UnsentSales", "ChargedSale", "ZReport"]

#: Seconds between attempts to send queued refund requests to the gateway.
REQUEST_RETRY_S = 15.0
#: While the MQTT link is down, ask the gateway over HTTP for payment results this often.
STATUS_POLL_S = 2.0
#: How often the terminal's clock is compared with the gateway's (when it was right), and
#: how soon again when it was off or could not be told.
CLOCK_CHECK_S = 300.0
CLOCK_RECHECK_S = 30.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ZReport:
    summary: dict[str, Any]
    png: bytes
    path: Path


@dataclass(frozen=True)
class ChargedSale:
    sale: dict[str, Any]
    qr_url: str
    trace_code: str
    qr_png: bytes | None
    #: What the QR encodes: the URL, or the EMVCo payload on an ``emv`` terminal.
    qr_text: str = ""

    @property
    def sale_id(self) -> str:
        return self.sale["sale_id"]

    @property
    def seq(self) -> int:
        return self.sale["seq"]

    @property
    def total_fen(self) -> int:
        return self.sale["total_fen"]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Terminal:
    def __init__(self, data_dir: str | os.PathLike[str], config: TerminalConfig,
                 device_key: bytes, *, outbox: Outbox | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.config = config
        self._key = device_key
        self.outbox = outbox or Outbox(self.data_dir / OUTBOX_FILE)
        self._callbacks: list[ResultCallback] = []
        self._callbacks_lock = threading.Lock()
        self.uplink = Uplink(self.outbox, config, device_key, on_result=self._dispatch)
        self._clock: Callable[[], int] = _now_ms
        self.clock_check = ClockCheck(config.gateway_url)
        self._stopping = threading.Event()
        self._requests_thread: threading.Thread | None = None

    @classmethod
    def open(cls, data_dir: str | os.PathLike[str], **options: Any) -> Terminal:
        """Open an enrolled terminal's data directory (ProvisioningError if never enrolled)."""
        config, key = load_config(data_dir)
        return cls(data_dir, config, key, **options)

    @property
    def device_id(self) -> str:
        return self.config.device_id

    # -- catalogue -----------------------------------------------------------------------
    def catalogue(self) -> list[Product]:
        return load_catalogue(self.data_dir)

    def save_catalogue(self, products: list[Product]) -> None:
        save_catalogue(self.data_dir, products)

    # -- charging ------------------------------------------------------------------------
    def charge(self, cart: Cart, *, render_png: bool = True,
               tender: Tender | None = None) -> ChargedSale:
        """Build the sale and its QR, and commit the sale only if the QR could be made
        (no network needed): a code that cannot be shown never leaves an unpaid sale.

        ``tender`` (``pos_terminal.tender.settle``) carries 抹零 and any cash: the QR asks
        only for what cash left; a sale paid all in cash has no QR and is paid at once
        (the gateway records it as a cash payment when the sale reaches it)."""
        if not cart:
            raise TerminalError("the cart is empty")
        if tender is not None and tender.lines_fen != cart.total_fen:
            raise TerminalError("the cart changed after the money was counted: settle again")
        clock = self.clock_check.status()
        if clock.state == "refuse" and not (tender is not None and tender.kind == "cash"):
            raise TerminalError(f"{clock.message} before charging: the gateway would "
                                "refuse this QR code (cash sales still work)")
        lines = cart.to_records()
        now = self._clock()
        nonce = new_nonce()
        shown: dict[str, Any] = {}

        def build(seq: int) -> dict[str, Any]:
            record = build_sale(device_id=self.config.device_id,
                                key_version=self.config.key_version, device_key=self._key,
                                seq=seq, sale_id=new_sale_id(self.config.device_id, seq),
                                lines=lines, created_at_ms=now, nonce=nonce,
                                currency=self.config.currency,
                                tender=tender.record() if tender else None)
            if tender is not None and tender.kind == "cash":
                shown.update(url="", text="", png=None)
                return record
            # Inside the outbox's transaction: if the code cannot be built, nothing is kept.
            shown.update(self._qr_for(record, render_png))
            return record

        cash = tender is not None and tender.kind == "cash"
        sale = self.outbox.add(build, paid_by=lambda record: CASH_CHANNEL if cash else None)
        if cash:
            self._paid_in_cash(sale)
        self.uplink.wake()
        return ChargedSale(sale, shown["url"], trace_code_for_sale(sale["sale_id"]),
                           shown["png"], shown["text"])

    def _paid_in_cash(self, sale: dict[str, Any]) -> None:
        """A cash sale is stored paid with the sale itself; the screen and the speaker hear
        of it at once, and the gateway's own cash payment result confirms it later."""
        stored = self.outbox.by_seq(sale["seq"])
        if stored is None:  # stored by this same call, and the outbox never drops a sale
            raise RuntimeError(f"sale #{sale['seq']} is missing from the outbox just after "
                               "it was stored")
        self._dispatch(stored, {
            "schema": PAYMENT_RESULT_SCHEMA, "payment_id": None, "device_id": self.device_id,
            "seq": sale["seq"], "status": "paid", "amount_fen": sale["total_fen"],
            "refunded_fen": 0, "currency": sale["currency"], "channel": CASH_CHANNEL,
            "channel_txn_id": None, "trace_code": trace_code_for_sale(sale["sale_id"]),
            "updated_at_ms": 0})

    def _qr_for(self, sale: dict[str, Any], render_png: bool) -> dict[str, Any]:
        try:
            url = sale_qr_url(sale, self._key, self.config.gateway_url)
            text, max_version = url, MAX_VERSION
            if self.config.qr_format == "emv":
                text = emv_payload_for_sale(sale, self.config, url)
                max_version = EMV_MAX_QR_VERSION
            png = qr_png(text, max_version=max_version) if render_png else None
        except (EmvError, QRTooLargeError) as exc:
            raise TerminalError(f"this sale's QR code cannot be made ({exc}); the sale was "
                                "not kept") from exc
        return {"url": url, "text": text, "png": png}

    def emv_payload(self, sale: dict[str, Any]) -> str:
        """The EMVCo merchant-presented form of ``sale``'s QR, whatever the terminal's format."""
        return emv_payload_for_sale(sale, self.config,
                                    sale_qr_url(sale, self._key, self.config.gateway_url))

    # -- results -------------------------------------------------------------------------
    def on_result(self, callback: ResultCallback) -> Callable[[], None]:
        """Call ``callback(stored_sale, result)`` on every new payment status; returns an
        unsubscribe function."""
        with self._callbacks_lock:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._callbacks_lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)
        return unsubscribe

    def _dispatch(self, sale: StoredSale, result: dict[str, Any]) -> None:
        with self._callbacks_lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(sale, result)
            except Exception:
                log.exception("payment result callback failed")

    def sale(self, sale_id: str) -> StoredSale | None:
        return self.outbox.by_sale_id(sale_id)

    # -- day operations ------------------------------------------------------------------
    def void(self, sale_id: str) -> StoredSale:
        """Void an unpaid sale: its record is re-sent with ``status = "void"`` so the gateway
        refuses to take payment for its QR."""
        stored = self.outbox.by_sale_id(sale_id)
        if stored is None:
            raise TerminalError(f"no sale {sale_id}")
        if stored.sale_status == "void":
            return stored
        if stored.payment_status in {"paid", "refunded", "partially_refunded"}:
            raise TerminalError("this sale is paid: request a refund instead of voiding it")
        try:
            self.outbox.requeue(stored.seq, with_status(stored.record, "void", self._key))
        except OutboxError as exc:
            raise TerminalError(str(exc)) from exc
        self.uplink.resend_from(stored.seq)
        voided = self.outbox.by_sale_id(sale_id)
        if voided is None:  # requeued just above, and the outbox never drops a sale
            raise TerminalError(f"sale {sale_id} is missing from the outbox after voiding it")
        return voided

    def request_refund(self, sale_id: str, amount_fen: int, reason: str) -> dict[str, Any]:
        """Refund (part of) a paid sale through the gateway; queued while it is away.

        Returns ``{"refund_no", "state": "sent"|"queued"|"refused", "answer"}``."""
        return request_refund(self, sale_id, amount_fen, reason)

    def charge_payer_code(self, sale_id: str, auth_code: str) -> PayerCodeOutcome:
        """Charge the shopper's scanned payment code (付款码) for an unpaid sale."""
        return charge_payer_code(self, sale_id, auth_code)

    def refresh_results(self) -> None:
        """Fetch the payment results of waiting sales over HTTP now (MACed, applied as
        MQTT results are); a failure only means the next poll or MQTT brings them."""
        try:
            poll_payment_status(self.outbox, self.config, self._key, self._dispatch)
        except Exception:  # noqa: BLE001 - MQTT and the periodic poll still deliver them
            log.exception("payment status over HTTP failed")

    def sales_report(self, period: str = "day", now_ms: int | None = None) -> dict[str, Any]:
        """Paid sales by product and by hour, today or over the last seven days."""
        start, end = period_bounds(period, self._clock() if now_ms is None else now_ms)
        names = {product.code: product.name_zh for product in self.catalogue()}
        return sales_report(self.outbox.since(start, end), period=period, start_ms=start,
                            end_ms=end, names_zh=names)

    def today_sales(self, now_ms: int | None = None) -> list[StoredSale]:
        return self.outbox.since(day_start_ms(self._clock() if now_ms is None else now_ms))

    def close_day(self, *, force: bool = False, now_ms: int | None = None) -> ZReport:
        """The Z report of today, saved as ``reports/z-<day>-<device>.png``.

        Raises UnsentSales while today's sales are not all uploaded, unless ``force``: the
        screen shows that warning and asks the vendor to confirm."""
        now_ms = self._clock() if now_ms is None else now_ms
        start = day_start_ms(now_ms)
        summary = day_summary(self.outbox.since(start), day_ms=start)
        if summary["unsent"] and not force:
            raise UnsentSales(summary["unsent"])
        printed = datetime.fromtimestamp(now_ms // 1000).astimezone().strftime("%Y-%m-%d %H:%M")
        png = render_z_report(summary, merchant=self.config.merchant_name,
                              device_id=self.device_id, printed_at=printed)
        path = self.data_dir / "reports" / f"z-{summary['day']}-{self.device_id}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        return ZReport(summary, png, path)

    def outbox_counts(self) -> dict[str, int]:
        return self.outbox.counts()

    @property
    def device_key(self) -> bytes:
        """For the uplink and refunds only; never log it."""
        return self._key

    # -- uplink --------------------------------------------------------------------------
    def start(self) -> None:
        """Run the MQTT uplink and the retry loop for queued gateway requests (refunds)."""
        self.uplink.start()
        if self._requests_thread is None:
            self._stopping.clear()
            self._requests_thread = threading.Thread(target=self._retry_requests,
                                                     name="terminal-requests", daemon=True)
            self._requests_thread.start()

    def stop(self) -> None:
        self.uplink.stop()
        if self._requests_thread is not None:
            self._stopping.set()
            self._requests_thread.join(timeout=10)
            self._requests_thread = None

    def _retry_requests(self) -> None:
        """Queued gateway requests every REQUEST_RETRY_S; payment results over HTTP every
        STATUS_POLL_S while the MQTT link is down (the display must still turn to paid)."""
        next_retry = time.monotonic() + REQUEST_RETRY_S
        next_clock_check = time.monotonic()
        while not self._stopping.wait(STATUS_POLL_S):
            if time.monotonic() >= next_clock_check:
                try:
                    state = self.clock_check.measure().state
                except Exception:  # never stop the loop for it
                    log.exception("clock check failed")
                    state = "unknown"
                # an off (or not yet known) clock is looked at again soon: once the vendor
                # has set it, QR sales open again within half a minute
                next_clock_check = time.monotonic() + (
                    CLOCK_CHECK_S if state == "ok" else CLOCK_RECHECK_S)
            if not self.uplink.connected:
                try:
                    poll_payment_status(self.outbox, self.config, self._key, self._dispatch)
                except Exception:  # the next round may succeed
                    log.exception("payment status over HTTP failed")
            if time.monotonic() < next_retry:
                continue
            next_retry = time.monotonic() + REQUEST_RETRY_S
            try:
                if self.outbox.queued_requests(limit=1):
                    send_queued_requests(self)
            except Exception:  # keep retrying; the next round may succeed
                log.exception("sending queued gateway requests failed")

    def close(self) -> None:
        self.stop()
        self.outbox.close()

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
