"""The vendor screen's state as plain data, for the UI control socket (tests, benchmarks)."""

from __future__ import annotations

from typing import Any

from .day_model import sale_view

__all__ = ["vendor_snapshot"]


def vendor_snapshot(app: Any) -> dict[str, Any]:
    """What a test asserts on: the model, the screen, the outbox and today's sales rows."""
    if not app.attached:
        enrol = app.enrol
        return {"screen": app.manager.current, "lang": enrol.lang if enrol else None,
                "enrol": None if enrol is None else {
                    "code": enrol.code, "gateway": enrol.gateway, "field": enrol.field,
                    "busy": enrol.busy, "notice": enrol.notice_text(),
                    "notice_key": enrol.notice.key if enrol.notice else None},
                "display_connected": app.link.connected}
    model = app.model
    pending = model.pending
    return {
        "screen": app.manager.current, "lang": model.lang, "total_fen": model.total_fen,
        "lines": [line.to_record() for line in model.cart.lines],
        "keypad": model.keypad.buffer, "mode": model.keypad.mode,
        "entry_text": app.entry_text, "held_price_fen": model.held_price_fen,
        "notice": (app.refund.notice_text() if app.refund and app.refund.notice
                   else model.notice_text()), "locked": model.locked,
        "pending_sale_id": pending.sale_id if pending else None,
        "pending_seq": pending.seq if pending else None,
        "phase": model.display.state.phase, "display_connected": app.link.connected,
        "pending_text": app.pending_text, "pending_rgba": list(app.pending_rgba),
        "display_pid": app.customer_display.pid if app.customer_display else None,
        "display_shown": app.display_shown, "outbox": app.terminal.outbox_counts(),
        "products": {p.code: p.unit_price_fen for p in model.products},
        "price_for": model.price_for,
        "z_report": app.z_report_text, "scale_text": app.scale_text, "unsent_warning": app.unsent_warning,
        "sales": [{"seq": v.seq, "sale_id": v.sale_id, "status": v.status,
                   "total_fen": v.total_fen}
                  for v in map(sale_view, app.terminal.today_sales())],
        "selected_sale": app.selected_sale,
        "sale_rows": {str(row.seq): row.amount for row in
                      app.manager.get_screen("sales").ids.sale_rows.children},
        "sale_marks": {str(row.seq): {"status": row.status_key, "text": row.status,
                                      "rgba": list(row.status_rgba)} for row in
                       app.manager.get_screen("sales").ids.sale_rows.children},
        "refund": None if app.refund is None else {
            "sale_id": app.refund.sale.sale_id, "amount_fen": app.refund.amount_fen(),
            "refundable_fen": app.refund.refundable_fen, "reason": app.refund.reason_text(),
            "outcome": app.refund.outcome, "refunded_fen": app.refund.sale.refunded_fen,
            "status": app.refund_status, "busy": app.refund_busy},
    }

