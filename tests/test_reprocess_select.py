"""Reprocessing selection over a synthetic catalogue: the shortcuts must give crds's own answer."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from pipeline.archive.store import ArchiveVersion
from pipeline.core.db import engine_for
from pipeline.orchestration import reprocess
from pipeline.science import refs
from tests.catalogue_synth import NEWEST, REALDATA, add_boundary_exposures, full_changes, sample, synthesise
from tests.refs_support import real_cache

EXPOSURES = 500


@pytest.fixture(scope="module")
def catalogue(module_tmp):
    """A site whose catalogue holds EXPOSURES varied real headers, processed with several real contexts."""
    if not (REALDATA / "crds" / "mappings_hst_2015").is_dir():
        pytest.skip("real HST data not available")
    from pipeline.core.config import init_site

    mp = pytest.MonkeyPatch()
    mp.delenv("CRDS_PATH", raising=False)
    site = init_site(module_tmp("catalogue") / "site")
    real_cache(site.root, REALDATA, NEWEST)
    synthesise(site, EXPOSURES)
    cache = refs.cache_root(site)
    add_boundary_exposures(site, refs.load_context(cache, "hst_0300.pmap"), refs.load_context(cache, NEWEST), [
        ("WFC3", "darkfile", "headers_only_samples/ib4606c5q_flc_10x10sample.fits"),
        ("ACS", "darkfile", "headers_only_samples/jbt122x8q_flc_header.fits"),
        ("ACS", "biasfile", "headers_only_samples/jbt122x8q_flc_header.fits")])
    yield site
    mp.undo()


@pytest.fixture(scope="module")
def selection(catalogue):
    return reprocess.select_affected(catalogue, NEWEST)


def test_selection_equals_full_lookups_of_every_exposure(catalogue, selection):
    cache = refs.cache_root(catalogue)
    new = refs.load_context(cache, NEWEST)
    everything = sample(catalogue, 10**9)  # every ACS and WFC3 exposure
    expected = {d: full_changes(h, refs.load_context(cache, ctx), new) for d, ctx, h in everything}
    expected = {d: types for d, types in expected.items() if types}
    got = {a.dataset: set(a.types) for a in selection.affected}
    assert got == expected
    assert len(got) > 20, "the synthetic archive must hold affected exposures of several kinds"
    assert {a.instrument for a in selection.affected} == {"ACS", "WFC3"}
    # the shortcuts did their job: far fewer lookups than exposures x types, many spared by USEAFTER
    assert selection.spared > 0 and selection.lookups < selection.considered


def test_each_exposure_is_judged_against_its_own_context(catalogue, selection):
    contexts = {a.dataset: a.old_context for a in selection.affected}
    rows = dict(reprocess.catalogue_groups(catalogue))
    assert {ctx for ctx, _inst in rows if ctx} == {"hst_0300.pmap", "hst_0320.pmap", "hst_0340.pmap",
                                                   "hst_0348.pmap"}
    assert set(contexts.values()) <= {"hst_0300.pmap", "hst_0320.pmap", "hst_0340.pmap", "hst_0348.pmap"}
    # hst_0348 -> hst_0349 changes only ACS bias rules: nothing else may be selected from it
    for a in selection.affected:
        if a.old_context == "hst_0348.pmap":
            assert a.instrument == "ACS" and a.types == ["biasfile"], a
    for a in selection.affected:  # the files named are what crds says, not placeholders
        for c in a.changes:
            assert c.old != c.new and all(v.endswith(".fits") or v in ("N/A", reprocess.NOT_FOUND, reprocess.OMITTED)
                                          for v in (c.old, c.new))


def test_scope_options_narrow_the_same_answer(catalogue, selection):
    wfc3 = reprocess.select_affected(catalogue, NEWEST, instruments=["wfc3"])
    assert [a.dataset for a in wfc3.affected] == [a.dataset for a in selection.affected if a.instrument == "WFC3"]
    recent = reprocess.select_affected(catalogue, NEWEST, since="2013-01-01")
    dates = {d: h["DATE-OBS"] for d, _c, h in sample(catalogue, 10**9)}
    assert [a.dataset for a in recent.affected] == [a.dataset for a in selection.affected
                                                    if dates[a.dataset] >= "2013-01-01"]
    # --old-context: every exposure against one context, whatever it was processed with
    pinned = reprocess.select_affected(catalogue, NEWEST, old_context="hst_0320.pmap")
    assert set(pinned.changed_types) == {"hst_0320.pmap"} and {a.old_context for a in pinned.affected} == \
        {"hst_0320.pmap"}
    cache = refs.cache_root(catalogue)
    old, new = refs.load_context(cache, "hst_0320.pmap"), refs.load_context(cache, NEWEST)
    expected = {d: full_changes(h, old, new) for d, _c, h in sample(catalogue, 10**9)}
    assert {a.dataset: set(a.types) for a in pinned.affected} == {d: t for d, t in expected.items() if t}


def test_uncalibrated_and_unknown_contexts_are_reported_not_guessed(catalogue):
    engine = engine_for(catalogue.database_url)
    v = ArchiveVersion
    names = [d for d, _c, _h in sample(catalogue, 2, seed=11)]
    with engine.connect() as conn:
        saved = conn.execute(select(v.id, v.crds_context).where(v.dataset.in_(names))).all()
    with engine.begin() as conn:
        conn.execute(update(v).where(v.dataset == names[0]).values(crds_context=None))
        conn.execute(update(v).where(v.dataset == names[1]).values(crds_context="hst_0999.pmap"))
    try:
        sel = reprocess.select_affected(catalogue, NEWEST)
    finally:
        with engine.begin() as conn:
            for row_id, ctx in saved:
                conn.execute(update(v).where(v.id == row_id).values(crds_context=ctx))
    skipped = {name: reason for reason, found in sel.skipped.items() for name in found}
    assert skipped[names[0]].startswith("no CRDS context catalogued")
    assert "hst_0999.pmap" in skipped[names[1]] and "not in the cache" in skipped[names[1]]
    assert not set(names) & {a.dataset for a in sel.affected}
