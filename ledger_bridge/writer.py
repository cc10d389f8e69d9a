"""The bridge's single writer: every change to the ledger and the index runs on one thread.

Jobs (a trade from MQTT or HTTP, a rapid test, a device enrolment) queue up; the writer takes
as many as are waiting, runs them inside one index transaction (each job in its own
savepoint), cuts the ledger's blocks, then commits the index. Only then is each job
answered, so an MQTT message is acknowledged after its entries are on disk in every node,
and batching many waiting trades into one block is what makes the bridge fast under load.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from .trace_store import TraceStore

__all__ = ["Writer", "WriterStopped"]

log = logging.getLogger(__name__)


class WriterStopped(RuntimeError):
    pass


class Writer:
    def __init__(self, ledger: Any, store: TraceStore, *, max_batch: int = 500) -> None:
        self.ledger = ledger
        self.store = store
        self.max_batch = max_batch
        self._jobs: queue.Queue[tuple[Callable[[], Any], Future] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="bridge-writer", daemon=True)
        self._stopped = False
        self.batches = 0

    def start(self) -> Writer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._jobs.put(None)
        self._thread.join(timeout)

    def submit(self, job: Callable[[], Any]) -> Future:
        """Queue ``job``; its future resolves once the job's writes are committed."""
        if self._stopped:
            raise WriterStopped("the bridge is shutting down")
        future: Future = Future()
        self._jobs.put((job, future))
        return future

    def call(self, job: Callable[[], Any], timeout: float = 60.0) -> Any:
        return self.submit(job).result(timeout)

    def backlog(self) -> int:
        return self._jobs.qsize()

    def _take(self) -> list[tuple[Callable[[], Any], Future]] | None:
        first = self._jobs.get()
        if first is None:
            return None
        jobs = [first]
        while len(jobs) < self.max_batch:
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._jobs.put(None)
                break
            jobs.append(item)
        return jobs

    def _run(self) -> None:
        while True:
            jobs = self._take()
            if jobs is None:
                return
            results: list[tuple[Future, Any, BaseException | None]] = []
            try:
                with self.store.batch():
                    for job, future in jobs:
                        try:
                            with self.store.savepoint():
                                results.append((future, job(), None))
                        except Exception as exc:  # one bad job must not sink the batch
                            results.append((future, None, exc))
                    self.ledger.flush()
            except Exception as exc:
                log.exception("a batch of %d jobs could not be committed", len(jobs))
                for _job, future in jobs:
                    future.set_exception(exc)
                continue
            self.batches += 1
            for future, result, error in results:
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(result)
