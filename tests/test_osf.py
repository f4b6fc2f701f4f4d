"""The OSF blackboard: compare-and-set transitions, history, aggregation, crash detection, concurrency."""

from __future__ import annotations

import multiprocessing as mp
import random
from collections import Counter

import pytest

from pipeline.core.osf import COLUMNS, Blackboard, OSFError, TransitionConflict, UnknownDataset, aggregate
from tests import pgserver


@pytest.fixture(scope="module")
def pg_server():
    why = pgserver.available()
    if why:
        pytest.skip(why)
    with pgserver.postgres_url() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Every blackboard test runs on SQLite (the default) and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'osf.db'}"
    url = request.getfixturevalue("pg_server")
    from sqlalchemy import text

    from pipeline.core.db import engine_for

    with engine_for(url).begin() as conn:  # a clean schema per test
        conn.execute(text("DROP TABLE IF EXISTS osf, osf_process, osf_history"))
    return url


@pytest.fixture
def bb(db_url):
    return Blackboard(db_url)


def test_create_is_idempotent_and_validated(bb):
    assert bb.create("j9cv58020", workflow="new_science")
    assert not bb.create("J9CV58020")
    assert bb.get("j9cv58020").status == "_" * len(COLUMNS)
    with pytest.raises(ValueError, match="invalid dataset name"):
        bb.create("../../etc")
    with pytest.raises(OSFError, match="12 letters"):
        bb.create("j9cv58abq", status="ccc")


def test_compare_and_set(bb):
    bb.create("j9cv58abq")
    bb.transition("j9cv58abq", "RF", "_w", "p", who="t")
    with pytest.raises(TransitionConflict, match="j9cv58abq is 'p'"):
        bb.transition("j9cv58abq", "RF", "_w", "p")
    bb.transition("j9cv58abq", "RF", "p", "c", exit_code=0)
    assert bb.get("j9cv58abq").letter("RF") == "c"
    with pytest.raises(UnknownDataset):
        bb.transition("j9cv58zzq", "RF", "_", "p")
    with pytest.raises(OSFError, match="unknown OSF column"):
        bb.transition("j9cv58abq", "ZZ", "_", "p")
    hist = [(h.column, h.old, h.new) for h in bb.history("j9cv58abq")]
    assert hist == [("", "", "_" * 12), ("RF", "_", "p"), ("RF", "p", "c")]


def test_multi_row_transition_is_all_or_nothing(bb):
    for name in ("j9cv58abq", "j9cv58acq"):
        bb.create(name)
    bb.transition("j9cv58acq", "MD", "_", "c")
    with pytest.raises(TransitionConflict, match="j9cv58acq is 'c'"):
        bb.transition(["j9cv58abq", "j9cv58acq"], "MD", "_", "p")
    assert bb.get("j9cv58abq").letter("MD") == "_"


def test_parent_aggregates_members(bb):
    bb.create("j9cv58020")
    bb.create("j9cv58abq", parent="j9cv58020")
    bb.create("j9cv58acq", parent="j9cv58020")
    assert bb.members("j9cv58020") == ["j9cv58abq", "j9cv58acq"]
    bb.transition("j9cv58abq", "CA", "_", "p")
    assert bb.get("j9cv58020").letter("CA") == "p"
    bb.transition("j9cv58abq", "CA", "p", "c")
    assert bb.get("j9cv58020").letter("CA") == "w"  # one of two done, the other still waiting
    bb.transition("j9cv58acq", "CA", "_", "c")
    assert bb.get("j9cv58020").letter("CA") == "c"
    assert aggregate("ce") == "e" and aggregate("nn") == "n" and aggregate("w_") == "w"
    assert aggregate("cp") == "p" and aggregate("c_") == "w" and aggregate("cn") == "c" and aggregate("__") == "_"


def test_queries_and_opus_name(bb):
    bb.create("j9cv58abq")
    bb.create("i9cv58abq")
    bb.transition("i9cv58abq", "CA", "_", "e")
    assert [e.dataset for e in bb.query(column="CA", letter="ex")] == ["i9cv58abq"]
    assert [e.dataset for e in bb.query(data_id="acs")] == ["j9cv58abq"]
    assert bb.counts()["CA"] == {"_": 1, "e": 1}
    name = bb.get("i9cv58abq").opus_name()
    head, tail = name.split(".", 1)
    assert head.endswith("-_____e______") and tail == "i9cv58abq-wf3-000-____"


def test_dead_holder_becomes_x(bb):
    bb.create("j9cv58abq")
    proc = mp.get_context("spawn").Process(target=int)
    proc.start()
    proc.join()
    bb.transition("j9cv58abq", "CA", "_", "p", pid=proc.pid)
    assert bb.reap() == [("j9cv58abq", "CA")]
    assert bb.get("j9cv58abq").letter("CA") == "x"
    assert bb.history("j9cv58abq")[-1].exit_code == 41


def test_live_holder_is_not_reaped(bb):
    bb.create("j9cv58abq")
    bb.transition("j9cv58abq", "CA", "_", "p")  # this process: alive
    assert bb.reap() == []


# -- concurrency: 8 processes, 200 datasets ------------------------------------------------------
N_DATASETS, N_PROCS = 200, 8
RACE_COLUMNS = ("RF", "CA", "CL")


def _names():
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return [f"i9cv{i // 36:02d}{alphabet[i % 36]}aq" for i in range(N_DATASETS)]


def _worker(url: str, seed: int, out: mp.Queue) -> None:
    bb = Blackboard(url, busy_timeout=60)
    rng = random.Random(seed)
    cells = [(d, c) for d in _names() for c in RACE_COLUMNS]
    rng.shuffle(cells)
    won, lost = [], 0
    for dataset, column in cells:
        try:
            bb.transition(dataset, column, "_", "p", who=f"w{seed}")
        except TransitionConflict:
            lost += 1
            continue
        bb.transition(dataset, column, "p", "c", who=f"w{seed}")
        won.append((dataset, column))
    out.put((won, lost))


def test_concurrent_writers_no_lost_update_no_double_winner(db_url):
    url = db_url
    bb = Blackboard(url)
    names = _names()
    assert len(set(names)) == N_DATASETS
    for name in names:
        bb.create(name)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, seed, out)) for seed in range(N_PROCS)]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    winners = Counter(cell for won, _ in results for cell in won)
    cells = {(d, c) for d in names for c in RACE_COLUMNS}
    assert set(winners) == cells, "every cell was claimed"
    assert max(winners.values()) == 1, "no cell had two winners"
    assert sum(lost for _, lost in results) == len(cells) * (N_PROCS - 1)
    # No lost update: every raced column ended c, untouched columns still _, in every row.
    expected = "".join("c" if c in RACE_COLUMNS else "_" for c in COLUMNS)
    assert {e.status for e in bb.query()} == {expected}
    # History: exactly one _->p and one p->c per cell, by the same winner.
    moves = Counter((h.dataset, h.column, h.old, h.new) for h in bb.history() if h.column)
    assert len(moves) == 2 * len(cells) and set(moves.values()) == {1}
