"""Plain DB-API access to a site database (``sqlite3``, or ``psycopg`` for a PostgreSQL URL).

The stage wrapper claims its OSF column within a fraction of a second of starting, so the OSF
blackboard and the node-usage history use this instead of SQLAlchemy (whose import alone costs
more than the whole budget); the archive catalogue and the service keep SQLAlchemy
(:mod:`pipeline.core.db`) on the same database files. SQL is written once with ``?`` placeholders
and ANSI quoting, which both back ends accept.

SQLite is opened as SQLAlchemy's engine opens it (WAL, ``synchronous=NORMAL``, busy timeout,
foreign keys on). A write transaction starts with ``BEGIN IMMEDIATE``: it takes the write lock
first (waiting up to the busy timeout), so the rows it reads cannot change under it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from pipeline.core.errors import LockTimeout

#: The PostgreSQL advisory lock that serialises owlpipe's schema creation ("OWLDDL" in ASCII).
DDL_LOCK = 0x4F574C44444C

#: Open connections by (pid, thread, url, busy timeout): a thread reuses its own, a forked child opens new ones.
_connections: dict[tuple[int, int, str, float], Any] = {}
_lock = threading.Lock()


def is_lock_error(exc: BaseException) -> bool:
    """A "database is locked" from sqlite3 or from SQLAlchemy wrapping it."""
    return type(exc).__name__ == "OperationalError" and "locked" in str(exc).lower()


def lock_timeout(exc: BaseException, what: str) -> LockTimeout:
    return LockTimeout(f"database lock timeout while {what}: {getattr(exc, 'orig', None) or exc}")


def sqlite_path(url: str) -> str:
    """``sqlite:////abs/owl.db`` -> ``/abs/owl.db`` (SQLAlchemy's reading: three slashes, then the path)."""
    path = url.split("://", 1)[1].split("?", 1)[0]
    return path[1:] if path.startswith("/") and len(path) > 1 else ":memory:"


def postgres_conninfo(url: str) -> str:
    """A libpq URL from a SQLAlchemy one (``postgresql+psycopg://`` -> ``postgresql://``)."""
    return "postgresql://" + url.split("://", 1)[1]


def _wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """Put the database in WAL mode (a no-op once it is). Switching needs an exclusive lock for which
    SQLite does not wait (its busy handler is not called here), so the nodes that open a fresh site
    together retry until the busy timeout, as every other lock wait does."""
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if not is_lock_error(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def sqlite_pragmas(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """How owlpipe opens every SQLite connection (here and in SQLAlchemy's engine): WAL, so readers
    never block writers; a busy timeout, so concurrent writers queue instead of failing; foreign keys."""
    _wal(conn, busy_timeout)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
    conn.execute("PRAGMA foreign_keys=ON")


class Database:
    """One site database by URL: short reads and write transactions on a connection per thread and process."""

    def __init__(self, url: str, busy_timeout: float = 30.0) -> None:
        self.url = url
        self.busy_timeout = busy_timeout
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        if self.dialect == "sqlite":
            self.IntegrityError: type[Exception] = sqlite3.IntegrityError
        else:
            import psycopg

            self.IntegrityError = psycopg.IntegrityError

    def connection(self) -> Any:
        """This thread's connection (a forked child opens its own: a connection never crosses a fork).
        A PostgreSQL connection is pinged first, as SQLAlchemy's ``pool_pre_ping`` did: one lost to a
        server restart is replaced instead of failing the caller."""
        key = (os.getpid(), threading.get_ident(), self.url, self.busy_timeout)
        conn = _connections.get(key)
        if conn is not None and self.dialect == "postgresql" and not self._alive(conn):
            conn = None
        if conn is None:
            conn = self._connect()
            with _lock:
                _connections[key] = conn
        return conn

    def dispose(self) -> None:
        """Close this process's connections to the database, in every thread (like SQLAlchemy's
        ``Engine.dispose``): the next use opens the file anew, e.g. after a site was re-initialised."""
        with _lock:
            for key in [k for k in _connections if k[0] == os.getpid() and k[2] == self.url]:
                with contextlib.suppress(Exception):
                    _connections.pop(key).close()

    @staticmethod
    def _alive(conn: Any) -> bool:
        import psycopg

        if conn.closed or conn.broken:
            return False
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            return True  # inside this thread's own transaction: in use, not idle
        try:
            conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def _connect(self) -> Any:
        if self.dialect == "sqlite":
            conn = sqlite3.connect(sqlite_path(self.url), timeout=self.busy_timeout, isolation_level=None,
                                   check_same_thread=False)
            sqlite_pragmas(conn, self.busy_timeout)
            return conn
        import psycopg

        return psycopg.connect(postgres_conninfo(self.url), autocommit=True)

    def sql(self, statement: str) -> str:
        """``statement`` in this back end's placeholder style."""
        return statement if self.dialect == "sqlite" else statement.replace("%", "%%").replace("?", "%s")

    def read(self, statement: str, params: Sequence[Any] = ()) -> list[tuple]:
        """All rows of one query, outside any write transaction."""
        cur = self.connection().cursor()
        try:
            cur.execute(self.sql(statement), tuple(params))
            return cur.fetchall()
        finally:
            cur.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[Cursor]:
        """A transaction committed when the block ends, rolled back if it raises; a nested block joins it."""
        conn = self.connection()
        if self.dialect != "sqlite":
            with conn.transaction(), conn.cursor() as cur:
                yield Cursor(self, cur)
            return
        if conn.in_transaction:
            yield Cursor(self, conn.cursor())
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield Cursor(self, conn.cursor())
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:   # a failed COMMIT too: the cached connection must not stay inside it
                conn.execute("ROLLBACK")
            raise

    def ensure_tables(self, ddl: dict[str, Sequence[str]]) -> None:
        """Create the missing tables of ``ddl`` (table name -> its CREATE TABLE and CREATE INDEX statements,
        each ``IF NOT EXISTS``; ``{serial}`` stands for the back end's auto-increment integer type), safely
        from many processes at once; nothing is locked when all exist."""
        if not self._missing(ddl):
            return
        with self.write() as cur:
            if self.dialect == "postgresql":  # concurrent IF NOT EXISTS can still collide in pg's catalogue
                cur.execute("SELECT pg_advisory_xact_lock(?)", (DDL_LOCK,))
            for statements in ddl.values():
                for statement in statements:
                    cur.execute(statement.replace("{serial}", "INTEGER" if self.dialect == "sqlite" else "SERIAL"))

    def _missing(self, ddl: dict[str, Sequence[str]]) -> list[str]:
        present = self.tables()
        return [t for t in ddl if t not in present]

    def tables(self) -> set[str]:
        """The names of the tables the database has (in PostgreSQL: in the current schema)."""
        if self.dialect == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        return {r[0] for r in self.read(query)}


class Cursor:
    """A cursor inside :meth:`Database.write` taking ``?`` placeholders on either back end."""

    def __init__(self, db: Database, cur: Any) -> None:
        self._db = db
        self._cur = cur

    def execute(self, statement: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        self._cur.execute(self._db.sql(statement), tuple(params))
        return self._cur.rowcount

    def insert(self, statement: str, params: Sequence[Any] = ()) -> int:
        """Run one INSERT into a table with an ``id`` key; the new row's id (``RETURNING`` on PostgreSQL;
        SQLite's ``lastrowid``, as SQLite has ``RETURNING`` only from 3.35 and EL9 ships 3.34)."""
        if self._db.dialect == "sqlite":
            self._cur.execute(statement, tuple(params))
            return int(self._cur.lastrowid)
        self._cur.execute(self._db.sql(statement + " RETURNING id"), tuple(params))
        return int(self._cur.fetchone()[0])

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cur.executemany(self._db.sql(statement), [tuple(r) for r in rows])

    def fetchall(self, statement: str, params: Sequence[Any] = ()) -> list[tuple]:
        self._cur.execute(self._db.sql(statement), tuple(params))
        return self._cur.fetchall()
