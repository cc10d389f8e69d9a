"""Work that must run exactly once per gateway, whatever the number of HTTP workers:
the MQTT link with its outbox publisher, and the sweeper of pending orders.

``Background`` runs them as threads; the CLI runs it in its own supervised process when
gunicorn serves several workers, or in the server's process when there is one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from .mqtt_link import MqttLink
from .payments import PaymentService

__all__ = ["Background", "Sweeper"]

log = logging.getLogger(__name__)


class Sweeper:
    """Queries pending orders and expires stale ones every ``sweep_interval_s``."""

    def __init__(self, service: PaymentService, interval: float) -> None:
        self.service = service
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                counts = self.service.sweep()
                if counts["expired"]:
                    log.info("sweeper expired %d order(s)", counts["expired"])
            except Exception:
                log.exception("sweep failed; retrying")

    def start(self) -> Sweeper:
        self._thread = threading.Thread(target=self._run, name="sweeper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)


class Background:
    def __init__(self, service: PaymentService, settings: Mapping[str, Any]) -> None:
        self.sweeper = Sweeper(service, settings["sweep_interval_s"])
        self.link = MqttLink(service, settings) if settings.get("mqtt_host") else None

    def start(self) -> Background:
        self.sweeper.start()
        if self.link:
            self.link.start()
        return self

    def stop(self) -> None:
        self.sweeper.stop()
        if self.link:
            self.link.stop()
