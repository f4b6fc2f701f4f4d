"""One SQLAlchemy engine per database URL and process, tuned for many short-lived writers.

SQLite runs in WAL mode with a busy timeout, so readers never block writers and concurrent
writers queue instead of failing; PostgreSQL is used as given by its URL.
"""

from __future__ import annotations

import functools
import sqlite3

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase

from pipeline.core.errors import LockTimeout


class Base(DeclarativeBase):
    """Declarative base shared by every owlpipe table (OSF, archive catalogue, campaigns)."""

    metadata = MetaData()


@functools.cache
def engine_for(url: str, busy_timeout: float = 30.0) -> Engine:
    """The process-wide engine for ``url`` (SQLite: WAL, busy timeout, foreign keys on)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": busy_timeout, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
    else:
        engine = create_engine(_with_driver(url), pool_pre_ping=True)
    return engine


def _with_driver(url: str) -> str:
    """Plain ``postgresql://`` URLs use psycopg 3 (SQLAlchemy's default would be psycopg2)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError) and "locked" in str(exc).lower()


def lock_timeout(exc: OperationalError, what: str) -> LockTimeout:
    return LockTimeout(f"database lock timeout while {what}: {exc.orig}")
