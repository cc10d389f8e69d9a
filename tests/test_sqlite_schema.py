"""Versioned SQLite schemas: fresh files, files from before versions, newer files, crashes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pos_terminal.outbox import Outbox
from sandbox_platform.schema import MIGRATIONS
from sandbox_platform.store import Store
from service_base.sqlite_schema import SchemaTooNew, add_column_if_missing, migrate, schema_version

STEPS = ("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, name TEXT);\n"
         "CREATE INDEX IF NOT EXISTS t_name ON t(name);",
         add_column_if_missing("t", "colour", "TEXT"),
         "INSERT INTO t (name, colour) VALUES ('seed', 'green');")


def _open(path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_a_fresh_file_gets_every_step_once(tmp_path):
    db = _open(tmp_path / "s.sqlite")
    assert migrate(db, STEPS) == 3 and schema_version(db) == 3
    assert migrate(db, STEPS) == 3  # nothing re-applied
    assert db.execute("SELECT name, colour FROM t").fetchall() == [("seed", "green")]


def test_a_file_from_before_versions_adopts_step_one_and_keeps_its_rows(tmp_path):
    db = _open(tmp_path / "old.sqlite")
    db.executescript("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT);"
                     "INSERT INTO t (name) VALUES ('kept');")
    assert schema_version(db) == 0
    migrate(db, STEPS)
    rows = db.execute("SELECT name, colour FROM t ORDER BY id").fetchall()
    assert rows == [("kept", None), ("seed", "green")]


def test_a_file_newer_than_the_code_is_refused_untouched(tmp_path):
    db = _open(tmp_path / "new.sqlite")
    migrate(db, STEPS)
    db.execute("PRAGMA user_version = 7")
    with pytest.raises(SchemaTooNew, match="version 7.*up to 3"):
        migrate(db, STEPS, name="test store")
    assert schema_version(db) == 7


def test_a_failing_step_leaves_the_previous_version_and_nothing_of_itself(tmp_path):
    db = _open(tmp_path / "fail.sqlite")
    broken = (STEPS[0], "CREATE TABLE half (x);\nINSERT INTO missing VALUES (1);")
    with pytest.raises(sqlite3.OperationalError, match="missing"):
        migrate(db, broken)
    assert schema_version(db) == 1
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchall() == []
    assert not db.in_transaction


def test_an_incomplete_statement_is_refused_before_anything_runs(tmp_path):
    db = _open(tmp_path / "bad.sqlite")
    with pytest.raises(ValueError, match="incomplete SQL"):
        migrate(db, ("CREATE TABLE a (x); CREATE TABLE b (y",))
    assert schema_version(db) == 0 and not db.in_transaction


def test_a_connection_with_implicit_transactions_is_refused(tmp_path):
    with pytest.raises(ValueError, match="isolation_level=None"):
        migrate(sqlite3.connect(tmp_path / "x.sqlite"), STEPS)


@pytest.mark.slow  # runs tracepay as a process
def test_two_processes_opening_one_new_file_apply_each_step_once(tmp_path):
    path = tmp_path / "race.sqlite"
    here = str(Path(__file__).parent)
    script = ("import sqlite3, sys\n"
              f"sys.path.insert(0, {here!r})\n"
              "from service_base.sqlite_schema import migrate\n"
              "from test_sqlite_schema import STEPS\n"
              f"db = sqlite3.connect({str(path)!r}, isolation_level=None, timeout=30)\n"
              "migrate(db, STEPS)\n")
    procs = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    db = _open(path)
    assert schema_version(db) == 3
    assert db.execute("SELECT COUNT(*) FROM t").fetchone() == (1,)  # step 3 ran once


def test_an_outbox_from_before_versions_gains_the_paid_channel_and_keeps_its_sales(tmp_path):
    path = tmp_path / "outbox.sqlite"
    old = _open(path)
    old.executescript("""
        CREATE TABLE sales (seq INTEGER PRIMARY KEY, sale_id TEXT NOT NULL UNIQUE,
            created_at_ms INTEGER NOT NULL, total_fen INTEGER NOT NULL, record BLOB NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('queued', 'sent')), sent_at_ms INTEGER,
            sale_status TEXT NOT NULL DEFAULT 'open', payment_status TEXT, payment_id TEXT,
            refunded_fen INTEGER NOT NULL DEFAULT 0, payment_updated_at_ms INTEGER);
        INSERT INTO sales (seq, sale_id, created_at_ms, total_fen, record, state)
            VALUES (1, 'old-sale', 1, 350, '{"sale_id":"old-sale"}', 'queued');
    """)
    old.close()
    outbox = Outbox(path)
    try:
        columns = {row[1] for row in outbox._db.execute("PRAGMA table_info(sales)")}
        assert "payment_channel" in columns
        assert outbox._db.execute("SELECT sale_id, total_fen FROM sales").fetchall() == [
            ("old-sale", 350)]
        assert schema_version(outbox._db) == 2
    finally:
        outbox.close()


def test_the_platform_store_is_versioned(tmp_path):
    store = Store(tmp_path / "platform.sqlite")
    assert schema_version(store._connection()) == len(MIGRATIONS) == 2


def test_a_platform_store_of_the_first_version_upgrades_keeping_its_orders(tmp_path):
    path = tmp_path / "platform.sqlite"
    old = sqlite3.connect(path, isolation_level=None)
    migrate(old, MIGRATIONS[:1])
    old.execute("INSERT INTO orders (order_id, app_id, out_trade_no, amount_fen, currency, "
                "subject, notify_url, return_url, status, created_at_ms, expires_at_ms) "
                "VALUES ('ord_1', 'app', 'T1', 990, 'CNY', 'greens', 'http://n', 'http://r', "
                "'PAID', 1, 2)")
    old.close()
    store = Store(path)
    order = store.order_by_id("ord_1")
    assert order is not None and order["amount_fen"] == 990 and order["auth_code"] is None
    assert schema_version(store._connection()) == 2
