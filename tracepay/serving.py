"""Serve a WSGI app with a production server.

gunicorn (pre-fork) when more than one worker is asked for and gunicorn imports; waitress
(threads, pure Python) otherwise. Background work (MQTT links, sweepers) must not live in
the WSGI app object when workers > 1: each worker would run its own copy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

__all__ = ["serve_wsgi"]

log = logging.getLogger(__name__)


def serve_wsgi(app_factory: Callable[[], Any], host: str, port: int, *, workers: int = 1,
               threads: int = 8, post_fork: Callable[[], None] | None = None) -> None:
    """Run until SIGTERM/SIGINT. ``app_factory`` is called once per worker process."""
    if workers > 1:
        try:
            from gunicorn.app.base import BaseApplication
        except ImportError:  # pragma: no cover - gunicorn is a dependency
            BaseApplication = None  # type: ignore[assignment,misc]
        if BaseApplication is not None:
            _serve_gunicorn(BaseApplication, app_factory, host, port, workers, threads,
                            post_fork)
            return
    from waitress import serve

    serve(app_factory(), host=host, port=port, threads=threads, ident="tracepay",
          channel_timeout=30, connection_limit=1000)


def _serve_gunicorn(base: type, app_factory: Callable[[], Any], host: str, port: int,
                    workers: int, threads: int, post_fork: Callable[[], None] | None) -> None:
    class _App(base):  # type: ignore[misc,valid-type]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread" if threads > 1 else "sync")
            self.cfg.set("accesslog", None)
            self.cfg.set("errorlog", "-")
            self.cfg.set("loglevel", "warning")
            self.cfg.set("graceful_timeout", 5)
            self.cfg.set("backlog", 2048)
            if post_fork is not None:
                self.cfg.set("post_fork", lambda _server, _worker: post_fork())

        def load(self) -> Any:
            return app_factory()

    _App().run()
