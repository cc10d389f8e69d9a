"""The one JSON error shape every tracepay HTTP service answers with.

``{"error": code, "message": text}`` with the right 4xx; unexpected failures become a 500
with a generic message (the traceback goes to the log, never to the client).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # flask is imported where the handlers are installed, not on import
    from flask.typing import ResponseReturnValue

__all__ = ["ApiError", "install_json_errors", "error_body"]

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Raise from a view to answer ``status`` with ``{"error": code, "message": message}``."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "message": message, **extra}


def install_json_errors(app: Any) -> None:
    """Register handlers on a Flask app so every error is JSON of the agreed shape."""
    from flask import jsonify
    from werkzeug.exceptions import HTTPException, MethodNotAllowed

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> ResponseReturnValue:
        return jsonify(error_body(exc.code, exc.message, **exc.extra)), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> ResponseReturnValue:
        code = (exc.name or "error").lower().replace(" ", "_")
        response = jsonify(error_body(code, exc.description or exc.name))
        response.status_code = exc.code or 500
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        log.exception("unhandled error")
        return jsonify(error_body("internal_error", "an internal error occurred")), 500
