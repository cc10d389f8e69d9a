"""Writers on one SQLite file queue on its write lock, across threads and processes."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
import time

import pytest

from aggregation_gateway.database import Database, transaction
from service_base.sqlite_writes import WriteLock


def _free(lock: WriteLock) -> bool:
    fd = os.open(lock.path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_a_second_writer_waits_until_the_first_lets_go(tmp_path):
    lock = WriteLock(tmp_path / "shop.sqlite3")
    done: list[float] = []

    def second() -> None:
        with lock.held():
            done.append(time.monotonic())

    with lock.held():
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        assert done == [] and not _free(lock)
        released = time.monotonic()
    thread.join(5)
    assert len(done) == 1 and done[0] >= released
    assert _free(lock)


def _hold_in_child(path: str, ready, go) -> None:
    with WriteLock(path).held():
        ready.set()
        go.wait(10)


def test_another_process_holding_the_lock_keeps_this_one_out(tmp_path):
    path = str(tmp_path / "shop.sqlite3")
    context = multiprocessing.get_context("spawn")
    ready, go = context.Event(), context.Event()
    child = context.Process(target=_hold_in_child, args=(path, ready, go))
    child.start()
    try:
        assert ready.wait(30)
        assert not _free(WriteLock(path))
    finally:
        go.set()
        child.join(30)
    assert _free(WriteLock(path))


def test_a_failed_gateway_transaction_rolls_back_and_releases_the_lock(tmp_path):
    db = Database(tmp_path)
    with pytest.raises(RuntimeError), transaction(db.conn) as conn:
        conn.execute("CREATE TABLE scratch (x INTEGER)")
        raise RuntimeError("boom")
    assert _free(db.write_lock)
    assert db.conn.execute("SELECT name FROM sqlite_master WHERE name = 'scratch'").fetchone() is None
    with transaction(db.conn) as conn:
        conn.execute("CREATE TABLE scratch (x INTEGER)")
    assert _free(db.write_lock)
