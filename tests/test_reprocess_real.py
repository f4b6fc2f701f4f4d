"""``owl reprocess --dry-run`` on real HST headers and the real 2015 CRDS rules, checked against crds itself.

The context pairs were found by diffing the real mappings: hst_0263 -> hst_0264 delivers WFC3
BPIXTAB and DARKFILE rules (the new bad-pixel tables reach the real WFC3/IR headers, the darks do
not), hst_0281 -> hst_0282 new WFC3 IDCTAB and D2IMFILE rules (reaching the real UVIS header only).
What is affected, and with which files, is computed here with ``crds.getrecommendations`` on each
file's full headers, as ``crds bestrefs`` would.
"""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from pipeline.archive.store import Archive
from pipeline.cli import main as owl
from pipeline.orchestration import reprocess
from pipeline.science import refs
from tests.refs_support import real_cache

#: dataset -> (file under realdata, archive kind): the real raws and headers the catalogue holds.
REAL_FILES = {
    "j8bt05njq": ("acs_hrc_j8bt/raw/j8bt05njq_raw.fits", "raw"),
    "j8bt06o6q": ("acs_hrc_j8bt/raw/j8bt06o6q_raw.fits", "raw"),
    "j8bt09jcq": ("acs_hrc_j8bt/raw/j8bt09jcq_raw.fits", "raw"),
    "ib4606c5q": ("headers_only_samples/ib4606c5q_flc_10x10sample.fits", "flc"),
    "ib4606cpq": ("headers_only_samples/ib4606cpq_flt_10x10sample.fits", "flt"),
    "ib3y01c6q": ("headers_only_samples/ib3y01c6q_flt_11x11cutout.fits", "flt"),
    "jbt122x8q": ("headers_only_samples/jbt122x8q_flc_header.fits", "flc"),
    "n8xtzcawq": ("headers_only_samples/n8xtzcawq_nicmos_header_only.fits", "raw"),
    "u5780205r": ("headers_only_samples/WFPC2u5780205r_c0fx.fits", "c0f"),
}
PAIRS = [("hst_0263.pmap", "hst_0264.pmap"), ("hst_0281.pmap", "hst_0282.pmap")]


@pytest.fixture
def real_site(site, realdata, monkeypatch):
    """A site whose CRDS cache is the real 2015 mappings and whose archive holds the real headers."""
    monkeypatch.delenv("CRDS_PATH", raising=False)
    monkeypatch.delenv("CRDS_CONTEXT", raising=False)
    real_cache(site.root, realdata)
    archive = Archive(site)
    for dataset, (path, kind) in REAL_FILES.items():
        archive.ingest(dataset, [(realdata / path, kind)])
    return site


def crds_says(realdata, cache, old: str, new: str) -> dict[str, dict[str, tuple[str, str]]]:
    """{dataset: {type: (old, new)}} for every type crds assigns differently, from each file's full headers."""
    import crds

    def shown(value: str | None) -> str:
        if value is None:
            return reprocess.OMITTED
        if value.upper().startswith("NOT FOUND N/A"):
            return refs.NA
        return reprocess.NOT_FOUND if value.upper().startswith("NOT FOUND") else value

    os.environ.update(CRDS_PATH=str(cache), CRDS_MODE="local")
    try:
        out = {}
        for dataset, (path, _kind) in REAL_FILES.items():
            params = refs.dataset_parameters(realdata / path)
            before = crds.getrecommendations(params, context=old, observatory="hst")
            after = crds.getrecommendations(params, context=new, observatory="hst")
            diff = {t: (shown(before.get(t)), shown(after.get(t))) for t in set(before) | set(after)
                    if shown(before.get(t)) != shown(after.get(t))}
            if diff:
                out[dataset] = diff
        return out
    finally:
        os.environ.pop("CRDS_PATH")


@pytest.mark.parametrize(("old", "new"), PAIRS)
def test_dry_run_lists_what_crds_says_changes(real_site, realdata, old, new):
    expected = crds_says(realdata, real_site.areas.crds, old, new)
    assert expected, f"{old} -> {new} must affect some of the real headers"
    assert set(expected) < set(REAL_FILES), "and leave others alone"
    res = CliRunner().invoke(owl, ["reprocess", "--new-context", new, "--old-context", old, "--dry-run", "--json",
                                   "--site", str(real_site.root)])
    assert res.exit_code == 0, res.output
    listed = json.loads(res.output)
    got = {a["dataset"]: {c["reftype"]: (c["old"], c["new"]) for c in a["changes"]} for a in listed["affected"]}
    assert got == expected
    assert {a["dataset"]: a["unit"] for a in listed["affected"]} == {
        d: {"ib4606c5q": "ib4606060", "ib4606cpq": "ib4606070"}.get(d, d) for d in expected}  # ASN_ID of each
    # only the instrument whose rules differ was read at all
    assert set(listed["changed_types"][old]) == {"WFC3"}
    assert listed["considered"] == sum(1 for d in REAL_FILES if d.startswith("i"))
    # and nothing was submitted or recorded
    assert not (real_site.root / "dags").exists() or not any((real_site.root / "dags").iterdir())


def test_listing_and_scope_options(real_site, realdata):
    old, new = PAIRS[0]

    def run(*extra: str) -> str:
        res = CliRunner().invoke(owl, ["reprocess", "--new-context", new, "--old-context", old, "--dry-run",
                                       "--site", str(real_site.root), *extra])
        assert res.exit_code == 0, res.output
        return res.output

    text = run()
    expected = crds_says(realdata, real_site.areas.crds, old, new)
    for dataset, changes in expected.items():
        line = next(ln for ln in text.splitlines() if ln.startswith(dataset))
        for reftype, (before, after) in changes.items():
            assert reftype.upper() in line and f"{before} -> {after}" in line, line
    assert "WFC3 BPIXTAB" in text and f"{len(expected)} of 3 exposure(s)" in text
    assert "j8bt05njq" not in text  # ACS: its rules did not change
    # --since keeps the 2011 IR exposure, drops the 2009 one; --instrument acs finds nothing to do
    assert "ib4606cpq" in run("--since", "2010-01-01") and "ib3y01c6q" not in run("--since", "2010-01-01")
    assert "0 of 0 exposure(s)" in run("--instrument", "acs")


def test_without_old_context_each_exposure_needs_a_usable_catalogued_one(real_site):
    res = CliRunner().invoke(owl, ["reprocess", "--new-context", "hst_0264.pmap", "--dry-run", "--json",
                                   "--site", str(real_site.root)])
    assert res.exit_code == 0, res.output
    listed = json.loads(res.output)
    skipped = {name: reason for reason, names in listed["skipped"].items() for name in names}
    # the 2002 raws predate CRDS; the flt/flc were processed with contexts newer than this cache holds
    assert skipped["j8bt05njq"].startswith("no CRDS context catalogued")
    assert "hst_1127.pmap" in skipped["ib4606cpq"] and "not in the cache" in skipped["ib4606cpq"]
    assert listed["affected"] == [] and set(skipped) == set(REAL_FILES)


def test_bad_options_are_one_clear_line(real_site):
    res = CliRunner().invoke(owl, ["reprocess", "--new-context", "hst_9999.pmap", "--dry-run",
                                   "--site", str(real_site.root)])
    assert res.exit_code == 3 and "hst_9999.pmap is not in the cache" in res.output
    res = CliRunner().invoke(owl, ["reprocess", "--new-context", "hst_0264.pmap", "--since", "last week",
                                   "--dry-run", "--site", str(real_site.root)])
    assert res.exit_code == 2 and "not an ISO date" in res.output
