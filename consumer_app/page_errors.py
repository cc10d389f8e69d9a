"""Errors on shopper pages: a friendly page for a phone, the agreed JSON for a program.

A browser asks for ``text/html`` first, so it gets a page in its own language with a way
on. Anything else -- curl, a test, a Node-RED flow -- gets ``{"error", "message"}`` with
the same 4xx. Bad input defaults to JSON and an unknown id to the friendly page when the
client states no preference (``Accept: */*``).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from market_protocol.http_errors import error_body

__all__ = ["PageError", "install_page_errors", "wants_html"]


class PageError(Exception):
    """Raise from a view: ``status`` and machine ``code``, ``message`` for programs and logs,
    ``title_key``/``text_key`` (i18n keys) for the page a shopper sees."""

    def __init__(self, status: int, code: str, message: str, *, title_key: str,
                 text_key: str | None = None, html_by_default: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.title_key = title_key
        self.text_key = text_key
        self.html_by_default = html_by_default


def wants_html(html_by_default: bool) -> bool:
    accept = request.accept_mimetypes
    html, json_q = accept["text/html"], accept["application/json"]
    explicit_html = any(mime == "text/html" for mime, _ in accept)
    explicit_json = any(mime == "application/json" for mime, _ in accept)
    if explicit_html and html > json_q:
        return True
    if explicit_json and json_q > html:
        return False
    if explicit_html and not explicit_json:
        return True
    return html_by_default and not explicit_json


def _render(error: PageError) -> Response:
    if wants_html(error.html_by_default):
        response = make_response(render_template("error.html", error=error), error.status)
        response.headers["Content-Type"] = "text/html; charset=utf-8"
        return response
    response = jsonify(error_body(error.code, error.message))
    response.status_code = error.status
    return response


def install_page_errors(app: Flask) -> None:
    @app.errorhandler(PageError)
    def _page_error(error: PageError) -> Any:
        return _render(error)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        code = (exc.name or "error").lower().replace(" ", "_")
        title = "not_found_title" if status == 404 else "bad_request_title"
        response = _render(PageError(status, code, exc.description or exc.name,
                                     title_key=title,
                                     text_key="not_found_page" if status == 404 else None,
                                     html_by_default=status == 404))
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        app.logger.exception("unhandled error")
        return jsonify(error_body("internal_error", "an internal error occurred")), 500
