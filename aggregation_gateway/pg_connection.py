"""The gateway's SQL on PostgreSQL: the same ``execute``/``transaction`` calls as on SQLite.

The gateway's statements are written once, in SQL both databases accept (``ON CONFLICT``,
``RETURNING``, ``?`` and ``:name`` placeholders). Here each statement's placeholders are
translated to psycopg's once and cached, and rows come back as :class:`Row` (by name
and by position, like ``sqlite3.Row``). No ORM sits on the request path: one statement is
one round trip on a pooled connection (psycopg_pool), and psycopg prepares statements a
connection runs often.

Outside a transaction each statement runs on its own (autocommit, like the SQLite
connections); inside ``transaction`` one pooled connection is bound to the thread until
the outermost block ends, and inner blocks are savepoints.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from market_protocol import ApiError

__all__ = ["PgConnection", "Row", "translate", "open_pool"]

# A quoted string (left alone), a ``?``, a ``:name`` (not a ``::`` cast) or a lone ``%``.
_TOKENS = re.compile(r"('(?:[^']|'')*')|(\?)|(?<!:):([A-Za-z_]\w*)|(%)")
_translated: dict[str, str] = {}


def translate(sql: str) -> str:
    """``?`` -> ``%s``, ``:name`` -> ``%(name)s``, ``%`` -> ``%%``; cached per statement."""
    found = _translated.get(sql)
    if found is None:
        def swap(match: re.Match[str]) -> str:
            if match.group(1):
                return match.group(1).replace("%", "%%")
            if match.group(2):
                return "%s"
            if match.group(3):
                return f"%({match.group(3)})s"
            return "%%"
        found = _translated[sql] = _TOKENS.sub(swap, sql)
    return found


class Row:
    """A result row read by column name or by position; ``dict(row)`` works."""

    __slots__ = ("_values", "_index")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values, strict=False))!r})"


def _row_factory(cursor: psycopg.Cursor[Any]) -> Any:
    index: dict[str, int] = {}
    for position, column in enumerate(cursor.description or ()):
        index.setdefault(column.name, position)  # the first of two equal names, as SQLite
    return lambda values: Row(values, index)


class Result:
    """A statement's rows (already fetched: the connection went back to the pool)."""

    __slots__ = ("rows", "rowcount")

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self.rows = cursor.fetchall() if cursor.description is not None else []
        self.rowcount = cursor.rowcount

    def fetchone(self) -> Row | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[Row]:
        return self.rows

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)


class GatewayConnection(psycopg.Connection[Any]):
    """A psycopg connection that keeps one cursor for every statement: a new cursor per
    statement cost about three times the statement itself (measured on a simple
    ``SELECT``). Results are fetched before the next statement, so one is enough."""

    _statement_cursor: psycopg.Cursor[Any] | None = None

    def run(self, query: str, params: Any) -> Result:
        cursor = self._statement_cursor
        if cursor is None or cursor.closed:
            cursor = self._statement_cursor = self.cursor()
        return Result(cursor.execute(query, params))


def open_pool(url: str, max_size: int) -> ConnectionPool[GatewayConnection]:
    """A pool of autocommit connections to ``url``; fails within 10 s if unreachable."""
    pool: ConnectionPool[GatewayConnection] = ConnectionPool(url, min_size=1, max_size=max_size, open=False,
                          connection_class=GatewayConnection,
                          kwargs={"autocommit": True, "row_factory": _row_factory},
                          name="tracepay-gateway")
    pool.open(wait=True, timeout=10)
    return pool


class PgConnection:
    """One thread's handle on the pool: what ``Database.conn`` is on PostgreSQL."""

    dialect = "postgresql"

    def __init__(self, pool: Callable[[], ConnectionPool[GatewayConnection]]) -> None:
        self._pool_of = pool
        self._bound: GatewayConnection | None = None
        self._blocks: list[Any] = []  # psycopg transaction context managers

    @property
    def in_transaction(self) -> bool:
        return self._bound is not None

    def execute(self, sql: str, params: Any = ()) -> Result:
        query = translate(sql)
        try:
            if self._bound is not None:
                return self._bound.run(query, params)
            with self._pool_of().connection() as conn:
                return conn.run(query, params)
        except psycopg.DataError as exc:
            if "NUL" not in str(exc):
                raise
            # PostgreSQL text cannot hold U+0000 (SQLite can): a client's input, refused.
            raise ApiError(400, "invalid_text", "text may not contain NUL characters"
                           ) from None

    def executemany(self, sql: str, rows: Sequence[Any]) -> None:
        """One statement per row, like ``sqlite3``'s (outside a transaction each row
        commits alone). The gateway's batches are a few rows: psycopg's pipelined
        ``executemany`` cost more than it saved at that size (profiled on the scan path)."""
        if not rows:
            return
        query = translate(sql)
        if self._bound is not None:
            for row in rows:
                self._bound.run(query, row)
            return
        with self._pool_of().connection() as conn:
            for row in rows:
                conn.run(query, row)

    # -- transactions (used through ``database.transaction``) -----------------------------
    def begin(self) -> None:
        if self._bound is None:
            self._bound = self._pool_of().getconn()
        block = self._bound.transaction()  # a savepoint when one is open already
        try:
            block.__enter__()
        except BaseException:
            self._release_if_done()
            raise
        self._blocks.append(block)

    def end(self, error: BaseException | None) -> None:
        block = self._blocks.pop()
        try:
            if error is None:
                block.__exit__(None, None, None)
            else:
                block.__exit__(type(error), error, error.__traceback__)
        finally:
            self._release_if_done()

    def _release_if_done(self) -> None:
        if not self._blocks and self._bound is not None:
            conn, self._bound = self._bound, None
            self._pool_of().putconn(conn)
