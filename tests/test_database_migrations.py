"""The gateway's schema and its migrations, on real SQLite files and a real PostgreSQL.

A database made by the schema the gateway had before revisions existed is upgraded in
place by ``tracepay gateway migrate`` without losing a row; a PostgreSQL database at the
baseline revision is upgraded the same way; fresh and migrated databases both match the
one schema definition (Alembic's own comparison finds no difference).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from aggregation_gateway import migrate
from aggregation_gateway.database import Database
from aggregation_gateway.schema import HEAD_REVISION, metadata
from service_base.testing import tracepay_command

OLD_SCHEMA = (Path(__file__).parent / "fixtures" / "gateway_schema_before_revisions.sql"
              ).read_text()

#: One or two rows in every table the old schema had, as a gateway of that time wrote them.
ROWS: dict[str, list[tuple]] = {
    "managers": [("manager", "scrypt$abc", 1_700_000_000_000)],
    "merchants": [("stall-7", "Li's greens", "retail_market"),
                  ("stall-8", "Wang's fish", "retail_market")],
    "devices": [("dev-1", "stall-7", 2, "active", 1_700_000_000_100, 1_700_000_000_200, None),
                ("dev-2", "stall-8", 1, "revoked", 1_700_000_000_300, None, 1_700_000_001_000)],
    "enrolment_codes": [("hash-1", "dev-1", 2, 1_700_000_900_000, 1_700_000_000_200)],
    "payments": [("p1", "dev-1", "stall-7", 1, "ab" * 8, 475, "CNY", 1_700_000_000, "paid",
                  "sandbox", "co-1", "http://pay/1", "txn-1", "payer-1", 1_700_000_002_000,
                  100, 1_700_000_001_000, 1_700_000_003_000, None),
                 ("p2", "dev-1", "stall-7", 2, "cd" * 8, 9_007_199_254_740, "CNY",
                  1_700_000_010, "pending", "sandbox", "co-2", None, None, None, None, 0,
                  1_700_000_011_000, 1_700_000_011_000, 1_700_000_012_000)],
    "payment_events": [(1, "p1", "none", "created", "scan", 1, "", 1_700_000_001_000),
                       (7, "p1", "pending", "paid", "notify:n1", 1, "", 1_700_000_002_000)],
    "notifications": [("sandbox", "n1", "p1", "paid", 1_700_000_002_000)],
    "refunds": [("r1", "stall-7", "R-1", "p1", 100, "bruised", "success", "cr-1", "manager",
                 1_700_000_004_000)],
    "sales": [("dev-1", 1, "dev-1.1.aa", '{"sale_id": "dev-1.1.aa"}', 1_700_000_001_500,
               None, None),
              ("dev-1", 2, "dev-1.2.bb", '{"sale_id": "dev-1.2.bb"}', 1_700_000_011_500,
               1_700_000_013_000, '{"status": "void"}')],
    "rejected_messages": [(3, "tracepay/sales/x", "MAC does not verify", 1_700_000_005_000)],
    "outbox": [(11, "trade", "t-1", "tracepay/trades", b'{"trade": 1}', 1_700_000_002_000,
                1_700_000_002_050),
               (12, "payment_result", "p2:pending:0", "tracepay/results/dev-1",
                b'{"status": "pending"}', 1_700_000_011_000, None)],
    "channel_calls": [(5, "sandbox", "POST", "http://platform/orders", "{}", 200, "{}", None,
                       1_700_000_001_000, 12)],
    "link_status": [("mqtt", "subscribed", 1_700_000_000_000)],
    "web_sessions": [("session-hash", "manager", "", 1_700_099_000_000)],
    "statement_items": [("2026-12-06", "payment:p1", "payment", 475, 3, "listed")],
    "reconciliation_runs": [("2026-12-06", 1_700_100_000_000, 1, 0)],
    "reconciliation_items": [(2, "2026-12-05", "2026-12-06", "payment:p9", "missing_ours",
                              "on the statement only", None)],
    "alerts": [(4, "amount_mismatch", "p2", "paid 1 fen", 3, 1_700_000_020_000,
                1_700_000_030_000)],
}


def _old_database(data_dir: Path) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "gateway.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA)
        for table, rows in ROWS.items():
            marks = ", ".join("?" for _ in rows[0])
            conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    return path


def _schema_differences(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()


def _rows(conn, table: str, width: int) -> list[tuple]:
    rows = conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
    return [tuple(bytes(value) if isinstance(value, memoryview) else value
                  for value in list(row)[:width]) for row in rows]


@pytest.mark.slow  # runs tracepay as a process
def test_migrate_upgrades_a_database_of_the_schema_before_revisions_keeping_every_row(
        tmp_path):
    data_dir = tmp_path / "gateway"
    path = _old_database(data_dir)
    result = subprocess.run(tracepay_command("gateway", "migrate", "--data-dir",
                                             str(data_dir)),
                            capture_output=True, text=True, timeout=120, env=None)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"database": "sqlite", "before": None, "after": HEAD_REVISION,
                      "head": HEAD_REVISION, "action": "upgraded"}
    with sqlite3.connect(path) as conn:
        for table, rows in ROWS.items():
            assert _rows(conn, table, len(rows[0])) == sorted(rows), table
        devices = {row[1] for row in conn.execute("PRAGMA table_info(devices)")}
        outbox = {row[1] for row in conn.execute("PRAGMA table_info(outbox)")}
    assert {"rotated_at_ms"} <= devices and {"lease_until_ms"} <= outbox
    # The one difference an adopted file keeps: its single-column primary keys were
    # declared without NOT NULL, which SQLite then does not imply (a quirk of SQLite; the
    # keys are all set). Nothing else differs from the schema.
    primary_keys = {(table.name, column.name) for table in metadata.tables.values()
                    for column in table.primary_key.columns}
    left = [change for [change] in _schema_differences(f"sqlite:///{path}")
            if not (change[0] == "modify_nullable" and (change[2], change[3]) in primary_keys)]
    assert left == []
    # The gateway opens it as it is now, and a second migrate has nothing to do.
    db = Database(data_dir)
    assert db.conn.execute("SELECT amount_fen FROM payments WHERE payment_id = 'p2'"
                           ).fetchone()[0] == 9_007_199_254_740
    again = subprocess.run(tracepay_command("gateway", "migrate", "--data-dir", str(data_dir)),
                           capture_output=True, text=True, timeout=120)
    assert json.loads(again.stdout.strip().splitlines()[-1])["action"] == "current"


def test_a_gateway_opening_an_old_file_upgrades_it_itself(tmp_path):
    _old_database(tmp_path)
    db = Database(tmp_path)
    assert migrate.current_revision(db) == HEAD_REVISION
    assert db.conn.execute("SELECT COUNT(*) FROM payments").fetchone()[0] == 2
    assert db.conn.execute("SELECT max(id) FROM outbox").fetchone()[0] == 12


def test_fresh_and_migrated_sqlite_databases_match_the_schema(tmp_path):
    fresh = Database(tmp_path / "fresh")
    assert migrate.current_revision(fresh) == HEAD_REVISION
    assert _schema_differences(f"sqlite:///{fresh.path}") == []
    stepwise = Database(tmp_path / "stepwise", migrate=False)
    migrate.upgrade(stepwise)
    assert migrate.current_revision(stepwise) == HEAD_REVISION
    assert _schema_differences(f"sqlite:///{stepwise.path}") == []


def test_head_revision_is_the_newest_migration():
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert script.get_heads() == [HEAD_REVISION]


@pytest.fixture
def pg_url(postgres_server):
    """An empty PostgreSQL database (not the migrated template)."""
    import psycopg

    name = "migrate_" + Path(postgres_server.root).name[-6:].replace("-", "_")
    url = postgres_server.url(name)
    with psycopg.connect(postgres_server.url(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name} TEMPLATE template0")
    yield url
    postgres_server.drop_database(url)


def test_postgresql_at_the_baseline_is_upgraded_in_place_keeping_every_row(pg_url, tmp_path):
    db = Database(tmp_path, pg_url, migrate=False)
    migrate.upgrade(db, "0001")
    assert migrate.current_revision(db) == "0001"
    conn = db.conn
    for table, rows in ROWS.items():
        marks = ", ".join("?" for _ in rows[0])
        conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    db.close()
    result = subprocess.run(tracepay_command("gateway", "migrate", "--database-url", pg_url,
                                             "--data-dir", str(tmp_path)),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report["database"], report["before"], report["after"]) == (
        "postgresql", "0001", HEAD_REVISION)
    db = Database(tmp_path, pg_url)
    for table, rows in ROWS.items():
        assert _rows(db.conn, table, len(rows[0])) == sorted(rows), table
    db.close()
    assert _schema_differences(pg_url.replace("postgresql://", "postgresql+psycopg://")) == []


def test_fresh_postgresql_database_matches_the_schema(pg_url, tmp_path):
    db = Database(tmp_path, pg_url)
    assert migrate.current_revision(db) == HEAD_REVISION
    db.close()
    assert _schema_differences(pg_url.replace("postgresql://", "postgresql+psycopg://")) == []
