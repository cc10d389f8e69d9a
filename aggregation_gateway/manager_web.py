"""Manager web pages: login, terminals (enrol, revoke, rotate), live payments, per-vendor
daily settlement with CSV and chart, T+1 reconciliation, the channel-call audit log.

Sessions are server-side (``web_sessions``); every form, the login form included,
carries Flask-WTF's CSRF token (checked by ``CSRFProtect`` before any view runs).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, g, jsonify, redirect, render_template, request, url_for

from market_protocol import ApiError, format_fen

from .alerts import open_alerts
from .channels.base import ChannelError
from .payment_states import FINAL_PAID
from .requests_in import check_manager_login, gateway
from .settlement import MISMATCH_KINDS, settlement_csv, settlement_svg
from .settlement_store import open_items, parse_day, run_reconciliation, vendor_day
from .web_sessions import COOKIE, create_session, end_session, load_session

__all__ = ["blueprint"]

blueprint = Blueprint("manager", __name__, url_prefix="/manager")


def _session() -> dict[str, Any] | None:
    return load_session(gateway().db, request.cookies.get(COOKIE))


@blueprint.before_request
def _require_login() -> Any:
    if request.endpoint in ("manager.login", "manager.login_post"):
        return None
    session = _session()
    if session is None:
        if request.path.endswith(".json") or request.path.endswith(".csv"):
            raise ApiError(401, "unauthorized", "log in at /manager/login")
        return redirect(url_for("manager.login"))
    g.manager = session
    return None


@blueprint.after_request
def _no_cache(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def _render(template: str, **context: Any) -> str:
    return render_template(template, manager=g.get("manager"), format_fen=format_fen,
                           **context)


# -- login --------------------------------------------------------------------------------
@blueprint.get("/login")
def login() -> Any:
    return Response(render_template("manager_login.html", error=None, manager=None))


@blueprint.post("/login")
def login_post() -> Any:
    username = request.form.get("username", "")[:64]
    password = request.form.get("password", "")[:256]
    gw = gateway()
    if not username or not password or not check_manager_login(username, password):
        return Response(render_template("manager_login.html",
                                        error="Wrong user name or password.",
                                        manager=None), status=401)
    session_id = create_session(gw.db, username, gw.settings["session_lifetime_s"])
    response = redirect(url_for("manager.dashboard"), code=303)
    response.set_cookie(COOKIE, session_id, httponly=True, samesite="Strict", path="/manager",
                        secure=gw.settings["public_url"].startswith("https://"))
    return response


@blueprint.post("/logout")
def logout() -> Any:
    end_session(gateway().db, request.cookies.get(COOKIE))
    response = redirect(url_for("manager.login"), code=303)
    response.delete_cookie(COOKIE, path="/manager")
    return response


# -- terminals and payments ---------------------------------------------------------------
@blueprint.get("/")
def dashboard() -> Any:
    gw = gateway()
    return _render("manager_dashboard.html", devices=gw.registry.all(),
                   alerts=open_alerts(gw.db), notice=request.args.get("notice"))


@blueprint.post("/devices")
def enrol() -> Any:
    body = {key: request.form.get(key, "").strip() for key in
            ("merchant_id", "merchant_name", "org", "device_id")}
    if not body["device_id"]:
        body.pop("device_id")
    result = gateway().registry.enrol(body)
    return _render("manager_code.html", result=result, action="Enrolled")


@blueprint.post("/devices/<device_id>/revoke")
def revoke(device_id: str) -> Any:
    gw = gateway()
    gw.registry.revoke(device_id)
    orders = gw.sweeps.close_device_orders(device_id)
    notice = f"{device_id} revoked; {orders['closed']} open order(s) closed"
    return redirect(url_for("manager.dashboard", notice=notice), code=303)


@blueprint.post("/devices/<device_id>/rotate")
def rotate(device_id: str) -> Any:
    result = gateway().registry.rotate(device_id)
    return _render("manager_code.html", result=result, action="New key for")


@blueprint.get("/payments.json")
def payments_json() -> Any:
    rows = gateway().db.conn.execute(
        "SELECT p.payment_id, p.device_id, p.merchant_id, m.name AS merchant_name, p.order_no,"
        " p.amount_fen, p.refunded_fen, p.status, p.channel, p.created_at_ms, p.paid_at_ms, "
        "p.updated_at_ms, EXISTS (SELECT 1 FROM sales s WHERE s.device_id = p.device_id AND "
        "s.seq = p.order_no AND s.voided_at_ms IS NOT NULL) AS sale_voided "
        "FROM payments p LEFT JOIN merchants m USING (merchant_id) "
        "ORDER BY p.updated_at_ms DESC LIMIT 50").fetchall()
    payments = [dict(row) for row in rows]
    for payment in payments:
        # Paid at the platform before the void reached us: the money moved, so the payment
        # stands, and the manager is asked to refund it.
        payment["sale_voided"] = bool(payment["sale_voided"])
        payment["needs_refund"] = (payment["sale_voided"] and payment["status"] in FINAL_PAID
                                   and payment["refunded_fen"] < payment["amount_fen"])
    return jsonify(payments=payments)


@blueprint.get("/audit")
def audit() -> Any:
    """The latest channel calls, as stored for audit (secrets already removed)."""
    calls = gateway().db.conn.execute(
        "SELECT id, channel, method, url, status, error, at_ms, elapsed_ms, request, response "
        "FROM channel_calls ORDER BY id DESC LIMIT 100").fetchall()
    return _render("manager_audit.html", calls=[dict(call) for call in calls])


# -- settlement and reconciliation --------------------------------------------------------
def _day() -> Any:
    text = request.args.get("date") or request.form.get("date")
    if not text:
        return datetime.now(UTC).date()
    try:
        return parse_day(text)
    except ValueError as exc:
        raise ApiError(400, "bad_date", f"date must be YYYY-MM-DD: {exc}") from None


@blueprint.get("/settlement")
def settlement() -> Any:
    day = _day()
    rows = vendor_day(gateway(), day)
    return _render("manager_settlement.html", day=day.isoformat(), rows=rows,
                   chart=settlement_svg(rows), previous=(day - timedelta(days=1)).isoformat())


@blueprint.get("/settlement.csv")
def settlement_export() -> Any:
    day = _day()
    body = settlement_csv(day.isoformat(), vendor_day(gateway(), day))
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="settlement-{day.isoformat()}.csv"'})


@blueprint.get("/reconciliation")
def reconciliation() -> Any:
    return _render("manager_reconciliation.html", day=_day().isoformat(), result=None,
                   items=open_items(gateway()), kinds=MISMATCH_KINDS, error=None)


@blueprint.post("/reconciliation")
def reconciliation_run() -> Any:
    day = _day()
    try:
        result = run_reconciliation(gateway(), day)
        error = None
    except ChannelError as exc:
        result, error = None, f"The statement could not be fetched: {exc.code}"
    if request.args.get("format") == "json":
        if result is None:
            raise ApiError(502, "statement_unavailable", error or "no statement")
        return jsonify(matched=result.matched, resolved=result.resolved,
                       carried=result.carried, mismatches=[m.__dict__ for m in
                                                           result.mismatches])
    return _render("manager_reconciliation.html", day=day.isoformat(), result=result,
                   items=open_items(gateway()), kinds=MISMATCH_KINDS, error=error)
