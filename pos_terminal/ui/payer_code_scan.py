"""A payer code scanned while a sale's QR is on the display: charge it, say what happened.

The shopper shows their wallet's payment code instead of scanning the stall's QR; the
vendor scans it with the same scanner (serial or keyboard wedge). The charge is a network
call of up to a few seconds, so it runs off the UI thread; what the gateway answered is
put on the vendor's screen back on the UI thread. A paid charge needs nothing more here:
the gateway's MACed payment result settles the sale on screen as any payment does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..errors import TerminalError
from ..payer_codes import PayerCodeOutcome, looks_like_payer_code

__all__ = ["scan_payer_code", "is_payer_code_scan"]

_NOTICES = {"waiting": ("payer_code_waiting", False), "declined": ("payer_code_declined", True),
            "refused": ("payer_code_refused", True),
            "unreachable": ("payer_code_unreachable", True)}


def is_payer_code_scan(model: Any, line: str) -> bool:
    """A payment code, scanned while a sale waits for its payment."""
    return model.pending is not None and looks_like_payer_code(line)


def _background(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="payer-code-charge", daemon=True).start()


def scan_payer_code(model: Any, terminal: Any, line: str, *,
                    on_ui: Callable[[Callable[[], None]], None],
                    run: Callable[[Callable[[], None]], None] = _background) -> None:
    """Charge ``line`` for the sale on screen; ``on_ui(fn)`` runs ``fn`` on the UI thread
    (Kivy's ``Clock.schedule_once``), ``run(fn)`` runs the charge (a thread)."""
    sale_id = model.pending.sale["sale_id"]
    model.tell("payer_code_charging")

    def work() -> None:
        try:
            outcome = terminal.charge_payer_code(sale_id, line)
        except TerminalError as exc:
            outcome = PayerCodeOutcome("refused", str(exc))
        on_ui(lambda: _show(model, outcome))

    run(work)


def _show(model: Any, outcome: PayerCodeOutcome) -> None:
    if outcome.state == "paid":
        model.tell("payer_code_paid")
        return
    key, error = _NOTICES.get(outcome.state, ("payer_code_refused", True))
    model.tell(key, error=error, reason=outcome.message)
