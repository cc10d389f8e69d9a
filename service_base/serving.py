"""Serve a WSGI app with a production server.

granian (a Rust HTTP server with a WSGI interface, pre-forked workers) when more than one
worker is asked for; waitress (threads, pure Python) for one. granian parses HTTP and
writes answers outside the interpreter: on the scan landing it costs about a third of the
CPU per request that gunicorn's threaded workers did, which is what lets two cores carry
the gateway and the payment platform together. Background work (MQTT links, sweepers)
must not live in the WSGI app object when workers > 1: each worker would run its own copy.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable
from typing import Any

__all__ = ["serve_wsgi", "GRACEFUL_STOP_S"]

log = logging.getLogger(__name__)

GRACEFUL_STOP_S = 5
"""How long a stopping worker may finish the requests it holds before it is killed."""

# granian's own records go to the root logger (stderr, the service's format) instead of its
# default stdout handler; no access log (a line per request costs CPU and says nothing
# the payment records do not).
_GRANIAN_LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"_granian": {"handlers": [], "propagate": True},
                "granian.access": {"handlers": [], "propagate": False, "level": "WARNING"}},
}


def serve_wsgi(app_factory: Callable[[], Any], host: str, port: int, *, workers: int = 1,
               threads: int = 8, post_fork: Callable[[], None] | None = None) -> None:
    """Run until SIGTERM/SIGINT, then return. ``app_factory`` is called once per worker
    process (``post_fork`` first, in the worker, when given)."""
    if workers > 1:
        _serve_granian(app_factory, host, port, workers, threads, post_fork)
        return
    from waitress import serve

    if post_fork is not None:
        post_fork()
    serve(app_factory(), host=host, port=port, threads=threads, ident="tracepay",
          channel_timeout=30, connection_limit=1000)


def _serve_granian(app_factory: Callable[[], Any], host: str, port: int, workers: int,
                   threads: int, post_fork: Callable[[], None] | None) -> None:
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server import Server

    # Workers must be forked: the loader below is a closure over this process's objects
    # (settings, keys), which a spawned interpreter could not receive. This process does
    # nothing but supervise workers from here on, so the choice is ours to make.
    if multiprocessing.get_start_method(allow_none=True) != "fork":
        multiprocessing.set_start_method("fork", force=True)

    def loader(*_args: Any, **_kwargs: Any) -> Any:
        if post_fork is not None:
            post_fork()
        return app_factory()

    server = Server(
        "tracepay", address=host, port=port, interface=Interfaces.WSGI, workers=workers,
        blocking_threads=max(1, threads), backlog=2048, log_level=LogLevels.warning,
        log_dictconfig=_GRANIAN_LOGGING, log_access=False,
        # A worker that dies is started again (granian logs the exit); one dying again
        # within seconds of its restart stops the server instead of looping.
        respawn_failed_workers=True, workers_kill_timeout=GRACEFUL_STOP_S)
    server.serve(target_loader=loader, wrap_loader=False)
