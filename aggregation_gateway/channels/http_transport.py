"""The real Transport: ``requests`` with one pooled session per thread.

Keep-alive matters under load: a new TCP connection per channel call would double the
scan landing's latency.
"""

from __future__ import annotations

import threading

import requests

from .base import ChannelError, HttpRequest, HttpResponse

__all__ = ["RequestsTransport"]


class RequestsTransport:
    """Callable Transport; network failures become ``ChannelError('unreachable', ...)``."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False  # loopback only: never route through a proxy
        return session

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            response = self._session().request(request.method, request.url,
                                               headers=dict(request.headers),
                                               data=request.body or None,
                                               timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise ChannelError("unreachable", f"{request.method} {request.url}: "
                               f"{type(exc).__name__}") from exc
        return HttpResponse(response.status_code, dict(response.headers), response.content)
