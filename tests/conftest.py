"""Shared fixtures: a fresh site per test, and the read-only real HST data beside the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["CONDOR_CONFIG"] = "/dev/null"

REPO = Path(__file__).resolve().parent.parent
REALDATA = Path(os.environ.get("OWL_REALDATA", REPO.parent / "shared" / "realdata"))


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A freshly initialised site; OWL_SITE points at it so stage executables find it."""
    from pipeline.core.config import init_site

    for key in [k for k in os.environ if k.startswith("OWL_")]:
        monkeypatch.delenv(key)
    s = init_site(tmp_path / "site")
    monkeypatch.setenv("OWL_SITE", str(s.root))
    return s


@pytest.fixture
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.skip(f"real HST data not found at {REALDATA} (set OWL_REALDATA)")
    return REALDATA
