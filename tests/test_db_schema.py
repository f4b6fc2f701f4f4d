"""Schema creation from many processes at once: stage nodes on a fresh site all create their tables."""

from __future__ import annotations

import multiprocessing as mp

import pytest

PROCESSES = 8


def _create(url: str, barrier) -> str:
    from pipeline.archive.store import _TABLES
    from pipeline.core.db import create_tables, engine_for
    from pipeline.core.osf import Blackboard

    barrier.wait()
    try:  # the OSF's DB-API tables and the archive's SQLAlchemy ones, as a fresh site's first nodes create them
        Blackboard(url)
        create_tables(engine_for(url), _TABLES)
    except Exception as exc:  # reported to the parent, which fails the test with it
        return f"{type(exc).__name__}: {exc}"
    return "ok"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_create_tables(backend, tmp_path, request):
    url = f"sqlite:///{tmp_path / 'fresh.db'}" if backend == "sqlite" else request.getfixturevalue("pg_database")
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(PROCESSES)
        with ctx.Pool(PROCESSES) as pool:
            outcomes = pool.starmap(_create, [(url, barrier)] * PROCESSES)
    assert outcomes == ["ok"] * PROCESSES
