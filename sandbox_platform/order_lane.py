"""``POST /v1/orders`` served without Flask's request machinery (the hot path).

Order creation is the one call every scan makes, and Flask's per-request work (request
context, URL matching, response object, hooks) cost about as much CPU as the order's own
checks and SQLite write. This WSGI wrapper answers that one route itself through the same
functions the Flask view uses (``authenticate``, ``order_creation``) and writes the same
bytes: the same JSON, the same error shapes, the same ``X-Signature``. Anything it cannot
answer exactly like Flask (another route or method, a query string, a chunked body, a
body over the size limit) goes to Flask untouched.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.sansio.utils import get_current_url, get_host

from market_protocol import canonical_json, signing
from market_protocol.http_errors import ApiError, error_body

from .api import order_creation
from .request_auth import authenticate
from .state import PlatformState

__all__ = ["OrderLane"]

log = logging.getLogger("market_protocol.http_errors")  # where Flask's handler logs too

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _header_getter(environ: dict[str, Any]) -> Callable[[str], str | None]:
    def header(name: str) -> str | None:
        return environ.get("HTTP_" + name.upper().replace("-", "_"))
    return header


def _error_json(exc: ApiError) -> bytes:
    """What Flask's ``jsonify`` writes for the error (compact, sorted keys, newline)."""
    body = error_body(exc.code, exc.message, **exc.extra)
    return (json.dumps(body, separators=(",", ":"), sort_keys=True) + "\n").encode()


class OrderLane:
    """Wraps the Flask app's ``wsgi_app``."""

    def __init__(self, flask_wsgi: WSGIApp, state: PlatformState, max_body: int) -> None:
        self.flask_wsgi = flask_wsgi
        self.state = state
        self.max_body = max_body

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        # No Content-Length and no Transfer-Encoding: HTTP/1.1 says there is no body.
        length = environ.get("CONTENT_LENGTH") or "0"
        if (environ.get("PATH_INFO") != "/v1/orders" or environ.get("REQUEST_METHOD") != "POST"
                or environ.get("QUERY_STRING") or environ.get("SCRIPT_NAME")
                or not (length.isascii() and length.isdigit())
                or int(length) > self.max_body
                or environ.get("HTTP_TRANSFER_ENCODING")):
            return self.flask_wsgi(environ, start_response)
        raw_body = environ["wsgi.input"].read(int(length)) if length != "0" else b""
        try:
            app = authenticate(self.state.store, "POST", "/v1/orders", "",
                               _header_getter(environ), raw_body, defer_nonce=True)
            view, status = order_creation(self.state, app, raw_body,
                                          lambda: self._host_url(environ))
            body = canonical_json.dumps(view)
        except ApiError as exc:
            status, body = exc.status, _error_json(exc)
        except Exception:
            log.exception("unhandled error")
            status, body = 500, _error_json(ApiError(500, "internal_error",
                                                     "an internal error occurred"))
        start_response(f"{status} {HTTP_STATUS_CODES[status].upper()}", [
            ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
            ("X-Signature", signing.sign(self.state.key, body))])
        return [body]

    @staticmethod
    def _host_url(environ: dict[str, Any]) -> str:
        return _host_url(environ.get("wsgi.url_scheme", "http"), environ.get("HTTP_HOST"),
                         _server(environ))


@lru_cache(maxsize=256)
def _host_url(scheme: str, host_header: str | None,
              server: tuple[str, int | None] | None) -> str:
    """``request.host_url``, by werkzeug's own functions (a pure function of these three,
    kept: callers ask with the same few hosts over and over)."""
    return get_current_url(scheme, get_host(scheme, host_header, server))


def _server(environ: dict[str, Any]) -> tuple[str, int | None] | None:
    """``request.server``: SERVER_NAME and SERVER_PORT (None for a Unix socket)."""
    name = environ.get("SERVER_NAME")
    if name is None:
        return None
    try:
        return name, int(environ.get("SERVER_PORT"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return name, None
