"""The terminal's SQLite outbox: every sale is committed here before its QR is shown.

A sale row moves ``queued`` -> ``sent`` when the broker acknowledges it (PUBACK), so a
crash, a power cut or a broker that is down for days loses nothing: whatever is still
``queued`` is published again later. Rows are never deleted; the sequence number is the
primary key, so the next number and the queued rows are index look-ups, not scans, however
many sales are waiting.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from market_protocol import canonical_json
from service_base.sqlite_schema import add_column_if_missing, migrate

__all__ = ["Outbox", "OutboxError", "StoredSale", "FINAL_STATUSES", "OUTBOX_FILE"]

OUTBOX_FILE = "outbox.sqlite"
#: Payment statuses after which the customer display stops waiting.
FINAL_STATUSES = frozenset({"paid", "failed", "expired", "refunded", "partially_refunded"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sales (
    seq INTEGER PRIMARY KEY,
    sale_id TEXT NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL,
    total_fen INTEGER NOT NULL,
    record BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'sent')),
    sent_at_ms INTEGER,
    sale_status TEXT NOT NULL DEFAULT 'open',
    payment_status TEXT,
    payment_id TEXT,
    refunded_fen INTEGER NOT NULL DEFAULT 0,
    payment_updated_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS sales_queued ON sales(seq) WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS sales_created ON sales(created_at_ms);
CREATE INDEX IF NOT EXISTS sales_sent_at ON sales(sent_at_ms) WHERE sent_at_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    request_key TEXT NOT NULL UNIQUE,
    body BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'refused')),
    created_at_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    answer TEXT
);
CREATE INDEX IF NOT EXISTS requests_queued ON requests(id) WHERE state = 'queued';
"""

#: Versioned schema (service_base.sqlite_schema): append steps, never edit a shipped one.
_MIGRATIONS = (
    _SCHEMA,
    # The receipt's paid channel; outboxes opened by the release that added it have it.
    add_column_if_missing("sales", "payment_channel", "TEXT"),
)


class OutboxError(ValueError):
    """A request the outbox refuses (unknown sale, voiding a paid sale, ...)."""


@dataclass(frozen=True, slots=True)
class StoredSale:
    seq: int
    sale_id: str
    created_at_ms: int
    total_fen: int
    record: dict[str, Any]
    state: str
    sale_status: str
    payment_status: str | None
    payment_id: str | None
    refunded_fen: int
    #: The channel that took the payment (``wechatpay``, ``cash``, ...), once known.
    payment_channel: str | None = None

    @property
    def final(self) -> bool:
        return self.sale_status == "void" or self.payment_status in FINAL_STATUSES


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Outbox:
    """One connection, guarded by a lock: the UI thread charges, the uplink thread marks sent.

    ``synchronous=FULL`` so a committed sale survives a power cut, not only a crash.
    """

    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        if synchronous not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}")
        self._synchronous = synchronous
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute("PRAGMA busy_timeout=5000")
        migrate(self._db, _MIGRATIONS, name=f"outbox {self.path}")
        self._lock = threading.RLock()
        self._queued = self._scalar("SELECT COUNT(*) FROM sales WHERE state = 'queued'")
        self._sent = self._scalar("SELECT COUNT(*) FROM sales WHERE state = 'sent'")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _scalar(self, sql: str, *args: Any) -> Any:
        row = self._db.execute(sql, args).fetchone()
        return row[0] if row else None

    # -- sales ---------------------------------------------------------------------------
    def add(self, build: Callable[[int], dict[str, Any]], *,
            paid_by: Callable[[dict[str, Any]], str | None] = lambda record: None
            ) -> dict[str, Any]:
        """Allocate the next seq, build the record with it and commit it in one transaction.

        ``paid_by(record)`` names the channel that already took the money (``cash``), so
        the sale is stored paid in the same transaction: a crash cannot leave a cash sale
        looking unpaid. Any result from the gateway (``updated_at_ms`` >= 0) supersedes it.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                seq = (self._scalar("SELECT MAX(seq) FROM sales") or 0) + 1
                record = build(seq)
                if record["seq"] != seq:
                    raise OutboxError(f"record seq {record['seq']} != allocated {seq}")
                self._insert(record)
                channel = paid_by(record)
                if channel is not None:
                    self._db.execute("UPDATE sales SET payment_status = 'paid', payment_channel"
                                     " = ?, payment_updated_at_ms = 0 WHERE seq = ?",
                                     (channel, seq))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._queued += 1
            return record

    def add_many(self, records: Iterable[dict[str, Any]]) -> int:
        """Insert ready-made records in one transaction (imports and benchmarks)."""
        count = 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for record in records:
                    self._insert(record)
                    count += 1
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._queued += count
        return count

    def next_seq(self) -> int:
        with self._lock:
            return (self._scalar("SELECT MAX(seq) FROM sales") or 0) + 1

    def _insert(self, record: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO sales (seq, sale_id, created_at_ms, total_fen, record, state,"
            " sale_status) VALUES (?, ?, ?, ?, ?, 'queued', ?)",
            (record["seq"], record["sale_id"], record["created_at_ms"], record["total_fen"],
             canonical_json.dumps(record), record.get("status", "open")))

    def queued_after(self, after_seq: int, limit: int) -> list[tuple[int, bytes]]:
        """Queued ``(seq, payload)`` with seq > ``after_seq``, oldest first (index range)."""
        with self._lock:
            return self._db.execute(
                "SELECT seq, record FROM sales WHERE state = 'queued' AND seq > ?"
                " ORDER BY seq LIMIT ?", (after_seq, limit)).fetchall()

    def mark_sent(self, seqs: Iterable[int]) -> int:
        """Mark a batch acknowledged in one transaction; already-sent rows are left alone."""
        seqs = list(seqs)
        if not seqs:
            return 0
        now = _now_ms()
        with self._lock:
            # A lost "sent" mark only means one more re-send (consumers dedup), so these
            # commits skip the fsync that every new sale gets.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                changed = 0
                for start in range(0, len(seqs), 500):
                    chunk = seqs[start:start + 500]
                    marks = ",".join("?" * len(chunk))
                    cursor = self._db.execute(
                        f"UPDATE sales SET state = 'sent', sent_at_ms = ? WHERE seq IN ({marks})"
                        " AND state = 'queued'", (now, *chunk))
                    changed += cursor.rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                self._db.execute(f"PRAGMA synchronous={self._synchronous}")
            self._queued -= changed
            self._sent += changed
            return changed

    def requeue_sent_since(self, since_ms: int) -> int | None:
        """Queue again every sale acknowledged at or after ``since_ms``; returns the lowest
        seq queued again (None if none).

        A broker that crashes loses what it acknowledged but had neither saved nor passed
        on; re-sending that window after a reconnect closes the gap (consumers dedup)."""
        with self._lock:
            low = self._scalar("SELECT MIN(seq) FROM sales WHERE sent_at_ms >= ?", since_ms)
            if low is None:
                return None
            self._db.execute("UPDATE sales SET state = 'queued', sent_at_ms = NULL"
                             " WHERE sent_at_ms >= ?", (since_ms,))
            self._queued, self._sent = self._recount()
            return low

    def requeue(self, seq: int, record: dict[str, Any]) -> None:
        """Replace a sale's record (a void) and queue it to be sent again."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE sales SET record = ?, sale_status = ?, state = 'queued', sent_at_ms = NULL"
                " WHERE seq = ?", (canonical_json.dumps(record), record.get("status", "open"), seq))
            if cursor.rowcount != 1:
                raise OutboxError(f"no sale with seq {seq}")
            self._queued, self._sent = self._recount()

    def _recount(self) -> tuple[int, int]:
        rows = dict(self._db.execute("SELECT state, COUNT(*) FROM sales GROUP BY state").fetchall())
        return rows.get("queued", 0), rows.get("sent", 0)

    def counts(self) -> dict[str, int]:
        """Kept in memory (this process owns the file), so the status bar costs no query."""
        with self._lock:
            return {"queued": self._queued, "sent": self._sent}

    def record_result(self, result: dict[str, Any]) -> tuple[StoredSale | None, bool]:
        """Store a verified payment result against its sale (by seq).

        Returns ``(sale, changed)``. Older results (by ``updated_at_ms``) never overwrite
        newer ones, so a re-delivered or late message cannot turn "paid" back into "pending".
        """
        with self._lock:
            row = self._db.execute(
                "SELECT payment_status, payment_updated_at_ms, refunded_fen FROM sales"
                " WHERE seq = ?", (result["seq"],)).fetchone()
            if row is None:
                return None, False
            status, updated, refunded = row
            newer = updated is None or result["updated_at_ms"] >= updated
            changed = newer and (status, refunded) != (result["status"],
                                                       result.get("refunded_fen", 0))
            if newer:
                self._db.execute(
                    "UPDATE sales SET payment_status = ?, payment_id = ?, refunded_fen = ?,"
                    " payment_updated_at_ms = ?, payment_channel = ? WHERE seq = ?",
                    (result["status"], result["payment_id"], result.get("refunded_fen", 0),
                     result["updated_at_ms"], result.get("channel"), result["seq"]))
            return self.by_seq(result["seq"]), changed

    def awaiting_result(self, since_ms: int, limit: int) -> list[int]:
        """Seqs of sales made since ``since_ms`` that still wait for a final payment
        result (newest first): what to ask the gateway about when MQTT is down. Voided
        sales are asked about too: the shopper may have paid before the void arrived."""
        finals = ", ".join(f"'{status}'" for status in sorted(FINAL_STATUSES))
        with self._lock:
            rows = self._db.execute(
                f"SELECT seq FROM sales WHERE created_at_ms >= ? "
                f"AND (payment_status IS NULL OR payment_status NOT IN ({finals})) "
                f"ORDER BY seq DESC LIMIT ?", (since_ms, limit)).fetchall()
        return [row[0] for row in rows]

    def by_seq(self, seq: int) -> StoredSale | None:
        with self._lock:
            row = self._db.execute(_SELECT + " WHERE seq = ?", (seq,)).fetchone()
        return _stored(row) if row else None

    def by_sale_id(self, sale_id: str) -> StoredSale | None:
        with self._lock:
            row = self._db.execute(_SELECT + " WHERE sale_id = ?", (sale_id,)).fetchone()
        return _stored(row) if row else None

    def since(self, since_ms: int, until_ms: int | None = None) -> list[StoredSale]:
        """Sales created in ``[since_ms, until_ms)``, oldest first (index range on time)."""
        until_ms = 2**62 if until_ms is None else until_ms
        with self._lock:
            rows = self._db.execute(
                _SELECT + " WHERE created_at_ms >= ? AND created_at_ms < ? ORDER BY seq",
                (since_ms, until_ms)).fetchall()
        return [_stored(row) for row in rows]

    def unsent_since(self, since_ms: int) -> int:
        with self._lock:
            return self._scalar("SELECT COUNT(*) FROM sales WHERE state = 'queued'"
                                " AND created_at_ms >= ?", since_ms)

    # -- requests to the gateway over HTTP (refunds) --------------------------------------
    def add_request(self, kind: str, request_key: str, body: dict[str, Any]) -> bool:
        """Queue a request once per key; False when that key was queued before."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO requests (kind, request_key, body, state, created_at_ms)"
                " VALUES (?, ?, ?, 'queued', ?)",
                (kind, request_key, canonical_json.dumps(body), _now_ms()))
            return cursor.rowcount == 1

    def queued_requests(self, limit: int = 50) -> list[tuple[int, str, dict[str, Any]]]:
        with self._lock:
            rows = self._db.execute("SELECT id, kind, body FROM requests WHERE state = 'queued'"
                                    " ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [(row[0], row[1], canonical_json.loads(row[2])) for row in rows]

    def finish_request(self, request_id: int, state: str, answer: str) -> None:
        with self._lock:
            self._db.execute("UPDATE requests SET state = ?, answer = ?, attempts = attempts + 1"
                             " WHERE id = ?", (state, answer, request_id))

    def retry_request(self, request_id: int, answer: str) -> None:
        with self._lock:
            self._db.execute("UPDATE requests SET attempts = attempts + 1, answer = ?"
                             " WHERE id = ?", (answer, request_id))

    def request(self, request_key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT kind, body, state, attempts, answer FROM requests"
                                   " WHERE request_key = ?", (request_key,)).fetchone()
        if row is None:
            return None
        return {"kind": row[0], "body": canonical_json.loads(row[1]), "state": row[2],
                "attempts": row[3], "answer": row[4]}


_SELECT = ("SELECT seq, sale_id, created_at_ms, total_fen, record, state, sale_status,"
           " payment_status, payment_id, refunded_fen, payment_channel FROM sales")


def _stored(row: tuple[Any, ...]) -> StoredSale:
    return StoredSale(row[0], row[1], row[2], row[3], canonical_json.loads(row[4]), row[5],
                      row[6], row[7], row[8], row[9], row[10])
