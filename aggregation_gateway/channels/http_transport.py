"""The real Transport: urllib3's connection pools, kept alive between channel calls.

Keep-alive matters under load (a new TCP connection per channel call would add a round
trip to every scan), and urllib3 is the pooled, thread-safe HTTP/1.1 client that
``requests`` itself stands on: TLS verification, chunked and close-delimited answers and
stale pooled connections are its job, not ours. A kept-alive connection the server has
since closed is retried once on a fresh one: every channel call is idempotent by its
merchant-side number (order, refund), so a retry cannot charge or refund twice. A call
that timed out is not retried: the platform is slow, not gone, and the caller settles the
unknown outcome by querying (a refund stays ``processing``). Every network failure, and an answer that is not HTTP, becomes
``ChannelError("unreachable")``: the outcome is unknown, never a definite refusal.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import urllib3
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import HTTPError, ReadTimeoutError
from urllib3.response import BaseHTTPResponse

from .base import ChannelError, HttpRequest, HttpResponse

__all__ = ["KeepAliveTransport"]

#: Connections kept per platform host: about one per gateway thread calling it at once.
POOL_SIZE = 16


class _RetryStaleOnly(urllib3.Retry):
    """urllib3's retry, except after a read timeout: that one is raised at once."""

    def increment(self, method: str | None = None, url: str | None = None,
                  response: BaseHTTPResponse | None = None, error: Exception | None = None,
                  _pool: ConnectionPool | None = None,
                  _stacktrace: TracebackType | None = None) -> Self:
        if isinstance(error, ReadTimeoutError):
            raise error
        return super().increment(method, url, response, error, _pool, _stacktrace)


class KeepAliveTransport:
    """Callable Transport over one ``urllib3.PoolManager`` (thread-safe)."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._pools = urllib3.PoolManager(
            num_pools=8, maxsize=POOL_SIZE, block=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            # One retry, only for a connection that failed before an answer began (a stale
            # kept-alive one); never for an HTTP status, never a redirect followed.
            retries=_RetryStaleOnly(total=1, connect=1, read=1, status=0, redirect=0,
                                    other=0, allowed_methods=None, raise_on_status=False))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        parts = urlsplit(request.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ChannelError("bad_request", f"cannot call {request.url}", definite=True)
        for name, value in request.headers.items():
            if any(c in f"{name}{value}" for c in "\r\n\0"):
                raise ChannelError("bad_request", f"header {name!r} cannot be sent",
                                   definite=True)
        try:
            answer = self._pools.request(request.method, request.url,
                                         body=request.body or None,
                                         headers=dict(request.headers), redirect=False,
                                         preload_content=True, decode_content=False)
        except (HTTPError, OSError, ValueError) as exc:
            raise ChannelError("unreachable", f"{request.method} {request.url}: "
                               f"{type(exc).__name__}") from exc
        return HttpResponse(answer.status, dict(answer.headers.items()), answer.data)
