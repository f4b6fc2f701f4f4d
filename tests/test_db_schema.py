"""Schema creation from many processes at once: stage nodes on a fresh site all create their tables."""

from __future__ import annotations

import multiprocessing as mp

import pytest

PROCESSES = 8


def _create(url: str, barrier) -> str:
    from pipeline.archive.tables import _TABLES
    from pipeline.core.db import create_tables, engine_for
    from pipeline.core.osf import Blackboard

    barrier.wait()
    try:  # the OSF's DB-API tables and the archive's SQLAlchemy ones, as a fresh site's first nodes create them
        Blackboard(url)
        create_tables(engine_for(url), _TABLES)
    except Exception as exc:  # reported to the parent, which fails the test with it and where it was raised
        import traceback

        where = traceback.extract_tb(exc.__traceback__)
        return f"{type(exc).__name__}: {exc} at " + " < ".join(f"{f.name}:{f.lineno}" for f in reversed(where[-4:]))
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


#: The OSF and node-usage tables as the SQLAlchemy models of owlpipe <= 0.1 declared them: (column, type,
#: nullable) in order, primary key, indexes. Sites created then must open unchanged, and new sites get these.
OLD_SCHEMA = {
    "osf": ([("dataset", "VARCHAR(9)", False), ("data_id", "VARCHAR(3)", False), ("dcf_num", "VARCHAR(3)", False),
             ("command", "VARCHAR(16)", False), ("status", "VARCHAR(12)", False), ("parent", "VARCHAR(9)", True),
             ("workflow", "VARCHAR(32)", False), ("priority", "INTEGER", False), ("created", "FLOAT", False),
             ("updated", "FLOAT", False)],
            ["dataset"], {"ix_osf_data_id": ["data_id"], "ix_osf_parent": ["parent"]}),
    "osf_process": ([("dataset", "VARCHAR(9)", False), ("column", "VARCHAR(2)", False), ("host", "VARCHAR(255)", False),
                     ("pid", "INTEGER", False), ("pid_start", "INTEGER", False), ("started", "FLOAT", False)],
                    ["dataset", "column"], {}),
    "osf_history": ([("id", "INTEGER", False), ("dataset", "VARCHAR(9)", False), ("column", "VARCHAR(2)", False),
                     ("old", "VARCHAR(12)", False), ("new", "VARCHAR(12)", False), ("exit_code", "INTEGER", True),
                     ("message", "TEXT", False), ("who", "VARCHAR(64)", False), ("host", "VARCHAR(255)", False),
                     ("pid", "INTEGER", False), ("time", "FLOAT", False)],
                    ["id"], {"ix_osf_history_dataset": ["dataset"], "ix_osf_history_time": ["time"]}),
    "node_usage": ([("id", "INTEGER", False), ("stage", "VARCHAR(32)", False), ("dataset", "VARCHAR(9)", False),
                    ("instrument", "VARCHAR(16)", False), ("detector", "VARCHAR(16)", False),
                    ("nexp", "INTEGER", False), ("input_mb", "FLOAT", False), ("peak_rss_mb", "FLOAT", False),
                    ("wall_s", "FLOAT", False), ("exit_code", "INTEGER", False), ("finished", "FLOAT", False)],
                   ["id"], {"ix_node_usage_key": ["instrument", "stage", "nexp", "detector"]}),
}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_dbapi_tables_are_the_old_schema(backend, tmp_path, request):
    """The DB-API OSF and usage history create exactly the tables SQLAlchemy created (read back by reflection)."""
    from sqlalchemy import inspect

    from pipeline.core import usage
    from pipeline.core.db import engine_for
    from pipeline.core.osf import Blackboard

    url = f"sqlite:///{tmp_path / 'fresh.db'}" if backend == "sqlite" else request.getfixturevalue("pg_database")
    Blackboard(url)
    assert usage.history(url, "CA", "ACS", 1) == []
    found = inspect(engine_for(url))
    for table, (columns, key, indexes) in OLD_SCHEMA.items():
        got = [(c["name"], str(c["type"]).replace("DOUBLE PRECISION", "FLOAT"), c["nullable"])
               for c in found.get_columns(table)]
        assert got == columns, table
        assert found.get_pk_constraint(table)["constrained_columns"] == key
        assert {i["name"]: i["column_names"] for i in found.get_indexes(table)} == indexes
