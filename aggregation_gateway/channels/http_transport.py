"""The real Transport: HTTP/1.1 over kept-alive connections, one set per thread.

Keep-alive matters under load (a new TCP connection per channel call would add a round
trip to every scan). Plain ``http://`` (the sandbox platform on loopback, one call per
new scan) goes through a small HTTP/1.1 client of our own: it sends exactly the bytes
``http.client`` sends (request line, ``Host``, ``Accept-Encoding: identity``,
``Content-Length``, then the caller's headers) in ONE write, and reads the answer with
C-level ``readline``/``read`` calls instead of ``http.client``'s ``email`` header parser,
which cost a few tenths of a millisecond of CPU per call. ``https://`` (the real channels)
stays on ``http.client`` with TLS. A kept-alive connection the server has since closed is
retried once on a fresh one: every channel call is idempotent by its merchant-side number
(order, refund), so a retry cannot charge or refund twice.
"""

from __future__ import annotations

import http.client
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

from .base import ChannelError, HttpRequest, HttpResponse

__all__ = ["KeepAliveTransport"]

_MAX_LINE = 65536
_MAX_HEADERS = 100
_NO_BODY_STATUS = frozenset({204, 304})
_METHODS_WITH_BODY = frozenset({"PATCH", "POST", "PUT"})


class _Stale(Exception):
    """A kept-alive connection the server closed before answering (retry once)."""


class _BadResponse(Exception):
    """An answer that is not well-formed HTTP/1.x."""


_STALE = (_Stale, http.client.RemoteDisconnected, http.client.BadStatusLine,
          BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class _OneWriteConnection(http.client.HTTPConnection):
    """Sends a request's head and a small body in ONE write. ``http.client`` writes them
    separately, which costs the server an extra wake-up and read per request (and, with
    Nagle off, an extra packet)."""

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
    """TLS (the real channels)."""


def _host_header(host: str, port: int) -> str:
    """What ``http.client`` writes as ``Host``: the port only when it is not 80."""
    if ":" in host:
        host = f"[{host}]"
    return host if port == 80 else f"{host}:{port}"


def _header_line(name: str, value: str) -> bytes:
    if "\r" in name or "\n" in name or ":" in name or "\r" in value or "\n" in value:
        raise ChannelError("bad_request", f"header {name!r} cannot be sent")
    return f"{name}: {value}\r\n".encode("latin-1")


class _PlainConnection:
    """One kept-alive plain-HTTP connection: the head and body in one write, the answer
    read through a buffered reader."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host = _host_header(host, port)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        # Small request, small answer: do not let Nagle wait for the peer's delayed ACK.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def head(self, method: str, target: str, headers: dict[str, str], body: bytes
             ) -> bytes:
        """The request's head, byte for byte what ``http.client`` sends."""
        names = {name.lower() for name in headers}
        lines = [f"{method} {target} HTTP/1.1\r\n".encode("ascii")]
        if "host" not in names:
            lines.append(f"Host: {self.host}\r\n".encode("ascii"))
        if "accept-encoding" not in names:
            lines.append(b"Accept-Encoding: identity\r\n")
        if "content-length" not in names and (body or method in _METHODS_WITH_BODY):
            lines.append(b"Content-Length: %d\r\n" % len(body))
        lines.extend(_header_line(name, value) for name, value in headers.items())
        lines.append(b"\r\n")
        return b"".join(lines)

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def exchange(self, method: str, target: str, headers: dict[str, str], body: bytes
                 ) -> tuple[int, dict[str, str], bytes, bool]:
        """(status, headers, body, will_close) of one request on this connection."""
        self.write(self.head(method, target, headers, body) + body)
        return self._read_response(method)

    def _line(self) -> bytes:
        line = self.reader.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise _BadResponse("line too long")
        return line

    def _read_response(self, method: str) -> tuple[int, dict[str, str], bytes, bool]:
        first = True
        while True:
            status_line = self._line()
            if not status_line:
                # Nothing at all: the server closed a kept-alive connection.
                raise _Stale("connection closed before an answer") if first else \
                    _BadResponse("connection closed after an interim answer")
            first = False
            version, _, rest = status_line.partition(b" ")
            code = rest[:3]
            if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
                raise _BadResponse(f"bad status line {status_line[:40]!r}")
            status = int(code)
            received: dict[str, str] = {}
            lowered: dict[str, str] = {}
            for _ in range(_MAX_HEADERS + 1):
                line = self._line()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, colon, value = line.partition(b":")
                if not colon or not name or name[:1] in (b" ", b"\t"):
                    raise _BadResponse(f"bad header line {line[:40]!r}")
                text_name = name.decode("latin-1")
                text_value = value.strip().decode("latin-1")
                received[text_name] = text_value
                lowered[text_name.lower()] = text_value
            else:
                raise _BadResponse("too many headers")
            if 100 <= status < 200:
                continue  # an interim answer (100 Continue): the real one follows
            break
        connection = lowered.get("connection", "").lower()
        will_close = ("close" in connection or (version == b"HTTP/1.0"
                                                 and "keep-alive" not in connection))
        if method == "HEAD" or status in _NO_BODY_STATUS:
            return status, received, b"", will_close
        if "chunked" in lowered.get("transfer-encoding", "").lower():
            return status, received, self._read_chunked(), will_close
        length = lowered.get("content-length")
        if length is None:
            return status, received, self.reader.read(), True  # until the server closes
        length = length.strip()
        if not (length.isascii() and length.isdigit()):
            raise _BadResponse("bad Content-Length")
        size = int(length)
        data = self.reader.read(size)
        if len(data) != size:
            raise _BadResponse(f"answer cut short ({len(data)} of {size} bytes)")
        return status, received, data, will_close

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size_text = self._line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _BadResponse("bad chunk size") from None
            if size < 0 or size_text.startswith((b"+", b"-")):
                raise _BadResponse("bad chunk size")
            if size == 0:
                while self._line() not in (b"\r\n", b"\n", b""):
                    pass  # trailers: none are used
                return b"".join(parts)
            chunk = self.reader.read(size + 2)
            if len(chunk) != size + 2 or not chunk.endswith(b"\r\n"):
                raise _BadResponse("chunk cut short")
            parts.append(chunk[:-2])


class KeepAliveTransport:
    """Callable Transport; network failures become ``ChannelError('unreachable', ...)``."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._local = threading.local()

    def _connection(self, scheme: str, netloc: str) -> tuple[Any, bool]:
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        key = (scheme, netloc)
        if key in pool:
            return pool[key], True
        if scheme == "http":
            parts = urlsplit(f"http://{netloc}")
            connection: Any = _PlainConnection(parts.hostname or "", parts.port or 80,
                                               self.timeout)
        else:
            connection = _OneWriteHTTPSConnection(netloc, timeout=self.timeout)
            connection.connect()
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pool[key] = connection
        return connection, False

    def _drop(self, scheme: str, netloc: str) -> None:
        connection = self._local.pool.pop((scheme, netloc), None)
        if connection is not None:
            connection.close()

    def _exchange(self, connection: Any, request: HttpRequest, target: str
                  ) -> tuple[int, dict[str, str], bytes, bool]:
        if isinstance(connection, _PlainConnection):
            return connection.exchange(request.method, target, dict(request.headers),
                                       request.body or b"")
        connection.request(request.method, target, body=request.body or None,
                           headers=dict(request.headers))
        response = connection.getresponse()
        body = response.read()
        return response.status, dict(response.getheaders()), body, response.will_close

    def __call__(self, request: HttpRequest) -> HttpResponse:
        parts = urlsplit(request.url)
        if parts.scheme not in ("http", "https"):
            raise ChannelError("bad_request", f"cannot call {request.url}")
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        for attempt in (1, 2):
            reused = False
            try:
                connection, reused = self._connection(parts.scheme, parts.netloc)
                status, headers, body, will_close = self._exchange(connection, request,
                                                                   target)
            except _STALE as exc:
                self._drop(parts.scheme, parts.netloc)
                if reused and attempt == 1:
                    continue
                raise ChannelError("unreachable", f"{request.method} {request.url}: "
                                   f"{type(exc).__name__}") from exc
            except (OSError, http.client.HTTPException, _BadResponse) as exc:
                self._drop(parts.scheme, parts.netloc)
                raise ChannelError("unreachable", f"{request.method} {request.url}: "
                                   f"{type(exc).__name__}") from exc
            if will_close:
                self._drop(parts.scheme, parts.netloc)
            return HttpResponse(status, headers, body)
        raise AssertionError("unreachable")  # pragma: no cover
