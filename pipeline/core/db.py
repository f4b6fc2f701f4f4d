"""One SQLAlchemy engine per database URL and process, tuned for many short-lived writers.

SQLite runs in WAL mode with a busy timeout, so readers never block writers and concurrent
writers queue instead of failing; PostgreSQL is used as given by its URL.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence

from sqlalchemy import Engine, MetaData, Table, create_engine, event, text
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.schema import CreateIndex, CreateTable

from pipeline.core.dbapi import DDL_LOCK, sqlite_pragmas


class Base(DeclarativeBase):
    """Declarative base of the SQLAlchemy tables (archive catalogue, campaigns, service); the OSF and the
    node-usage history are plain DB-API (:mod:`pipeline.core.dbapi`) on the same database."""

    metadata = MetaData()


@functools.cache
def engine_for(url: str, busy_timeout: float = 30.0) -> Engine:
    """The process-wide engine for ``url`` (SQLite: WAL, busy timeout, foreign keys on)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": busy_timeout, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
            sqlite_pragmas(dbapi_conn, busy_timeout)
    else:
        engine = create_engine(_with_driver(url), pool_pre_ping=True)
    return engine


def _with_driver(url: str) -> str:
    """Plain ``postgresql://`` URLs use psycopg 3 (SQLAlchemy's default would be psycopg2)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def create_tables(engine: Engine, tables: Sequence[Table]) -> None:
    """Create ``tables`` (and their indexes) if missing, safely from many processes at once (the stage
    nodes of a fresh site). ``create_all`` checks, then creates: two processes both pass the check and one
    dies. ``IF NOT EXISTS`` closes that on SQLite; on PostgreSQL concurrent ``IF NOT EXISTS`` can still
    collide in the catalogue, so a transaction-scoped advisory lock makes them take turns."""
    wanted = set(tables)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": DDL_LOCK})
        for table in (t for t in Base.metadata.sorted_tables if t in wanted):
            conn.execute(CreateTable(table, if_not_exists=True))
            for index in table.indexes:
                conn.execute(CreateIndex(index, if_not_exists=True))
