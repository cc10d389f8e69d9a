"""Reading and checking request input for the bridge's HTTP API: every problem becomes an
``ApiError`` with a 4xx and a message that says what was expected."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, overload

import orjson
from flask import Response, request

from market_protocol.http_errors import ApiError

__all__ = ["json_body", "object_body", "check_id", "int_arg", "epoch_field", "fast_json",
           "midnight_ms"]

_ID_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-")


def json_body() -> Any:
    raw = request.get_data(cache=False)
    if not raw:
        raise ApiError(400, "malformed_json", "the request body is empty; send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "malformed_json", f"the body is not JSON: {exc}") from exc


def object_body() -> dict[str, Any]:
    body = json_body()
    if not isinstance(body, dict):
        raise ApiError(400, "malformed_json", "the body must be a JSON object")
    return body


def check_id(value: str, what: str) -> str:
    if not value or len(value) > 64 or not set(value) <= _ID_CHARS:
        raise ApiError(400, f"bad_{what}", f"{what} must be 1-64 of letters, digits, _ . : -")
    return value


def int_arg(name: str, default: int, lo: int, hi: int) -> int:
    text = request.args.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise ApiError(400, "bad_parameter", f"{name} must be between {lo} and {hi}")
    return value


@overload
def epoch_field(body: Mapping[str, Any], name: str, *, required: Literal[True]) -> int: ...
@overload
def epoch_field(body: Mapping[str, Any], name: str, *, required: bool) -> int | None: ...
def epoch_field(body: Mapping[str, Any], name: str, *, required: bool) -> int | None:
    """``body[name]`` as epoch milliseconds; None when absent and not ``required``.
    Raises ValueError (the caller picks the error code)."""
    value = body.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be epoch milliseconds")
    return value


def fast_json(body: Any) -> Response:
    """orjson for the large, hot answers (a trace with its proofs)."""
    return Response(orjson.dumps(body), mimetype="application/json")


def midnight_ms() -> int:
    """Start of today in the bridge's local time zone: "today's stock" is a market day."""
    today = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    return int(today.timestamp() * 1000)
