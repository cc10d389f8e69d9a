"""SQLite storage of apps, orders, refunds and notification deliveries (WAL, one file).

Every state change is one guarded UPDATE (``... WHERE status = 'WAIT_PAY'``) inside an
immediate transaction, so concurrent workers or a double click can never pay, close or
refund an order twice. Each thread keeps its own connection; worker processes share the
file through WAL.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from service_base.sqlite_schema import migrate
from service_base.sqlite_writes import WriteLock

from .schema import MIGRATIONS

__all__ = ["Store", "StoreConflict", "now_ms"]

def now_ms() -> int:
    return int(time.time() * 1000)


class StoreConflict(Exception):
    """A request that contradicts what is stored (``code`` is the JSON error code)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Store:
    """The platform's one SQLite file. Safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = WriteLock(self.path)
        self._local = threading.local()
        migrate(self._connection(), MIGRATIONS, name=f"platform store {self.path}")

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=30,
                                 check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One writer at a time; the workers queue on the file's write lock instead of
        polling SQLite's (see :mod:`service_base.sqlite_writes`)."""
        db = self._connection()
        with self._write_lock.held():
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _one(self, sql: str, *args: Any) -> dict[str, Any] | None:
        row = self._connection().execute(sql, args).fetchone()
        return dict(row) if row else None

    # apps -----------------------------------------------------------------------------

    def register_app(self, app_id: str, public_key_pem: str, merchant_name: str) -> bool:
        """Insert or replace an app's key; True when the app is new."""
        with self.transaction() as db:
            existed = db.execute("SELECT 1 FROM apps WHERE app_id = ?", (app_id,)).fetchone()
            db.execute(
                "INSERT INTO apps (app_id, public_key_pem, merchant_name, created_at_ms) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (app_id) DO UPDATE SET "
                "public_key_pem = excluded.public_key_pem, "
                "merchant_name = excluded.merchant_name",
                (app_id, public_key_pem, merchant_name, now_ms()))
        return existed is None

    def app(self, app_id: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM apps WHERE app_id = ?", app_id)

    def use_nonce(self, use: Any, db: sqlite3.Connection | None = None) -> bool:
        """Record a request nonce (a ``request_auth.NonceUse``); False if the app used it
        within ``use.keep_ms``. ``db`` is the caller's transaction, if any.

        Nonces older than ``keep_ms`` are forgotten now and then: a request that old is
        refused by its timestamp anyway, so the table stays the size of a few minutes.
        """
        db = db or self._connection()
        self._nonce_uses = getattr(self, "_nonce_uses", 0) + 1
        if self._nonce_uses % 512 == 1:
            db.execute("DELETE FROM request_nonces WHERE seen_at_ms < ?",
                       (use.now_ms - use.keep_ms,))
        cursor = db.execute("INSERT INTO request_nonces (app_id, nonce, seen_at_ms) VALUES "
                            "(?, ?, ?) ON CONFLICT (app_id, nonce) DO UPDATE SET seen_at_ms "
                            "= excluded.seen_at_ms WHERE seen_at_ms < ?",
                            (use.app_id, use.nonce, use.now_ms, use.now_ms - use.keep_ms))
        return cursor.rowcount == 1

    # orders ---------------------------------------------------------------------------

    def create_order(self, app_id: str, fields: dict[str, Any], ttl_ms: int,
                     nonce_use: Any = None) -> tuple[dict[str, Any], bool]:
        """Create the order once per (app_id, out_trade_no); True when it is new.

        ``nonce_use`` (the request's nonce) is recorded in the same transaction; a nonce
        already used raises ``StoreConflict("replayed_nonce")`` and creates nothing.

        The same out_trade_no with another amount or currency is a conflict: a platform
        must never let one merchant order stand for two different charges.
        """
        created = now_ms()
        expires = created + ttl_ms
        if fields.get("expires_at_ms"):
            expires = min(expires, int(fields["expires_at_ms"]))
        order_id = "ord_" + secrets.token_urlsafe(18)
        with self.transaction() as db:
            if nonce_use is not None and not self.use_nonce(nonce_use, db):
                raise StoreConflict("replayed_nonce", "this X-Nonce was already used; every "
                                    "request needs a fresh nonce and signature")
            cursor = db.execute(
                "INSERT INTO orders (order_id, app_id, out_trade_no, amount_fen, currency, "
                "subject, notify_url, return_url, status, created_at_ms, expires_at_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'WAIT_PAY', ?, ?) "
                "ON CONFLICT (app_id, out_trade_no) DO NOTHING RETURNING *",
                (order_id, app_id, fields["out_trade_no"], fields["amount_fen"],
                 fields["currency"], fields["subject"], fields["notify_url"],
                 fields["return_url"], created, expires))
            returned = cursor.fetchall()  # step to the end before COMMIT
            inserted = returned[0] if returned else None
            is_new = inserted is not None
            row = dict(inserted) if inserted is not None else dict(db.execute(
                "SELECT * FROM orders WHERE app_id = ? AND out_trade_no = ?",
                (app_id, fields["out_trade_no"])).fetchone())
        if not is_new and (row["amount_fen"] != fields["amount_fen"]
                           or row["currency"] != fields["currency"]):
            raise StoreConflict(
                "order_conflict",
                f"out_trade_no {fields['out_trade_no']} exists with amount_fen "
                f"{row['amount_fen']} {row['currency']}, not {fields['amount_fen']} "
                f"{fields['currency']}")
        return self._expire_if_due(row), is_new

    def order_by_id(self, order_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM orders WHERE order_id = ?", order_id)
        return self._expire_if_due(row) if row else None

    def order_by_trade_no(self, app_id: str, out_trade_no: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM orders WHERE app_id = ? AND out_trade_no = ?",
                        app_id, out_trade_no)
        return self._expire_if_due(row) if row else None

    def _expire_if_due(self, row: dict[str, Any]) -> dict[str, Any]:
        if row["status"] != "WAIT_PAY" or row["expires_at_ms"] > now_ms():
            return row
        with self.transaction() as db:
            db.execute("UPDATE orders SET status = 'CLOSED', closed_at_ms = expires_at_ms "
                       "WHERE order_id = ? AND status = 'WAIT_PAY'", (row["order_id"],))
            return dict(db.execute("SELECT * FROM orders WHERE order_id = ?",
                                   (row["order_id"],)).fetchone())

    def pay(self, order_id: str, payer_id: str, fee_fen: int,
            build_notification: Callable[[dict[str, Any]], tuple[str, bytes]],
            first_delay_ms: int) -> dict[str, Any]:
        """WAIT_PAY -> PAID once, and enqueue its notification in the same transaction.

        Enqueuing in the same transaction is what makes "paid but never notified"
        impossible, even if the process dies right after the shopper pays.
        ``build_notification`` turns the paid order's row into (notify_id, body).
        """
        order = self.order_by_id(order_id)
        if order is None:
            raise StoreConflict("unknown_order", f"no order {order_id}")
        paid_at = now_ms()
        txn = "txn_" + time.strftime("%Y%m%d", time.gmtime(paid_at / 1000)) + \
            secrets.token_hex(8)
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE orders SET status = 'PAID', payer_id = ?, paid_at_ms = ?, "
                "channel_txn_id = ?, fee_fen = ? WHERE order_id = ? AND status = 'WAIT_PAY' "
                "AND expires_at_ms > ?", (payer_id, paid_at, txn, fee_fen, order_id, paid_at))
            row = dict(db.execute("SELECT * FROM orders WHERE order_id = ?",
                                  (order_id,)).fetchone())
            if cursor.rowcount != 1:
                raise _not_payable(row)
            notify_id, body = build_notification(row)
            db.execute(
                "INSERT INTO notifications (notify_id, app_id, order_id, out_trade_no, "
                "notify_url, body, status, next_attempt_at_ms, created_at_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                (notify_id, row["app_id"], order_id, row["out_trade_no"], row["notify_url"],
                 body, paid_at + first_delay_ms, paid_at))
        return row

    def close(self, order_id: str) -> dict[str, Any]:
        """WAIT_PAY -> CLOSED; closing a closed order is a no-op, a paid one a conflict."""
        with self.transaction() as db:
            db.execute("UPDATE orders SET status = 'CLOSED', closed_at_ms = ? "
                       "WHERE order_id = ? AND status = 'WAIT_PAY'", (now_ms(), order_id))
            row = db.execute("SELECT * FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        if row is None:
            raise StoreConflict("unknown_order", f"no order {order_id}")
        row = dict(row)
        if row["status"] != "CLOSED":
            raise StoreConflict("order_paid", f"order is {row['status']}, it cannot be closed")
        return row

    # refunds --------------------------------------------------------------------------
    def refund_by_no(self, app_id: str, out_refund_no: str) -> dict[str, Any] | None:
        """The refund an app asked for under ``out_refund_no`` (its refund query)."""
        return self._one("SELECT * FROM refunds WHERE app_id = ? AND out_refund_no = ?",
                         app_id, out_refund_no)

    def refund(self, app_id: str, fields: dict[str, Any],
               fee_for: Callable[[int, int, int], int]) -> tuple[dict[str, Any], bool]:
        """Refund once per (app_id, out_refund_no); the refunded total never exceeds paid.

        ``fee_for(paid_fen, refunded_before_fen, amount_fen)`` gives the returned fee.
        """
        with self.transaction() as db:
            existing = db.execute("SELECT * FROM refunds WHERE app_id = ? AND out_refund_no = ?",
                                  (app_id, fields["out_refund_no"])).fetchone()
            if existing is not None:
                existing = dict(existing)
                if (existing["out_trade_no"] != fields["out_trade_no"]
                        or existing["amount_fen"] != fields["amount_fen"]):
                    raise StoreConflict(
                        "refund_conflict",
                        f"out_refund_no {fields['out_refund_no']} exists for "
                        f"{existing['out_trade_no']} with amount_fen {existing['amount_fen']}")
                return existing, False
            order = db.execute("SELECT * FROM orders WHERE app_id = ? AND out_trade_no = ?",
                               (app_id, fields["out_trade_no"])).fetchone()
            if order is None:
                raise StoreConflict("unknown_order", f"no order {fields['out_trade_no']}")
            if order["status"] not in ("PAID", "REFUNDED"):
                raise StoreConflict("order_not_paid",
                                    f"order is {order['status']}; only paid orders refund")
            left = order["amount_fen"] - order["refunded_fen"]
            if fields["amount_fen"] > left:
                raise StoreConflict(
                    "refund_exceeds_paid",
                    f"refund of {fields['amount_fen']} fen exceeds the {left} fen not yet "
                    f"refunded (paid {order['amount_fen']})")
            fee = fee_for(order["amount_fen"], order["refunded_fen"], fields["amount_fen"])
            refunded = order["refunded_fen"] + fields["amount_fen"]
            db.execute("UPDATE orders SET refunded_fen = ?, status = ? WHERE order_id = ? "
                       "AND refunded_fen = ?",
                       (refunded, "REFUNDED" if refunded == order["amount_fen"] else "PAID",
                        order["order_id"], order["refunded_fen"]))
            row = {"refund_id": "rfd_" + secrets.token_urlsafe(12), "app_id": app_id,
                   "out_refund_no": fields["out_refund_no"],
                   "out_trade_no": fields["out_trade_no"], "order_id": order["order_id"],
                   "amount_fen": fields["amount_fen"], "fee_fen": fee,
                   "reason": fields.get("reason") or "", "status": "SUCCESS",
                   "created_at_ms": now_ms()}
            db.execute(f"INSERT INTO refunds ({', '.join(row)}) "
                       f"VALUES ({', '.join('?' for _ in row)})", tuple(row.values()))
        return row, True

    # statements -----------------------------------------------------------------------

    def day_activity(self, app_id: str, start_ms: int,
                     end_ms: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        db = self._connection()
        paid = [dict(r) for r in db.execute(
            "SELECT * FROM orders WHERE app_id = ? AND paid_at_ms >= ? AND paid_at_ms < ? "
            "ORDER BY paid_at_ms, order_id", (app_id, start_ms, end_ms))]
        refunds = [dict(r) for r in db.execute(
            "SELECT r.*, o.channel_txn_id, o.payer_id FROM refunds r "
            "JOIN orders o ON o.order_id = r.order_id WHERE r.app_id = ? "
            "AND r.created_at_ms >= ? AND r.created_at_ms < ? "
            "ORDER BY r.created_at_ms, r.refund_id", (app_id, start_ms, end_ms))]
        return paid, refunds

    # notifications --------------------------------------------------------------------

    def claim_due(self, now: int, lease_ms: int, limit: int = 32) -> list[dict[str, Any]]:
        """Pending deliveries that are due, leased so no other loop takes them meanwhile."""
        with self.transaction() as db:
            rows = [dict(r) for r in db.execute(
                "SELECT * FROM notifications WHERE status = 'pending' "
                "AND next_attempt_at_ms <= ? ORDER BY next_attempt_at_ms LIMIT ?",
                (now, limit))]
            for row in rows:
                db.execute("UPDATE notifications SET next_attempt_at_ms = ? WHERE notify_id = ?",
                           (now + lease_ms, row["notify_id"]))
        return rows

    def record_attempt(self, notify_id: str, attempt: int, *, http_status: int | None,
                       excerpt: str | None, error: str | None, delivered: bool,
                       next_attempt_at_ms: int | None) -> None:
        at = now_ms()
        status = "delivered" if delivered else ("pending" if next_attempt_at_ms else "gave_up")
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO attempts (notify_id, attempt, at_ms, http_status, "
                       "response_excerpt, error) VALUES (?, ?, ?, ?, ?, ?)",
                       (notify_id, attempt, at, http_status, excerpt, error))
            db.execute("UPDATE notifications SET attempts = ?, status = ?, "
                       "next_attempt_at_ms = ?, delivered_at_ms = ? WHERE notify_id = ?",
                       (attempt, status, next_attempt_at_ms if not delivered else None,
                        at if delivered else None, notify_id))

    def notifications(self, *, out_trade_no: str | None = None,
                      limit: int = 100) -> list[dict[str, Any]]:
        db = self._connection()
        if out_trade_no is None:
            rows = db.execute("SELECT * FROM notifications ORDER BY created_at_ms DESC LIMIT ?",
                              (limit,))
        else:
            rows = db.execute("SELECT * FROM notifications WHERE out_trade_no = ? "
                              "ORDER BY created_at_ms LIMIT ?", (out_trade_no, limit))
        result = []
        for row in rows.fetchall():
            item = dict(row)
            item.pop("body")
            item["attempt_log"] = [dict(a) for a in db.execute(
                "SELECT attempt, at_ms, http_status, response_excerpt, error FROM attempts "
                "WHERE notify_id = ? ORDER BY attempt", (item["notify_id"],))]
            result.append(item)
        return result


def _not_payable(row: dict[str, Any]) -> StoreConflict:
    if row["status"] == "PAID" or row["status"] == "REFUNDED":
        return StoreConflict("already_paid", "this order is already paid")
    if row["status"] == "CLOSED":
        return StoreConflict("order_closed", "this order is closed")
    return StoreConflict("order_expired", "this order has expired")
