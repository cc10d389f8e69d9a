"""Printing from the screens: the job runs on its own thread (a printer may take seconds or
time out) and its outcome comes back to the Kivy thread as a ``Notice``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..printer import PrinterError
from ..terminal import TerminalError
from .messages import Notice, service_notice

__all__ = ["print_in_background"]


def print_in_background(job: Callable[[], Any], on_done: Callable[[Notice], None]) -> None:
    """Run ``job``; call ``on_done`` (from the job's thread: hop with Clock) with ``printed``
    or ``print_failed`` and the reason."""
    def run() -> None:
        try:
            job()
            notice = Notice("printed")
        except (PrinterError, TerminalError) as exc:
            notice = service_notice("print_failed", exc)
        on_done(notice)
    threading.Thread(target=run, name="print", daemon=True).start()
