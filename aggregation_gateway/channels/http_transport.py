"""The real Transport: ``http.client`` with kept-alive connections, one set per thread.

Keep-alive matters under load (a new TCP connection per channel call would add a round
trip to every scan), and ``http.client`` costs a fraction of ``requests`` per call. A
kept-alive connection the server has since closed is retried once on a fresh one: every
channel call is idempotent by its merchant-side number (order, refund), so a retry cannot
charge or refund twice.
"""

from __future__ import annotations

import http.client
import socket
import threading
from urllib.parse import urlsplit

from .base import ChannelError, HttpRequest, HttpResponse

__all__ = ["KeepAliveTransport"]

_STALE = (http.client.RemoteDisconnected, http.client.BadStatusLine, BrokenPipeError,
          ConnectionResetError, ConnectionAbortedError)


class _OneWriteConnection(http.client.HTTPConnection):
    """Sends a request's head and a small body in ONE write. ``http.client`` writes them
    separately, which costs the server an extra wake-up and read per request (and, with
    Nagle off, an extra packet); the channel calls' bodies are a few hundred bytes."""

    def _send_output(self, message_body: object = None, encode_chunked: bool = False
                     ) -> None:
        if isinstance(message_body, bytes) and not encode_chunked:
            self._buffer.extend((b"", b""))
            head = b"\r\n".join(self._buffer)
            del self._buffer[:]
            self.send(head + message_body)
            return
        super()._send_output(message_body, encode_chunked)


class _OneWriteHTTPSConnection(http.client.HTTPSConnection, _OneWriteConnection):
    """The same for TLS (the real channels)."""


class KeepAliveTransport:
    """Callable Transport; network failures become ``ChannelError('unreachable', ...)``."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._local = threading.local()

    def _connection(self, scheme: str, netloc: str) -> tuple[http.client.HTTPConnection, bool]:
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        key = (scheme, netloc)
        if key in pool:
            return pool[key], True
        kind = _OneWriteHTTPSConnection if scheme == "https" else _OneWriteConnection
        connection = kind(netloc, timeout=self.timeout)
        connection.connect()
        # Small request, small answer: do not let Nagle wait for the peer's delayed ACK.
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pool[key] = connection
        return connection, False

    def _drop(self, scheme: str, netloc: str) -> None:
        connection = self._local.pool.pop((scheme, netloc), None)
        if connection is not None:
            connection.close()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        parts = urlsplit(request.url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        for attempt in (1, 2):
            reused = False
            try:
                connection, reused = self._connection(parts.scheme, parts.netloc)
                connection.request(request.method, target, body=request.body or None,
                                   headers=dict(request.headers))
                response = connection.getresponse()
                body = response.read()
            except _STALE as exc:
                self._drop(parts.scheme, parts.netloc)
                if reused and attempt == 1:
                    continue
                raise ChannelError("unreachable", f"{request.method} {request.url}: "
                                   f"{type(exc).__name__}") from exc
            except (OSError, http.client.HTTPException) as exc:
                self._drop(parts.scheme, parts.netloc)
                raise ChannelError("unreachable", f"{request.method} {request.url}: "
                                   f"{type(exc).__name__}") from exc
            if response.will_close:
                self._drop(parts.scheme, parts.netloc)
            return HttpResponse(response.status, dict(response.getheaders()), body)
        raise AssertionError("unreachable")  # pragma: no cover
