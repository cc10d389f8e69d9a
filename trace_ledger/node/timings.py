"""Where a node's time goes: seconds spent per stage of following the stream, summed since
the process started, served on ``/healthz`` so an operator (or a benchmark) can see whether
a slow node waits on the stream, validates, builds and signs blocks, or writes its store.

Stages: ``fetch`` (waiting for the next messages from JetStream), ``parse`` (decoding the
batch), ``validate`` (duplicate lookup and every entry's rules), ``block`` (Merkle tree,
Bloom filter, key index, header, this node's signature), ``store`` (the SQLite commit),
``ack`` (JetStream's answer to the acknowledgement); ``contract`` is the part of
``validate`` spent on the gateway-signed trades (schema, signature, amounts, device). One
clock read per stage per message (per trade for ``contract``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["StageTimings", "STAGES"]

STAGES = ("fetch", "parse", "validate", "contract", "block", "store", "ack")


class StageTimings:
    """Summed seconds per stage, plus messages and entries seen; safe to read from any
    thread while the follower adds to it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds = dict.fromkeys(STAGES, 0.0)
        self.messages = 0
        self.entries = 0

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._seconds[stage] += seconds

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def count(self, entries: int) -> None:
        with self._lock:
            self.messages += 1
            self.entries += entries

    def as_dict(self) -> dict[str, object]:
        with self._lock:
            return {"messages": self.messages, "entries": self.entries,
                    "seconds": {stage: round(value, 4) for stage, value in self._seconds.items()}}
