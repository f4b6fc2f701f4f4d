"""Shared fixtures: a fresh site per test, and the read-only real HST data beside the repository."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ["CONDOR_CONFIG"] = "/dev/null"
# Simulated reference caches are deterministic: build each kind once per test session and link it
# into every test site (pipeline/simulate/prebuilt.py); a whole-chip subarray cache is ~1 GB to write.
_OWN_REFCACHE = "OWL_SIM_REFCACHE" not in os.environ
SIM_REFCACHE = os.environ.setdefault("OWL_SIM_REFCACHE", tempfile.mkdtemp(prefix="owl-simrefs-"))

REPO = Path(__file__).resolve().parent.parent
REALDATA = Path(os.environ.get("OWL_REALDATA", REPO.parent / "shared" / "realdata"))


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
               ) -> Iterator[Callable[[str], Path]]:
    """``mktemp`` for a module's shared data (simulated caches of up to ~2 GB): its directories go when the
    module's tests are done, unless one of them failed. pytest keeps ``tmp_path_factory`` directories
    until the session ends, and the suite's would add up to more disk than a CI machine has."""
    made: list[Path] = []
    failed_before = request.session.testsfailed

    def mktemp(name: str) -> Path:
        made.append(tmp_path_factory.mktemp(name))
        return made[-1]

    yield mktemp
    if request.session.testsfailed == failed_before:
        for path in made:
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A freshly initialised site; OWL_SITE points at it so stage executables find it."""
    from pipeline.core.config import init_site, load_site

    for key in [k for k in os.environ if k.startswith("OWL_") and k != "OWL_SIM_REFCACHE"]:
        monkeypatch.delenv(key)
    # the pipeline tests exercise the built-in engine even where hstcal is on PATH ('auto' would pick
    # hstcal there), through the site's own override variable, which every stage process inherits; the
    # hstcal delegate and the engine comparison have tests of their own
    monkeypatch.setenv("OWL_CALIBRATION__ENGINE", "builtin")
    s = load_site(init_site(tmp_path / "site").root)
    monkeypatch.setenv("OWL_SITE", str(s.root))
    return s


@pytest.fixture
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.skip(f"real HST data not found at {REALDATA} (set OWL_REALDATA)")
    return REALDATA


def real_file(relative: str) -> Path:
    """A file of the real HST data, or skip the test (as the ``realdata`` fixture does) when it is absent."""
    path = REALDATA / relative
    if not path.exists():
        pytest.skip(f"real HST file not found: {path} (set OWL_REALDATA)")
    return path


def require_system(why_missing: str | None) -> None:
    """Skip a test whose system package (PostgreSQL, Chromium) is missing here; under ``CI=true`` fail
    instead, because ``.ci/run`` installs them and a skip there would hide their absence."""
    if why_missing is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why_missing}; CI=true: .ci/run should have installed it")
    pytest.skip(why_missing)


@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL server for the whole session (tests/pgserver.py)."""
    from tests import pgserver

    require_system(pgserver.available())
    with pgserver.postgres_url() as url:
        yield url


@pytest.fixture
def pg_database(pg_server) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    from tests import pgserver

    return pgserver.fresh_database(pg_server)


def pytest_sessionfinish(session, exitstatus) -> None:
    """Remove this session's prebuilt reference caches (sites keep their hard links)."""
    if _OWN_REFCACHE:
        shutil.rmtree(SIM_REFCACHE, ignore_errors=True)
