"""Snapshots of every channel call for audit, with secrets removed.

A wrapper around any Transport: the request and the response (or the failure) are handed
to a sink (the gateway stores them in SQLite). Headers that authenticate and JSON fields
that hold secrets are replaced by ``"***"`` before anything leaves this module.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import orjson

from .base import HttpRequest, HttpResponse, Transport

__all__ = ["AuditingTransport", "redact_headers", "redact_body", "SECRET_HEADERS",
           "SECRET_FIELDS"]

SECRET_HEADERS = frozenset({"authorization", "x-signature", "wechatpay-signature",
                            "cookie", "set-cookie", "x-api-key"})
SECRET_FIELDS = frozenset({"sign", "signature", "private_key", "password", "key",
                           "api_v3_key", "device_key", "ciphertext", "secret",
                           "app_private_key", "mqtt_password"})
_FORM_SECRET = re.compile(r"(^|&)(sign|password|key)=[^&]*")

AuditSink = Callable[[dict[str, Any]], None]


def redact_headers(headers: Any) -> dict[str, str]:
    return {name: ("***" if name.lower() in SECRET_HEADERS else str(value))
            for name, value in dict(headers).items()}


def _redact_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: ("***" if key.lower() in SECRET_FIELDS else _redact_value(item))
                for key, item in value.items()}
    if isinstance(value, list):
        return [_redact_value(item) for item in value]
    return value


def redact_body(body: bytes, limit: int = 8192) -> str:
    """JSON bodies with secret fields masked; form bodies with sign/key masked."""
    if not body:
        return ""
    try:
        text = orjson.dumps(_redact_value(orjson.loads(body))).decode()
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace")
        text = _FORM_SECRET.sub(lambda match: f"{match.group(1)}{match.group(2)}=***", text)
    return text[:limit]


class AuditingTransport:
    """Wraps ``inner``; calls ``sink(snapshot)`` after every call, success or failure."""

    def __init__(self, inner: Transport, sink: AuditSink, channel: str) -> None:
        self.inner = inner
        self.sink = sink
        self.channel = channel

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.monotonic()
        snapshot: dict[str, Any] = {
            "channel": self.channel, "method": request.method, "url": request.url,
            "request": orjson.dumps({"headers": redact_headers(request.headers),
                                     "body": redact_body(request.body)}).decode(),
            "at_ms": int(time.time() * 1000),
        }
        try:
            response = self.inner(request)
        except Exception as exc:
            snapshot.update(status=None, response=None, error=str(exc)[:500])
            self._emit(snapshot, started)
            raise
        snapshot.update(status=response.status, error=None, response=orjson.dumps(
            {"headers": redact_headers(response.headers),
             "body": redact_body(response.body)}).decode())
        self._emit(snapshot, started)
        return response

    def _emit(self, snapshot: dict[str, Any], started: float) -> None:
        snapshot["elapsed_ms"] = int((time.monotonic() - started) * 1000)
        self.sink(snapshot)
