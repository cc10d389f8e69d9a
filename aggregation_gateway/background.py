"""Work that must run exactly once per gateway, whatever the number of HTTP workers:
the MQTT link with its outbox publisher, the sweeper of pending orders and the daily
T+1 reconciliation.

``Background`` runs them as threads; the CLI runs it in its own supervised process when
granian serves several workers, or in the server's process when there is one.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from datetime import UTC, date, datetime, timedelta

from .channels.base import ChannelError
from .instances import registered_gateway_users
from .mqtt_link import MqttLink
from .order_sweeps import OrderSweeps
from .refunds import Refunds
from .settlement_store import reconciled, run_reconciliation
from .wiring import Gateway

__all__ = ["Background", "Sweeper", "DailyReconciler", "AuthFileSync"]

log = logging.getLogger(__name__)


class _PeriodicThread:
    """Calls ``tick`` every ``interval`` seconds on a daemon thread until stopped; an error
    in one tick is logged and the next tick tries again."""

    name = "periodic"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:
                log.exception("%s failed; retrying", self.name)

    def start(self) -> _PeriodicThread:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)


class Sweeper(_PeriodicThread):
    """Queries pending orders and expires stale ones every ``sweep_interval_s``."""

    name = "sweeper"

    def __init__(self, service: OrderSweeps, interval: float,
                 refunds: Refunds | None = None) -> None:
        super().__init__(interval)
        self.service = service
        self.refunds = refunds

    def tick(self) -> None:
        if self.refunds is not None:
            settled = self.refunds.sweep()
            if settled:
                log.info("sweeper settled %d refund(s) whose answer was lost", settled)
        counts = self.service.sweep()
        if counts["expired"]:
            log.info("sweeper expired %d order(s)", counts["expired"])


class DailyReconciler(_PeriodicThread):
    """T+1: once a day, after the platform's statement for yesterday is final, reconcile."""

    name = "reconciler"

    def __init__(self, gateway: Gateway, check_interval: float = 300.0) -> None:
        super().__init__(check_interval)
        self.gateway = gateway

    def due(self, now: datetime) -> date | None:
        """Yesterday, when it is late enough today and it was not reconciled yet."""
        settings = self.gateway.settings
        if not settings["auto_reconcile"] or "sandbox" not in self.gateway.channels:
            return None
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        if (now - midnight).total_seconds() < settings["reconcile_after_s"]:
            return None
        yesterday = (midnight - timedelta(days=1)).date()
        return None if reconciled(self.gateway, yesterday) else yesterday

    def run_once(self, now: datetime | None = None) -> bool:
        day = self.due(now or datetime.now(UTC))
        if day is None:
            return False
        try:
            result = run_reconciliation(self.gateway, day)
        except ChannelError as exc:
            log.warning("T+1 reconciliation of %s failed: %s; will retry", day, exc.code)
            return False
        log.info("T+1 reconciliation of %s: %d matched, %d mismatch(es)", day,
                 result.matched, len(result.mismatches))
        return True

    def tick(self) -> None:
        self.run_once()


class AuthFileSync(_PeriodicThread):
    """Several instances on one database: a device enrolled or revoked through another
    instance, or a new instance, reaches this one's broker files within ``interval``
    (the instance that made the change wrote its own files at once)."""

    name = "broker-files"

    def __init__(self, gateway: Gateway, interval: float = 2.0) -> None:
        super().__init__(interval)
        self.gateway = gateway
        self._last: str | None = None

    def tick(self) -> None:
        users = self.gateway.registry.mqtt_users()
        instances = registered_gateway_users(self.gateway.db)
        digest = hashlib.sha256(repr((sorted(users), instances)).encode()).hexdigest()
        if digest != self._last:
            self.gateway.write_mqtt_auth()
            self._last = digest


class Background:
    def __init__(self, gateway: Gateway) -> None:
        settings = gateway.settings
        self.sweeper = Sweeper(gateway.sweeps, settings["sweep_interval_s"], gateway.refunds)
        self.reconciler = DailyReconciler(gateway)
        self.link = MqttLink(gateway.payments, settings) if settings.get("mqtt_host") else None
        shared = gateway.db.dialect == "postgresql"
        files = settings.get("mosquitto_password_file") or settings.get("mosquitto_acl_file")
        self.auth_sync = AuthFileSync(gateway) if shared and files else None

    def _threads(self) -> list[_PeriodicThread | MqttLink]:
        return [part for part in (self.sweeper, self.reconciler, self.auth_sync, self.link)
                if part is not None]

    def start(self) -> Background:
        for part in self._threads():
            part.start()
        return self

    def stop(self) -> None:
        for part in self._threads():
            part.stop()
