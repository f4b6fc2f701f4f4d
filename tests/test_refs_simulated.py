"""RF and BC on the synthetic observatory: its CRDS cache resolves its raws, and BC finds every reference
present and matching (FILETYPE, DETECTOR, FILTER, CCDGAIN, CCDAMP, binning) in its cache."""

from __future__ import annotations

import pytest
from astropy.io import fits

from pipeline.science import refs
from pipeline.science.checks import bc


def simulated_raws(directory, seed=7):
    """A dithered pair per instrument, written as ``owl simulate --fits`` writes them."""
    from pipeline.simulate.downlink import simulate_downlink, write_fits

    written = write_fits(simulate_downlink(seed, "subarray", 2, ["wfc3", "acs"]), directory)
    return sorted(p for p in written if p.name.endswith("_raw.fits"))


@pytest.fixture(scope="module")
def simulated(module_tmp):
    from pipeline.simulate.prebuilt import build_or_link  # linked from the session's prebuilt cache

    root = module_tmp("simcrds")
    context = build_or_link(root / "crds", ("wfc3", "acs"), size="subarray")
    return root / "crds", context, simulated_raws(root)


def test_simulated_context_resolves_simulated_raws(simulated, monkeypatch):
    monkeypatch.delenv("CRDS_CONTEXT", raising=False)
    cache, context_name, raws = simulated
    ctx = refs.load_context(cache)
    assert ctx.name == context_name
    results = refs.assign_bestrefs(raws, ctx)
    assert {r.lookup.instrument for r in results} == {"WFC3", "ACS"}
    for result in results:
        header = fits.getheader(result.path)
        prefix = refs.IRAF_PREFIX[result.lookup.instrument]
        for keyword in ("CCDTAB", "OSCNTAB", "BIASFILE", "DARKFILE", "PFLTFILE", "IMPHTTAB", "SATUFILE"):
            value = header[keyword]
            assert value.startswith(f"{prefix}$"), (result.path.name, keyword, value)
            assert refs.locate_reference(value, cache, {}).is_file()
        assert header["DFLTFILE"] == "N/A" and header["CRDS_CTX"] == context_name


def test_simulated_raws_pass_every_before_calibration_rule(simulated):
    cache, _context, raws = simulated
    refs.assign_bestrefs(raws, refs.load_context(cache))
    for raw in raws:
        assert [f.line() for f in bc.check_raw(raw, cache, environ={})] == []


def test_a_delivered_dark_becomes_the_best_reference_under_the_new_context(simulated, tmp_path):
    import shutil

    from pipeline.simulate import bump_reference

    cache, first, raws = simulated
    copy = tmp_path / "crds"
    shutil.copytree(cache, copy)
    before = refs.load_context(copy, first)
    newer = bump_reference(copy, "darkfile", detector="UVIS")
    after = refs.load_context(copy)  # the delivery made the new context operational
    assert after.name == newer != first
    assert refs.changed_types(before, after) == {"WFC3": ["darkfile"]}
    uvis = next(p for p in raws if p.name.startswith("i"))
    params = refs.dataset_parameters(uvis)
    old_dark = refs.best_references(params, before, ["darkfile"])["darkfile"]
    new_dark = refs.best_references(params, after, ["darkfile"])["darkfile"]
    assert new_dark != old_dark and (copy / "references" / "hst" / new_dark).is_file()
    acs = next(p for p in raws if p.name.startswith("j"))
    assert refs.best_references(refs.dataset_parameters(acs), after) == refs.best_references(
        refs.dataset_parameters(acs), before)
