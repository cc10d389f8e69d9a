"""The bridge's side of ``bench/ledger_cluster.py``: hands entry groups to the bridge's
``StreamLedger`` a writer batch at a time, and remembers per batch when it was handed over
and the last stream sequence its flush was acknowledged at.

Timed per batch: ``submit`` (the ledger's own checks of each entry), ``flush`` (cutting
the queue into messages, encoding them, publishing), and inside flush every publish from
hand-over to JetStream's acknowledgement (``publish_body``, through a wrapper that only
reads the clock around the production call).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from trace_ledger import LedgerEntry
from trace_ledger.stream import StreamPublisher

__all__ = ["TimedPublisher", "Batch", "Intake"]


class TimedPublisher:
    """Wraps the publisher to time every publish from hand-over to JetStream's ack."""

    def __init__(self, publisher: StreamPublisher) -> None:
        self.publisher = publisher
        self.latencies_ms: list[float] = []
        self.acked_seq = 0

    def publish_body(self, batch_id: str, body: bytes) -> int:
        started = time.perf_counter()
        try:
            sequence = self.publisher.publish_body(batch_id, body)
        finally:
            self.latencies_ms.append((time.perf_counter() - started) * 1000)
        self.acked_seq = max(self.acked_seq, sequence)
        return sequence

    def __getattr__(self, name: str) -> Any:
        return getattr(self.publisher, name)


@dataclass(frozen=True, slots=True)
class Batch:
    handed_at: float   # perf_counter when the batch's first trade was submitted
    acked_at: float    # perf_counter when flush returned (every message acknowledged)
    last_seq: int      # the stream sequence of its last message
    trades: int        # trades handed over so far, this batch included


@dataclass
class Intake:
    """Feeds ``ledger`` (a ``StreamLedger`` over a :class:`TimedPublisher`)."""

    ledger: Any
    timed: TimedPublisher
    batches: list[Batch] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=lambda: {"submit": 0.0, "flush": 0.0})

    def hand_over(self, groups: Sequence[list[LedgerEntry]]) -> Batch:
        handed = time.perf_counter()
        for group in groups:
            self.ledger.submit(group)
        submitted = time.perf_counter()
        self.ledger.flush()
        acked = time.perf_counter()
        self.seconds["submit"] += submitted - handed
        self.seconds["flush"] += acked - submitted
        total = (self.batches[-1].trades if self.batches else 0) + len(groups)
        batch = Batch(handed, acked, self.timed.acked_seq, total)
        self.batches.append(batch)
        return batch

    def run(self, groups: Sequence[list[LedgerEntry]], batch: int,
            rate: float | None = None) -> list[Batch]:
        """Hand ``groups`` over ``batch`` at a time: as fast as the stream takes them, or
        paced at ``rate`` trades/s (a batch's slot is fixed by the clock, so a stall is
        followed by catching up, as trades waiting at a bridge would be)."""
        started, out = time.perf_counter(), []
        for start in range(0, len(groups), batch):
            if rate:
                delay = started + start / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            out.append(self.hand_over(groups[start:start + batch]))
        return out

    def trades_at(self, seq: int) -> int:
        """Trades of the batches wholly at or before stream sequence ``seq``."""
        seqs = [b.last_seq for b in self.batches]
        index = bisect.bisect_right(seqs, seq)
        return self.batches[index - 1].trades if index else 0
