"""``GET /q/<token>`` for API clients, served without Flask's request machinery.

The scan landing is the gateway's hot path, and Flask's per-request work (request context,
URL matching, response object, hooks) cost a good part of the CPU of a new scan. This WSGI
wrapper answers a JSON scan itself (``Accept: application/json`` exactly, no query string)
through the same functions the Flask view uses (``scan_outcome`` with its rate limits,
``payment_json``) and writes the same bytes: the same JSON, the same error shapes, the
same headers. Anything else (phones asking for HTML, ``?channel=``, other routes) goes to
Flask untouched.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.http import HTTP_STATUS_CODES

from market_protocol import ApiError
from market_protocol.http_errors import error_body

from .rate_limits import GatewayLimits
from .scan_views import payment_json, scan_outcome
from .wiring import Gateway

__all__ = ["ScanLane"]

log = logging.getLogger("market_protocol.http_errors")  # where Flask's handler logs too

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# A token as the QR codec writes it (base64url): anything else is left to Flask's routing.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,4096}")


def _flask_json(value: dict[str, Any]) -> bytes:
    """What Flask's ``jsonify`` writes in this app (compact, keys in order, newline)."""
    return (json.dumps(value, separators=(",", ":"), sort_keys=False) + "\n").encode()


class ScanLane:
    """Wraps the Flask app's ``wsgi_app``."""

    def __init__(self, flask_wsgi: WSGIApp, gw: Gateway, limits: GatewayLimits) -> None:
        self.flask_wsgi = flask_wsgi
        self.gw = gw
        self.limits = limits

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if (not path.startswith("/q/") or environ.get("REQUEST_METHOD") != "GET"
                or environ.get("HTTP_ACCEPT") != "application/json"
                or environ.get("QUERY_STRING") or environ.get("SCRIPT_NAME")
                or not _TOKEN.fullmatch(path, 3)):
            return self.flask_wsgi(environ, start_response)
        retry_after = None
        try:
            outcome = scan_outcome(self.gw, path[3:], environ.get("HTTP_USER_AGENT"), None,
                                   limits=self.limits,
                                   client=environ.get("REMOTE_ADDR") or "unknown")
            if outcome.payment is None:
                status = 300
                body = _flask_json({"status": "choose_channel",
                                    "channels": sorted(self.gw.channels),
                                    "amount_fen": outcome.payload.amount_fen,
                                    "currency": outcome.payload.currency})
            else:
                status, body = 200, payment_json(self.gw, outcome)
        except ApiError as exc:
            status, body = exc.status, _flask_json(error_body(exc.code, exc.message,
                                                              **exc.extra))
            retry_after = exc.extra.get("retry_after_s")
        except Exception:
            log.exception("unhandled error")
            status, body = 500, _flask_json(error_body("internal_error",
                                                       "an internal error occurred"))
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                   ("X-Content-Type-Options", "nosniff")]
        if status == 429:
            headers.append(("Retry-After", str(retry_after or 1)))
        start_response(f"{status} {HTTP_STATUS_CODES[status].upper()}", headers)
        return [body]
