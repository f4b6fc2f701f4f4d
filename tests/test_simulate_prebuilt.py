"""Prebuilt simulated reference caches: one build per key, linked into each site, sites independent."""

from __future__ import annotations

import os

import pytest

from pipeline.simulate import crdscache
from pipeline.simulate.prebuilt import ENV, build_or_link


def test_second_site_links_the_first_build_and_deliveries_stay_per_site(tmp_path):
    assert os.environ.get(ENV)  # the session's store (tests/conftest.py): shared with other tests' sites
    a, b = tmp_path / "a", tmp_path / "b"
    assert build_or_link(a, ("wfc3",), size="subarray") == "hst_0001.pmap"
    assert build_or_link(b, ("wfc3",), size="subarray") == "hst_0001.pmap"
    refs_a = {p.name: p.stat() for p in crdscache.references_dir(a).glob("*.fits")}
    refs_b = {p.name: p.stat() for p in crdscache.references_dir(b).glob("*.fits")}
    assert refs_a and refs_a.keys() == refs_b.keys()
    assert all(refs_a[n].st_ino == refs_b[n].st_ino for n in refs_a)  # one copy of the pixels on disk
    pmap_a, pmap_b = (crdscache.mappings_dir(s) / "hst_0001.pmap" for s in (a, b))
    assert pmap_a.stat().st_ino != pmap_b.stat().st_ino  # mappings are the site's own

    assert crdscache.bump_reference(b, "darkfile", detector="UVIS") == "hst_0002.pmap"
    assert crdscache.latest_context(a) == "hst_0001.pmap"
    assert {p.name for p in crdscache.references_dir(a).glob("*.fits")} == refs_a.keys()
    assert crdscache.read_marker(a) == crdscache.read_marker(b)


def test_without_the_variable_each_site_builds_its_own(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert build_or_link(tmp_path / "c", ("wfc3",), size="subarray") == "hst_0001.pmap"
    assert all(p.stat().st_nlink == 1 for p in crdscache.references_dir(tmp_path / "c").glob("*.fits"))


def test_a_site_with_a_context_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path / "store"))
    build_or_link(tmp_path / "d", ("wfc3",), size="subarray")
    with pytest.raises(crdscache.CacheError, match="already holds a CRDS context"):
        build_or_link(tmp_path / "d", ("wfc3",), size="subarray")
    assert not [p for p in os.listdir(tmp_path / "store") if ".building-" in p]
