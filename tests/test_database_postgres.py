"""The gateway's PostgreSQL layer against a real server: placeholders, transactions, the
sweepers' job claims, outbox leases and the shared rate-limit counters, with two
``Database`` objects standing for two gateway processes on one database."""

from __future__ import annotations

import threading

import pytest

from aggregation_gateway import outbox
from aggregation_gateway.database import Database, transaction
from aggregation_gateway.limit_store import PostgresLimitStorage
from aggregation_gateway.pg_connection import translate


@pytest.fixture
def two_gateways(postgres_server, tmp_path):
    url = postgres_server.new_database()
    first, second = Database(tmp_path / "a", url), Database(tmp_path / "b", url)
    yield first, second
    first.close()
    second.close()
    postgres_server.drop_database(url)


def test_placeholders_are_translated_once_and_quoted_text_is_left_alone():
    assert translate("SELECT ? WHERE a = :name AND b = '?:x%' AND c::text LIKE 'x%'") == (
        "SELECT %s WHERE a = %(name)s AND b = '?:x%%' AND c::text LIKE 'x%%'")
    sql = "SELECT 1 FROM payments WHERE payment_id = ?"
    assert translate(sql) is translate(sql)


def test_rows_read_by_name_and_position_and_a_failed_transaction_leaves_nothing(two_gateways):
    db, _ = two_gateways
    conn = db.conn
    conn.execute("INSERT INTO merchants VALUES (?, ?, ?)", ("m1", "Li's 100% greens", "x"))
    row = conn.execute("SELECT * FROM merchants WHERE merchant_id = :id", {"id": "m1"}
                       ).fetchone()
    assert (row[0], row["name"], dict(row)["org"]) == ("m1", "Li's 100% greens", "x")
    with pytest.raises(RuntimeError), transaction(conn):
        conn.execute("INSERT INTO merchants VALUES ('m2', 'n', 'o')")
        with transaction(conn):  # a savepoint inside
            conn.execute("INSERT INTO merchants VALUES ('m3', 'n', 'o')")
        raise RuntimeError("boom")
    assert conn.execute("SELECT COUNT(*) FROM merchants").fetchone()[0] == 1
    assert not conn.in_transaction


def _payment(conn, payment_id: str) -> None:
    conn.execute(
        "INSERT INTO payments (payment_id, device_id, merchant_id, order_no, nonce, "
        "amount_fen, currency, qr_issued_at, status, channel, created_at_ms, updated_at_ms) "
        "VALUES (?, 'dev-1', 'm1', ?, 'n', 100, 'CNY', 1, 'pending', 'sandbox', 1, 1)",
        (payment_id, int(payment_id[1:])))


def test_a_job_claimed_by_one_gateway_is_skipped_by_the_other(two_gateways):
    first, second = two_gateways
    _payment(first.conn, "p1")
    due = "SELECT 1 FROM payments WHERE payment_id = ? AND status = 'pending'"
    holding, release, seen = threading.Event(), threading.Event(), []

    def first_gateway() -> None:
        with first.claim(due, ("p1",)) as mine:
            seen.append(("first", mine))
            holding.set()
            release.wait(10)
            first.conn.execute("UPDATE payments SET status = 'expired' WHERE payment_id = ?",
                               ("p1",))

    worker = threading.Thread(target=first_gateway)
    worker.start()
    assert holding.wait(10)
    with second.claim(due, ("p1",)) as mine:
        seen.append(("second while held", mine))
    release.set()
    worker.join(10)
    with second.claim(due, ("p1",)) as mine:  # done by the first: no longer due
        seen.append(("second after", mine))
    assert seen == [("first", True), ("second while held", False), ("second after", False)]
    assert second.conn.execute("SELECT status FROM payments").fetchone()[0] == "expired"


def test_two_publishers_take_different_outbox_rows_and_a_lapsed_lease_frees_them(
        two_gateways):
    first, second = two_gateways
    for number in range(6):
        outbox.enqueue(first.conn, "trade", f"t{number}", "tracepay/trades", {"n": number})
    taken_by_first = [row["id"] for row in outbox.unpublished(first.conn, limit=4)]
    taken_by_second = [row["id"] for row in outbox.unpublished(second.conn)]
    assert len(taken_by_first) == 4 and len(taken_by_second) == 2
    assert not set(taken_by_first) & set(taken_by_second)
    assert outbox.unpublished(second.conn) == []  # all leased now
    outbox.mark_published(second.conn, taken_by_second)
    # The first gateway died before its PUBACKs: once its lease lapses the rows are free.
    first.conn.execute("UPDATE outbox SET lease_until_ms = 0 WHERE published_at_ms IS NULL")
    assert sorted(row["id"] for row in outbox.unpublished(second.conn)) == taken_by_first
    assert outbox.pending_count(second.conn) == 4


def test_rate_limit_counters_are_shared_by_every_gateway(two_gateways):
    first, _ = two_gateways
    uri = "tracepay+postgresql://" + first.url.split("://", 1)[1]
    one, other = PostgresLimitStorage(uri), PostgresLimitStorage(uri)
    assert one.incr("login:manager", 60) == 1
    assert other.incr("login:manager", 60) == 2
    assert one.get("login:manager") == 2 and other.get_expiry("login:manager") > 0
    other.clear("login:manager")
    assert one.get("login:manager") == 0
    assert one.check()


# -- races that SQLite's single writer ruled out, and PostgreSQL must rule out too -------
def _gateway(tmp_path, url: str):
    from aggregation_gateway.settings import load_gateway_settings
    from aggregation_gateway.wiring import build_gateway

    return build_gateway(load_gateway_settings(overrides={
        "data_dir": str(tmp_path / "keys"), "database_url": url, "manager_user": "",
        "platform_url": ""}, environ={}))


def _wait_for_a_lock_wait(db: Database, timeout: float = 10.0) -> None:
    """Until some transaction of this database waits for a row lock."""
    import time

    deadline = time.monotonic() + timeout
    while db.conn.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = "
                          "current_database() AND wait_event_type = 'Lock'").fetchone()[0] == 0:
        assert time.monotonic() < deadline, "nobody waited for the lock"
        time.sleep(0.02)


def _in_thread(work):
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except Exception as exc:  # handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_two_refunds_of_one_payment_check_its_remainder_one_after_the_other(
        postgres_server, tmp_path):
    from market_protocol import ApiError

    url = postgres_server.new_database()
    one, other = _gateway(tmp_path, url), _gateway(tmp_path, url)
    try:
        conn = one.db.conn
        conn.execute("INSERT INTO merchants VALUES ('m1', 'Li', 'retail_market')")
        _payment(conn, "p1")
        conn.execute("UPDATE payments SET status = 'paid', channel = 'sandbox' "
                     "WHERE payment_id = 'p1'")
        payment = other.payments.get("p1")
        # The first gateway's refund of the whole amount is under way (not committed).
        with transaction(conn):
            conn.execute("SELECT 1 FROM payments WHERE payment_id = 'p1' FOR UPDATE")
            conn.execute("INSERT INTO refunds VALUES ('r1', 'm1', 'R-1', 'p1', 100, 'x', "
                         "'processing', NULL, 'manager', 1)")
            thread, outcome = _in_thread(lambda: other.refunds.refund(
                payment, 100, "again", "R-2", "manager"))
            _wait_for_a_lock_wait(one.db)  # the second refund waits for the payment row
        thread.join(10)
        assert isinstance(outcome.get("error"), ApiError), outcome
        assert outcome["error"].code == "refund_exceeds_payment"
        assert conn.execute("SELECT COUNT(*) FROM refunds").fetchone()[0] == 1
    finally:
        one.db.close()
        other.db.close()
        postgres_server.drop_database(url)


def test_an_enrolment_code_claimed_at_the_same_moment_twice_is_good_once(
        postgres_server, tmp_path):
    from market_protocol import ApiError

    url = postgres_server.new_database()
    one, other = _gateway(tmp_path, url), _gateway(tmp_path, url)
    try:
        issued = one.registry.enrol({"merchant_id": "m1", "merchant_name": "Li",
                                     "org": "retail_market", "device_id": "dev-1"})
        conn = one.db.conn
        with transaction(conn):  # the first claim is under way (not committed)
            conn.execute("UPDATE enrolment_codes SET used_at_ms = 1 WHERE device_id = 'dev-1'")
            thread, outcome = _in_thread(lambda: other.registry.claim(
                issued["enrolment_code"]))
            _wait_for_a_lock_wait(one.db)
        thread.join(10)
        assert isinstance(outcome.get("error"), ApiError), outcome
        assert outcome["error"].code == "code_used"
    finally:
        one.db.close()
        other.db.close()
        postgres_server.drop_database(url)
