"""The shopper pages (docs/protocol.md §8): pay hand-off, receipt, trace, stall, scan.

A thin shell: read the gateway or the bridge, shape the answer with the pure helpers in
``trace_view``, render. Ids are checked before any upstream call so junk never leaves
this process.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlsplit

from flask import (
    Blueprint,
    current_app,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)

from .page_errors import PageError
from .qr_svg import qr_svg
from .trace_view import (
    build_timeline,
    collect_recalls,
    proof_rows,
    record_lines,
    stock_rows,
)
from .upstream import Upstream, UpstreamNotFound, UpstreamUnavailable

__all__ = ["blueprint", "ID_PATTERN"]

blueprint = Blueprint("pages", __name__)

#: Same alphabet as the ids in market_protocol.messages (payment ids, merchant ids, codes).
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_PAYABLE = ("created", "pending")
_SETTLED = ("paid", "refunded", "partially_refunded")


def _upstream() -> Upstream:
    return current_app.extensions["tracepay_upstream"]


def _check_id(value: str, what: str) -> str:
    if not ID_PATTERN.match(value):
        raise PageError(400, f"malformed_{what}",
                        f"{what.replace('_', ' ')} must be 1-64 letters, digits or _ . : - "
                        f"starting with a letter or digit", title_key="bad_request_title")
    return value


def _not_found(code: str, message: str, text_key: str) -> PageError:
    return PageError(404, code, message, title_key="not_found_title", text_key=text_key,
                     html_by_default=True)


def _unavailable(exc: UpstreamUnavailable) -> PageError:
    current_app.logger.warning("upstream unavailable: %s", exc)
    return PageError(503, f"{exc.service}_unavailable",
                     f"the {exc.service} did not answer; try again shortly",
                     title_key="unavailable_title", text_key="unavailable_detail",
                     html_by_default=True)


def _public_base() -> str:
    configured = current_app.config["TRACEPAY"]["public_url"]
    return (configured or request.host_url).rstrip("/")


def _payment(payment_id: str) -> dict[str, Any]:
    _check_id(payment_id, "payment_id")
    try:
        payment = _upstream().payment(payment_id)
    except UpstreamNotFound:
        raise _not_found("unknown_payment", f"no payment {payment_id}",
                         "not_found_payment") from None
    except UpstreamUnavailable as exc:
        raise _unavailable(exc) from None
    if not isinstance(payment, dict):
        raise _unavailable(UpstreamUnavailable("gateway", "payment is not an object"))
    return payment


def _items(payment: dict[str, Any]) -> list[dict[str, Any]]:
    return record_lines({"lines": payment.get("items") or []})


def _status_key(status: Any) -> str:
    known = ("created", "pending", "paid", "failed", "expired", "refunded", "partially_refunded")
    return f"status_{status}" if status in known else "status_unknown"


@blueprint.get("/")
def home() -> Any:
    params: dict[str, Any] = request.args.to_dict()  # first value per key, as ** on it gave
    return redirect(url_for("pages.scan", **params), code=302)


@blueprint.get("/pay/<payment_id>")
def pay(payment_id: str) -> Any:
    payment = _payment(payment_id)
    status = payment.get("status")
    return render_template(
        "pay.html", payment=payment, items=_items(payment), status_key=_status_key(status),
        payable=status in _PAYABLE and bool(payment.get("checkout_url")),
        merchant=payment.get("merchant") or {})


@blueprint.get("/receipt/<payment_id>")
def receipt(payment_id: str) -> Any:
    payment = _payment(payment_id)
    code = payment.get("trace_code") or ""
    trace_url = qr = None
    recalls: list[dict[str, Any]] = []
    on_ledger = False
    # Only a paid sale goes on the ledger: an unpaid one has no trace to show or print.
    if payment.get("status") not in _SETTLED or not (code and ID_PATTERN.match(code)):
        code = ""
    else:
        trace_url = f"{_public_base()}/trace/{quote(code, safe='')}"
        qr = qr_svg(trace_url, module_px=5, title=code)
        recalls, on_ledger = _recalls_for(code)
    return render_template(
        "receipt.html", payment=payment, items=_items(payment), status_key=_status_key(
            payment.get("status")), merchant=payment.get("merchant") or {}, trace_code=code,
        trace_url=trace_url, qr=qr, recalls=recalls, on_ledger=on_ledger,
        payable=payment.get("status") in _PAYABLE and bool(payment.get("checkout_url")))


def _recalls_for(code: str) -> tuple[list[dict[str, Any]], bool]:
    """Recalls that touch this sale; an absent or unreachable trace just means none yet."""
    try:
        return collect_recalls(_upstream().trace(code)), True
    except (UpstreamNotFound, UpstreamUnavailable):
        return [], False


@blueprint.get("/trace")
def trace_form() -> Any:
    code = (request.args.get("code") or "").strip()
    if not code:
        raise PageError(400, "missing_code", "give a trace code: /trace?code=<code>",
                        title_key="bad_request_title")
    _check_id(code, "trace_code")
    args: dict[str, Any] = {"lang": request.args["lang"]} if "lang" in request.args else {}
    return redirect(url_for("pages.trace", code=code, **args), code=303)


@blueprint.get("/trace/<code>")
def trace(code: str) -> Any:
    _check_id(code, "trace_code")
    upstream = _upstream()
    try:
        answer = upstream.trace(code)
    except UpstreamNotFound:
        raise _not_found("unknown_trace_code", f"no record for trace code {code}",
                         "not_found_trace") from None
    except UpstreamUnavailable as exc:
        raise _unavailable(exc) from None
    keys = _pinned_keys() if answer.get("proofs") else {}
    proofs = [p for p in answer.get("proofs") or [] if isinstance(p, dict)]
    rows = proof_rows({"proofs": proofs})
    record = answer.get("record") if isinstance(answer.get("record"), dict) else {}
    return render_template(
        "trace.html", code=code, record=record, timeline=build_timeline(answer),
        recalls=collect_recalls(answer), proofs=rows,
        proof_data={"proofs": proofs, "keys": keys, "trace_code": code, "record": record,
                    "upstream": list(dict.fromkeys(
                        link["trade_id"] for link in answer.get("chain") or []
                        if isinstance(link, dict) and isinstance(link.get("trade_id"), str))),
                    "labels": [f"{r['kind']} {r['record_id']}".strip() for r in rows]})


def _pinned_keys() -> dict[str, str] | None:
    """The ledger keys pinned in ``ledger_keys_file``, or None: never the keys of the
    bridge being checked, which could sign a forged record with keys of its own choosing.
    Without pinned keys the page says that nothing was checked."""
    return current_app.config["PINNED_KEYS"]


@blueprint.get("/stall/<merchant_id>")
def stall(merchant_id: str) -> Any:
    _check_id(merchant_id, "merchant_id")
    try:
        stock = _upstream().stock(merchant_id)
    except UpstreamNotFound:
        raise _not_found("unknown_merchant", f"no stall {merchant_id}",
                         "not_found_stall") from None
    except UpstreamUnavailable as exc:
        raise _unavailable(exc) from None
    page_url = f"{_public_base()}/stall/{quote(merchant_id, safe='')}"
    return render_template("stall.html", merchant_id=merchant_id, stock=stock_rows(stock),
                           merchant=_stall_merchant(stock, merchant_id),
                           qr=qr_svg(page_url, module_px=5, title=merchant_id),
                           page_url=page_url)


def _stall_merchant(stock: Any, merchant_id: str) -> dict[str, Any]:
    merchant = stock.get("merchant") if isinstance(stock, dict) else None
    if isinstance(merchant, dict):
        return merchant
    name = stock.get("name") if isinstance(stock, dict) else None
    return {"merchant_id": merchant_id, "name": name or merchant_id}


@blueprint.get("/sw.js")
def service_worker() -> Any:
    """Served from the root so its scope covers every page; never cached by HTTP, so a new
    release's worker is picked up on the next visit."""
    folder = current_app.static_folder
    if folder is None:
        raise RuntimeError("the consumer app is built with its static folder (create_app)")
    response = send_from_directory(folder, "sw.js",
                                   mimetype="text/javascript", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


@blueprint.get("/scan")
def scan() -> Any:
    settings = current_app.config["TRACEPAY"]
    origins = [_origin(settings["gateway_url"])]
    if settings["public_url"]:
        origins.append(_origin(settings["public_url"]))
    return render_template("scan.html", open_origins=origins)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
