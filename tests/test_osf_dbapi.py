"""The OSF on plain DB-API: a held write lock becomes a retryable LOCK_TIMEOUT, threads never share a
transaction, and a claim reads and moves its rows under one write lock."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from pipeline.core.dbapi import Database, sqlite_path
from pipeline.core.errors import LockTimeout
from pipeline.core.exitcodes import ExitCode
from pipeline.core.osf import Blackboard, TransitionConflict


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'owl.db'}"


def test_sqlite_url_path_reads_like_sqlalchemy(tmp_path):
    assert sqlite_path(f"sqlite:///{tmp_path}/owl.db") == f"{tmp_path}/owl.db"
    assert sqlite_path("sqlite:///rel/owl.db") == "rel/owl.db"
    assert sqlite_path("sqlite://") == ":memory:"


def test_held_write_lock_is_a_retryable_lock_timeout(url):
    bb = Blackboard(url, busy_timeout=0.3)
    bb.create("j9cv58abq")
    holder = sqlite3.connect(sqlite_path(url), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process mid-transaction
    t0 = time.monotonic()
    with pytest.raises(LockTimeout, match=r"database lock timeout while moving CA of j9cv58abq") as caught:
        bb.transition("j9cv58abq", "CA", "_", "p")
    assert time.monotonic() - t0 >= 0.25  # it waited the busy timeout before giving up
    assert caught.value.code == ExitCode.LOCK_TIMEOUT
    holder.execute("ROLLBACK")
    bb.transition("j9cv58abq", "CA", "_", "p")  # the retry succeeds once the lock is gone
    assert bb.get("j9cv58abq").letter("CA") == "p"


def test_threads_claim_on_their_own_connections(url):
    """Eight threads race for one column: exactly one wins, the rest see a conflict, nothing is lost."""
    bb = Blackboard(url)
    bb.create("j9cv58abq")
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def claim(n: int) -> None:
        barrier.wait()
        try:
            bb.transition("j9cv58abq", "CA", "_", "p", who=f"t{n}")
            outcomes.append("won")
        except TransitionConflict:
            outcomes.append("lost")

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]
    assert [(h.old, h.new) for h in bb.history("j9cv58abq") if h.column == "CA"] == [("_", "p")]
    assert len({Database(url).connection() for _ in range(3)}) == 1  # one connection per thread, reused


def test_failed_transaction_leaves_nothing_behind(url):
    bb = Blackboard(url)
    bb.create("j9cv58abq")
    bb.create("j9cv58acq")
    bb.transition("j9cv58acq", "CA", "_", "c")
    with pytest.raises(TransitionConflict, match="j9cv58acq is 'c'"):
        bb.transition(["j9cv58abq", "j9cv58acq"], "CA", "_", "p")
    assert bb.get("j9cv58abq").letter("CA") == "_"
    assert bb.holders() == []
    assert not Database(url).connection().in_transaction


def test_postgres_connection_lost_is_replaced(pg_database):
    """A server-side end of the connection (restart, idle timeout) costs the next caller nothing."""
    import psycopg

    from pipeline.core.dbapi import postgres_conninfo

    bb = Blackboard(pg_database)
    bb.create("j9cv58abq")
    pid = bb.db.connection().info.backend_pid
    with psycopg.connect(postgres_conninfo(pg_database), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    bb.transition("j9cv58abq", "CA", "_", "p")
    assert bb.get("j9cv58abq").letter("CA") == "p"
    assert bb.db.connection().info.backend_pid != pid
