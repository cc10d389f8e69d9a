"""Delivers payment notifications to merchants, retried on the schedule until acknowledged.

Deliveries live in SQLite (enqueued in the same transaction as the payment), so they
survive a restart. Exactly one ``Notifier`` must run per data directory: the CLI starts it
in its own process, never inside HTTP workers. A delivery counts as acknowledged only on
HTTP 200 with body ``success``; anything else (other status, other body, timeout, refused
connection) is recorded as a failed attempt and retried after the next delay.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from market_protocol import signing

from .store import Store, now_ms

__all__ = ["Notifier", "ACK_BODY"]

log = logging.getLogger(__name__)

ACK_BODY = b"success"
EXCERPT_CHARS = 200


class Notifier:
    """A polling loop plus a few delivery threads; ``start()`` / ``stop()``."""

    def __init__(self, store: Store, key: Ed25519PrivateKey, schedule: tuple[float, ...], *,
                 timeout: float = 5.0, poll_interval: float = 0.2, workers: int = 4) -> None:
        if not schedule:
            raise ValueError("a notify schedule needs at least one delay")
        self.store = store
        self.key = key
        self.schedule = schedule
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.workers = workers
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._slots = threading.BoundedSemaphore(workers)
        self._local = threading.local()

    def start(self) -> Notifier:
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="sandbox-notify")
        self._thread = threading.Thread(target=self._run, name="sandbox-notifier", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 5)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> None:
        lease_ms = int(self.timeout * 1000) + 10_000
        while not self._stop.is_set():
            try:
                free = self._free_slots()
                due = self.store.claim_due(now_ms(), lease_ms, limit=free) if free else []
            except Exception:  # noqa: BLE001 - a locked or busy file must not kill the loop
                log.exception("could not read pending notifications")
                due = []
            for row in due:
                self._slots.acquire()
                assert self._pool is not None
                self._pool.submit(self._deliver_and_release, row)
            if not due:
                self._stop.wait(self.poll_interval)

    def _free_slots(self) -> int:
        free = 0
        while self._slots.acquire(blocking=False):
            free += 1
        for _ in range(free):
            self._slots.release()
        return free

    def _deliver_and_release(self, row: dict[str, Any]) -> None:
        try:
            self.deliver(row)
        except Exception:  # noqa: BLE001 - keep the pool alive; the lease retries it
            log.exception("notification %s failed unexpectedly", row["notify_id"])
        finally:
            self._slots.release()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # never route notifications through an env proxy
            self._local.session = session
        return session

    def deliver(self, row: dict[str, Any]) -> bool:
        """One attempt; records it and schedules the next. True when acknowledged."""
        attempt = row["attempts"] + 1
        body = bytes(row["body"])
        headers = {"Content-Type": "application/json", "X-Signature": signing.sign(self.key, body),
                   "X-Notify-Id": row["notify_id"], "X-Notify-Attempt": str(attempt)}
        status: int | None = None
        excerpt: str | None = None
        error: str | None = None
        try:
            response = self._session().post(row["notify_url"], data=body, headers=headers,
                                            timeout=self.timeout, allow_redirects=False)
            status = response.status_code
            excerpt = response.content[:EXCERPT_CHARS].decode("utf-8", "replace")
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"[:EXCERPT_CHARS]
        delivered = status == 200 and (excerpt or "").strip().encode() == ACK_BODY
        next_at = None
        if not delivered and attempt < len(self.schedule):
            next_at = now_ms() + int(self.schedule[attempt] * 1000)
        self.store.record_attempt(row["notify_id"], attempt, http_status=status,
                                  excerpt=excerpt, error=error, delivered=delivered,
                                  next_attempt_at_ms=next_at)
        if delivered:
            log.info("notification %s delivered on attempt %d", row["notify_id"], attempt)
        elif next_at is None:
            log.warning("notification %s given up after %d attempts", row["notify_id"], attempt)
        return delivered
