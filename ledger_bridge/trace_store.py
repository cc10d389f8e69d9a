"""The bridge's own index: devices, parties, catalogue, lots, allocations and rapid tests.

The ledger holds the records and proves them; this SQLite file (WAL) answers the questions
matching and tracing ask many times a second: which lots does this vendor still hold, which
sale lines drew on this lot, which party pays with this account. Everything here can be
re-derived from the ledger's records; it is kept so that a trace is a few index lookups.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trace_ledger.rules.allocation import LineAllocation, Lot
from trace_ledger.rules.contract import DeviceRecord

from .catalogue import CatalogueEntry

__all__ = ["TraceStore", "STORE_FILE"]

STORE_FILE = "bridge.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL, enrolled_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER, source TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS parties (
    merchant_id TEXT PRIMARY KEY, name TEXT NOT NULL, org TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS payer_ids (
    payer_id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL REFERENCES parties(merchant_id));
CREATE TABLE IF NOT EXISTS catalogue (code TEXT PRIMARY KEY, entry TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trades (
    trade_id TEXT PRIMARY KEY, trace_code TEXT NOT NULL UNIQUE, seller TEXT NOT NULL,
    buyer TEXT, sold_at_ms INTEGER NOT NULL, public TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS trades_seller ON trades(seller, sold_at_ms);
CREATE INDEX IF NOT EXISTS trades_buyer ON trades(buyer, sold_at_ms);
CREATE TABLE IF NOT EXISTS lines (
    lot_id TEXT PRIMARY KEY, trade_id TEXT NOT NULL, line INTEGER NOT NULL,
    seller TEXT NOT NULL, buyer TEXT, product TEXT NOT NULL, measure TEXT NOT NULL,
    amount INTEGER NOT NULL, remaining INTEGER NOT NULL, received_at_ms INTEGER NOT NULL,
    label TEXT, origin TEXT);
CREATE INDEX IF NOT EXISTS lines_label ON lines(label);
CREATE INDEX IF NOT EXISTS lines_stock ON lines(buyer, product, measure, remaining);
CREATE TABLE IF NOT EXISTS allocations (
    lot_id TEXT PRIMARY KEY, holder TEXT NOT NULL, unmatched INTEGER NOT NULL,
    finding INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS draws (
    lot_id TEXT NOT NULL, source_lot_id TEXT NOT NULL, amount INTEGER NOT NULL,
    PRIMARY KEY (lot_id, source_lot_id));
CREATE INDEX IF NOT EXISTS draws_source ON draws(source_lot_id);
CREATE TABLE IF NOT EXISTS rapid_tests (
    test_id TEXT NOT NULL, lot_id TEXT NOT NULL, result TEXT NOT NULL,
    record TEXT NOT NULL, tested_at_ms INTEGER NOT NULL, PRIMARY KEY (test_id, lot_id));
CREATE INDEX IF NOT EXISTS rapid_tests_lot ON rapid_tests(lot_id);
CREATE TABLE IF NOT EXISTS rejected (
    record_id TEXT PRIMARY KEY, trade_id TEXT, code TEXT NOT NULL, reason TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL);
"""


def _lot(row: sqlite3.Row) -> Lot:
    return Lot(row["lot_id"], row["buyer"], row["product"], row["measure"], row["amount"],
               row["remaining"], row["received_at_ms"], row["label"])


class TraceStore:
    """One writer connection, used by the bridge's single writer thread inside ``batch()``;
    every other thread reads through its own connection and so sees only committed batches.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._local = threading.local()
        self._lock = threading.RLock()
        self._batch_thread: int | None = None
        self._conns: list[sqlite3.Connection] = []
        #: The writer's memory of devices (read per trade by the contract and each node).
        self._devices: dict[str, DeviceRecord | None] = {}
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = self._connect()
            self._writer.execute("PRAGMA journal_mode=WAL")
            self._writer.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                   check_same_thread=False, isolation_level=None)
        else:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=10000")
        self._conns.append(conn)
        return conn

    def close(self) -> None:
        for conn in self._conns:
            conn.close()
        self._conns.clear()

    def _conn(self) -> sqlite3.Connection:
        if self._batch_thread == threading.get_ident():
            return self._writer
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for a batch of writes; rolled back if the block holding them
        could not be committed, so the index never runs ahead of the ledger."""
        with self._lock:
            self._writer.execute("BEGIN IMMEDIATE")
            self._batch_thread = threading.get_ident()
            try:
                yield
            except BaseException:
                self._writer.execute("ROLLBACK")
                self._devices.clear()
                raise
            else:
                self._writer.execute("COMMIT")
            finally:
                self._batch_thread = None

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Undo one job's writes inside a batch when that job fails."""
        db = self._writer
        db.execute("SAVEPOINT job")
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK TO job")
            db.execute("RELEASE job")
            self._devices.clear()
            raise
        db.execute("RELEASE job")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Writes: part of the current batch on the writer thread, else their own."""
        if self.readonly:
            raise RuntimeError(f"{self.path} is open read-only")
        if self._batch_thread == threading.get_ident():
            yield self._writer
            return
        with self.batch():
            yield self._writer

    def _all(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return self._conn().execute(sql, tuple(args)).fetchall()

    def _one(self, sql: str, args: Iterable[Any] = ()) -> sqlite3.Row | None:
        return self._conn().execute(sql, tuple(args)).fetchone()

    # devices -------------------------------------------------------------------------
    def device(self, device_id: str) -> DeviceRecord | None:
        writer = self._batch_thread == threading.get_ident()
        if writer and device_id in self._devices:
            return self._devices[device_id]
        row = self._one("SELECT * FROM devices WHERE device_id = ?", (device_id,))
        device = None if row is None else DeviceRecord(
            row["device_id"], row["merchant_id"], row["enrolled_at_ms"], row["revoked_at_ms"])
        if writer:
            self._devices[device_id] = device
        return device

    def put_device(self, device: DeviceRecord, source: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO devices VALUES (?, ?, ?, ?, ?)",
                       (device.device_id, device.merchant_id, device.enrolled_at_ms,
                        device.revoked_at_ms, source))
            self._devices.pop(device.device_id, None)

    # parties -------------------------------------------------------------------------
    def put_party(self, merchant_id: str, name: str, org: str, payer_ids: Iterable[str]) -> int:
        """Register a party and its payer ids; raises ValueError if one belongs to another."""
        payer_ids = list(payer_ids)
        with self.transaction() as db:
            for payer_id in payer_ids:
                row = db.execute("SELECT merchant_id FROM payer_ids WHERE payer_id = ?",
                                 (payer_id,)).fetchone()
                if row is not None and row["merchant_id"] != merchant_id:
                    raise ValueError(f"a payer id is already registered to {row['merchant_id']}")
            db.execute("INSERT INTO parties VALUES (?, ?, ?) ON CONFLICT(merchant_id) DO "
                       "UPDATE SET name = excluded.name, org = excluded.org",
                       (merchant_id, name, org))
            db.executemany("INSERT OR IGNORE INTO payer_ids VALUES (?, ?)",
                           [(payer_id, merchant_id) for payer_id in payer_ids])
            return db.execute("SELECT count(*) FROM payer_ids WHERE merchant_id = ?",
                              (merchant_id,)).fetchone()[0]

    def party(self, merchant_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM parties WHERE merchant_id = ?", (merchant_id,))
        return dict(row) if row else None

    def party_for_payer(self, payer_id: str | None) -> dict[str, Any] | None:
        if payer_id is None:
            return None
        row = self._one("SELECT p.* FROM payer_ids i JOIN parties p USING (merchant_id) "
                        "WHERE i.payer_id = ?", (payer_id,))
        return dict(row) if row else None

    # catalogue -----------------------------------------------------------------------
    def catalogue_entries(self) -> list[CatalogueEntry]:
        return [CatalogueEntry.from_dict(json.loads(row["entry"]))
                for row in self._all("SELECT entry FROM catalogue ORDER BY code")]

    def put_catalogue_entry(self, entry: CatalogueEntry) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO catalogue VALUES (?, ?)",
                       (entry.code, json.dumps(entry.to_dict(), ensure_ascii=False)))

    # trades, lots, allocations -------------------------------------------------------
    def has_trade(self, trade_id: str) -> bool:
        return self._one("SELECT 1 FROM trades WHERE trade_id = ?", (trade_id,)) is not None

    def has_rejected(self, record_id: str) -> bool:
        return self._one("SELECT 1 FROM rejected WHERE record_id = ?", (record_id,)) is not None

    def stock(self, holder: str, product: str, measure: str) -> list[Lot]:
        rows = self._all("SELECT * FROM lines WHERE buyer = ? AND product = ? AND measure = ? "
                         "AND remaining > 0", (holder, product, measure))
        return [_lot(row) for row in rows]

    def lots_on_hand(self, holder: str) -> list[Lot]:
        rows = self._all("SELECT * FROM lines WHERE buyer = ? AND remaining > 0 "
                         "ORDER BY received_at_ms DESC, lot_id", (holder,))
        return [_lot(row) for row in rows]

    def record_trade(self, public: Mapping[str, Any], allocations: Iterable[LineAllocation],
                     changed: Iterable[Lot], finding_holder: bool) -> None:
        """Index an accepted trade: its lines (as the buyer's lots), draws and lot remainders."""
        buyer = public["buyer"].get("merchant_id")
        with self.transaction() as db:
            db.execute("INSERT INTO trades VALUES (?, ?, ?, ?, ?, ?)",
                       (public["trade_id"], public["trace_code"],
                        public["seller"]["merchant_id"], buyer, public["sold_at_ms"],
                        json.dumps(public, ensure_ascii=False)))
            db.executemany(
                "INSERT INTO lines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(line["lot_id"], public["trade_id"], line["line"],
                  public["seller"]["merchant_id"], buyer, line["product"], line["measure"],
                  line["amount"], line["amount"] if buyer else 0, public["sold_at_ms"],
                  line["lot"], line["origin"]) for line in public["lines"]])
            for allocation in allocations:
                lot_id = public["lines"][allocation.line]["lot_id"]
                db.execute("INSERT INTO allocations VALUES (?, ?, ?, ?)",
                           (lot_id, allocation.holder, allocation.unmatched,
                            int(finding_holder and allocation.unmatched > 0)))
                db.executemany("INSERT INTO draws VALUES (?, ?, ?)",
                               [(lot_id, d.lot_id, d.amount) for d in allocation.draws])
            db.executemany("UPDATE lines SET remaining = ? WHERE lot_id = ?",
                           [(lot.remaining, lot.lot_id) for lot in changed])

    def record_rejected(self, record_id: str, trade_id: str | None, code: str, reason: str,
                        at_ms: int) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO rejected VALUES (?, ?, ?, ?, ?)",
                       (record_id, trade_id, code, reason, at_ms))

    def trade_by_code(self, trace_code: str) -> dict[str, Any] | None:
        row = self._one("SELECT public FROM trades WHERE trace_code = ?", (trace_code,))
        return json.loads(row["public"]) if row else None

    def trade(self, trade_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT public FROM trades WHERE trade_id = ?", (trade_id,))
        return json.loads(row["public"]) if row else None

    def line(self, lot_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM lines WHERE lot_id = ?", (lot_id,))
        return dict(row) if row else None

    def lot_ids_for(self, key: str) -> list[str]:
        """A lot key is a lot id or a seller's lot label (printed on crates)."""
        rows = self._all("SELECT lot_id FROM lines WHERE lot_id = ? OR label = ? "
                         "ORDER BY received_at_ms, lot_id", (key, key))
        return [row["lot_id"] for row in rows]

    def draws_of(self, lot_id: str) -> list[dict[str, Any]]:
        """What sale line ``lot_id`` was drawn from (backward)."""
        return [dict(r) for r in self._all(
            "SELECT source_lot_id, amount FROM draws WHERE lot_id = ? ORDER BY rowid", (lot_id,))]

    def draws_from(self, source_lot_id: str) -> list[dict[str, Any]]:
        """Which sale lines drew on ``source_lot_id`` (forward)."""
        return [dict(r) for r in self._all(
            "SELECT lot_id, amount FROM draws WHERE source_lot_id = ? ORDER BY rowid",
            (source_lot_id,))]

    def allocation(self, lot_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM allocations WHERE lot_id = ?", (lot_id,))
        return dict(row) if row else None

    def findings(self, limit: int = 500) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all(
            "SELECT a.lot_id, a.holder, a.unmatched, l.product, l.measure, l.amount, "
            "l.trade_id FROM allocations a JOIN lines l USING (lot_id) WHERE a.finding = 1 "
            "ORDER BY l.received_at_ms DESC LIMIT ?", (limit,))]

    # rapid tests ---------------------------------------------------------------------
    def has_rapid_test(self, test_id: str) -> bool:
        return self._one("SELECT 1 FROM rapid_tests WHERE test_id = ? LIMIT 1",
                         (test_id,)) is not None

    def add_rapid_test(self, record: Mapping[str, Any]) -> None:
        """Index a test under every lot it covers."""
        body = json.dumps(record, ensure_ascii=False)
        with self.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO rapid_tests VALUES (?, ?, ?, ?, ?)",
                           [(record["test_id"], lot_id, record["result"], body,
                             record["tested_at_ms"]) for lot_id in record["lot_ids"]])

    def rapid_tests(self, lot_ids: Iterable[str]) -> list[dict[str, Any]]:
        lot_ids = list(lot_ids)
        if not lot_ids:
            return []
        out: list[dict[str, Any]] = []
        for start in range(0, len(lot_ids), 500):
            chunk = lot_ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            out += [{**json.loads(r["record"]), "lot_id": r["lot_id"]} for r in self._all(
                f"SELECT lot_id, record FROM rapid_tests WHERE lot_id IN ({marks})", chunk)]
        return sorted(out, key=lambda r: (r["tested_at_ms"], r["test_id"]))

    # counts --------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        tables = ("trades", "rejected", "lines", "rapid_tests", "devices", "parties")
        conn = self._conn()
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in tables}
