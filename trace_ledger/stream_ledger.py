"""The ledger as the bridge sees it when the organisations' nodes order it through JetStream.

Writes go to the ``LEDGER`` stream: ``submit`` checks and queues entries, ``flush``
publishes them in batches of at most ``batch_max`` entries and returns only once JetStream
acknowledged every one (stored on a quorum of the R3 stream). The bridge's writer calls
``flush`` before it commits its index and answers its jobs, so an MQTT trade is
acknowledged only after the publish ack. While the stream cannot take a batch (no quorum,
no server), ``flush`` keeps retrying the same batch (same ``Nats-Msg-Id``, so a publish that
did land is not doubled) and nothing upstream is acknowledged; trades wait in the MQTT
session and the writer's queue until the servers return.

Reads (``locate``, ``get``, ``proof``, ``head``, ...) go to a reader with the interface of
``trace_ledger.node_client.NodeReader``: the nodes hold the blocks, the bridge holds none.

Crash recovery: before each publish run the ledger writes the stream sequence it publishes
after into ``journal_path``. The bridge's index commits after the publish, so after a crash
the only entries that may be on the stream but not in the index are those this bridge
published after that sequence; at start they are read back from the stream, and
:attr:`intake_view` answers ``locate``/``get`` for them from those very entries, so the
intake re-indexes them instead of publishing them again. Every other new record is new
(the index says so), which keeps the nodes off the write path entirely.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from .entries import LedgerEntry, Location, Receipt, StoredEntry
from .stream import MAX_BATCH_BYTES, StreamUnavailableError, batch_body

__all__ = ["StreamLedger", "StreamLedgerClosed"]

log = logging.getLogger(__name__)

#: Headroom under the stream's message limit for the body's envelope.
_BODY_BUDGET = MAX_BATCH_BYTES - 64 * 1024


class StreamLedgerClosed(StreamUnavailableError):
    """The ledger was closed while a batch still waited for the stream."""


class StreamLedger:
    def __init__(self, publisher: Any, reader: Any, *, journal_path: str | os.PathLike[str],
                 batch_max: int = 500,
                 endorse: Callable[[LedgerEntry], str | None] | None = None,
                 retry_initial_s: float = 0.2, retry_max_s: float = 2.0) -> None:
        self.publisher = publisher
        self.reader = reader
        self.batch_max = batch_max
        self.endorse = endorse
        self.journal_path = Path(journal_path)
        self.retry_initial_s, self.retry_max_s = retry_initial_s, retry_max_s
        self._pending: dict[str, LedgerEntry] = {}
        self._closing = threading.Event()
        self.published_batches = 0
        self.published_entries = 0
        self.failed_attempts = 0
        self.unavailable_since: float | None = None
        self.last_error: str | None = None
        self._recovered = self._recover()
        self._last_seq = self.publisher.last_seq()
        self.intake_view = _IntakeView(self)

    # -- recovery ----------------------------------------------------------------------
    def _recover(self) -> dict[str, LedgerEntry]:
        try:
            after = int(orjson.loads(self.journal_path.read_bytes())["published_after_seq"])
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ordering journal %s unreadable (%s); nothing to recover",
                        self.journal_path, exc)
            return {}
        recovered = {entry.record_id: entry
                     for _seq, entries in self.publisher.read_own_batches(after)
                     for entry in entries}
        if recovered:
            log.warning("%d entries published after stream seq %d before a restart; "
                        "the index takes them from the stream", len(recovered), after)
        return recovered

    def _write_journal(self) -> None:
        temporary = self.journal_path.with_suffix(".tmp")
        temporary.write_bytes(orjson.dumps({"published_after_seq": self._last_seq}))
        os.replace(temporary, self.journal_path)

    # -- writes --------------------------------------------------------------------------
    def submit(self, entries: Sequence[LedgerEntry]) -> list[Receipt]:
        """Check and queue ``entries`` (raises LedgerEntryError, nothing queued, for a
        malformed one). ``duplicate``: already queued here; committed duplicates are the
        index's and the nodes' to find. ``refused``: the bridge's own rule said no."""
        for entry in entries:
            entry.check()
        receipts = []
        for entry in entries:
            if entry.record_id in self._pending:
                receipts.append(Receipt(entry.record_id, "duplicate"))
                continue
            reason = self._endorse(entry)
            if reason is not None:
                receipts.append(Receipt(entry.record_id, "refused", {"bridge": reason}))
                continue
            self._pending[entry.record_id] = entry
            receipts.append(Receipt(entry.record_id, "accepted"))
        return receipts

    def _endorse(self, entry: LedgerEntry) -> str | None:
        if self.endorse is None:
            return None
        try:
            return self.endorse(entry)
        except Exception as exc:  # a broken rule refuses, it does not stop the writer
            log.exception("endorsement rule failed for %s", entry.record_id)
            return f"endorsement rule failed: {type(exc).__name__}: {exc}"

    def pending(self) -> int:
        """Entries queued or published but not yet acknowledged by the stream."""
        return len(self._pending)

    def flush(self) -> None:
        """Publish everything queued; return once the stream acknowledged all of it.

        Retries a batch the stream could not take until it can (backing off up to
        ``retry_max_s``); raises :class:`StreamLedgerClosed` if the ledger is closed
        meanwhile and ``StreamError`` for a batch the stream refuses outright.
        """
        if not self._pending:
            return
        self._write_journal()
        acked: list[LedgerEntry] = []
        try:
            for batch in self._batches(list(self._pending.values())):
                sequence = self._publish_until_acked(batch)
                self._last_seq = max(self._last_seq, sequence)
                acked.extend(batch)
                self.published_batches += 1
                self.published_entries += len(batch)
        except BaseException:
            # The writer now fails every job of its batch: none is indexed or acknowledged,
            # and they come again with the redelivery. What the stream took already is
            # remembered like a crash's leftovers, so it is re-indexed, not re-published.
            self._recovered.update((entry.record_id, entry) for entry in acked)
            raise
        finally:
            self._pending.clear()

    def _batches(self, entries: list[LedgerEntry]) -> list[list[LedgerEntry]]:
        """Chunks of at most ``batch_max`` entries and ``_BODY_BUDGET`` bytes, in order.
        Deterministic: the same queue always splits the same way (same ids on a retry)."""
        batches: list[list[LedgerEntry]] = []
        current: list[LedgerEntry] = []
        size = 0
        for entry in entries:
            entry_size = len(orjson.dumps(entry.record)) + 256
            if current and (len(current) >= self.batch_max or size + entry_size > _BODY_BUDGET):
                batches.append(current)
                current, size = [], 0
            current.append(entry)
            size += entry_size
        if current:
            batches.append(current)
        return batches

    def _publish_until_acked(self, batch: list[LedgerEntry]) -> int:
        batch_id, body = batch_body(batch)
        delay = self.retry_initial_s
        while True:
            if self._closing.is_set():
                raise StreamLedgerClosed(f"{batch_id}: closed before the stream took it; "
                                         "nothing was acknowledged")
            try:
                sequence = self.publisher.publish_body(batch_id, body)
            except StreamUnavailableError as exc:
                self.failed_attempts += 1
                if self.unavailable_since is None:
                    self.unavailable_since = time.monotonic()
                self.last_error = str(exc)
                log.warning("ordering unavailable, batch of %d entries waits: %s",
                            len(batch), exc)
                self._closing.wait(delay)
                delay = min(delay * 2, self.retry_max_s)
                continue
            if self.unavailable_since is not None:
                log.warning("ordering back after %.1f s", time.monotonic() - self.unavailable_since)
                self.unavailable_since = None
            return sequence

    def status(self) -> dict[str, Any]:
        """For the bridge's health answer."""
        return {"ordering": "jetstream", "connected": self.publisher.connected,
                "pending": self.pending(), "published_batches": self.published_batches,
                "published_entries": self.published_entries, "last_seq": self._last_seq,
                "failed_attempts": self.failed_attempts,
                "unavailable_s": None if self.unavailable_since is None
                else round(time.monotonic() - self.unavailable_since, 1),
                "last_error": self.last_error}

    def stop_retrying(self) -> None:
        """Make a ``flush`` that waits for the stream give up (shutdown)."""
        self._closing.set()

    def close(self) -> None:
        self._closing.set()
        self.publisher.close()
        close = getattr(self.reader, "close", None)
        if close is not None:
            close()

    # -- reads: the nodes' -------------------------------------------------------------
    def locate(self, key: str) -> list[Location]:
        return self.reader.locate(key)

    def get(self, record_id: str, org: str | None = None) -> StoredEntry | None:
        return self.reader.get(record_id, org) if org else self.reader.get(record_id)

    def proof(self, record_id: str, org: str | None = None) -> Any:
        return self.reader.proof(record_id, org) if org else self.reader.proof(record_id)

    def head(self) -> dict[str, Any]:
        return self.reader.head()

    def block(self, height: int) -> Any:
        return self.reader.block(height)

    def consistency(self, old: int, new: int) -> Any:
        return self.reader.consistency(old, new)

    def ledger_root(self, size: int) -> Any:
        return self.reader.ledger_root(size)

    def public_keys(self) -> dict[str, str]:
        return self.reader.public_keys()


class _IntakeView:
    """What the bridge's intake asks the ledger while it takes a trade in: ``submit``, and
    ``locate``/``get`` for "is this record on the ledger already?". Only entries recovered
    from the stream after a crash can be (the index knows every other one), so those are
    answered from the recovered entries and nothing else reaches the nodes."""

    def __init__(self, ledger: StreamLedger) -> None:
        self._ledger = ledger

    def submit(self, entries: Sequence[LedgerEntry]) -> list[Receipt]:
        return self._ledger.submit(entries)

    def locate(self, key: str) -> list[Location]:
        entry = self._ledger._recovered.get(key)
        return [] if entry is None else [Location(entry.record_id, entry.kind, 0, 0)]

    def get(self, record_id: str, org: str | None = None) -> StoredEntry | None:
        entry = self._ledger._recovered.get(record_id)
        if entry is None:
            return None
        return StoredEntry(record_id=entry.record_id, kind=entry.kind, height=0, index=0,
                           record_hash="", leaf_hash="", trace_keys=list(entry.trace_keys),
                           record=entry.record, record_canonical=None,
                           held_by=entry.visible_to or ())

