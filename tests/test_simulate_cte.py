"""The simulator's pixel-based CTE: PCTETAB, BIACFILE and DRKCFILE in its CRDS cache (crds certify,
best references, a PCTETAB delivery) and CTE trails in UVIS raws whose PCTECORR is PERFORM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.core.config import load_instrument_defaults, with_pctecorr
from pipeline.science import refs
from pipeline.science.calib.cte.invert import correct
from pipeline.science.calib.cte.pctetab import read_pctetab
from pipeline.science.calib.cte.raz import ROWS
from pipeline.simulate.crdscache import bump_reference, mappings_dir, references_dir
from pipeline.simulate.ctefiles import observatory_model, time_scaling, trail_charge, trap_model
from pipeline.simulate.downlink import iter_downlink, write_fits
from pipeline.simulate.prebuilt import build_or_link  # linked from the session's prebuilt cache
from tests.refs_support import assert_certify_clean

CTE_TYPES = ("pctetab", "biacfile", "drkcfile")


@pytest.fixture(scope="module")
def cache(module_tmp) -> Path:
    root = module_tmp("ctecrds")
    build_or_link(root, ("wfc3", "acs"), size="subarray")
    return root


@pytest.fixture(scope="module")
def raws(module_tmp) -> dict[str, list]:
    """The same UVIS singleton simulated with PCTECORR = PERFORM (a site with pctecorr = UVIS) and OMIT."""
    on = with_pctecorr(load_instrument_defaults(), ["UVIS"])
    return {"on": list(iter_downlink(7, "subarray", 1, ("wfc3",), defaults=on)),
            "off": list(iter_downlink(7, "subarray", 1, ("wfc3",)))}


def _named(cache: Path, suffix: str) -> Path:
    found = sorted(references_dir(cache).glob(f"*i_{suffix}.fits"))
    assert len(found) == 1, found
    return found[0]


def test_cte_references_certify_clean(cache: Path) -> None:
    assert_delivery_certifies(cache, "wfc3", CTE_TYPES, [_named(cache, s) for s in ("cte", "bic", "dkc")])


def assert_delivery_certifies(cache: Path, instrument: str, reftypes: tuple[str, ...], references: list[Path]) -> None:
    """crds certify on the references, their rmaps and the instrument's imaps: 0 errors."""
    files = [str(p) for p in references]
    files += [str(p) for t in reftypes for p in mappings_dir(cache).glob(f"hst_{instrument}_{t}_*.rmap")]
    files += [str(p) for p in mappings_dir(cache).glob(f"hst_{instrument}_*.imap")]
    assert_certify_clean(cache, files, "hst_0001.pmap")


def test_cte_references_have_the_real_layouts_full_chip(cache: Path) -> None:
    with fits.open(_named(cache, "bic")) as bic:
        assert bic[0].header["FILETYPE"] == "CTEBIAS" and bic[0].header["NEXTEND"] == 6
        assert [(h.name, h.ver) for h in bic[1:]] == [(n, v) for v in (1, 2) for n in ("SCI", "ERR", "DQ")]
        assert bic["SCI", 1].data.shape == (2070, 4206) and bic["SCI", 1].header["CCDCHIP"] == 2
        assert bic["ERR", 1].header["PIXVALUE"] == 0  # a non-zero BIAC ERR would freeze the flc ERR
    with fits.open(_named(cache, "dkc")) as dkc:
        assert dkc[0].header["FILETYPE"] == "CTEDARK"
        assert dkc["SCI", 2].data.shape == (2051, 4096) and dkc["SCI", 2].header["CCDCHIP"] == 1
    table = read_pctetab(_named(cache, "cte"))
    model = observatory_model()
    assert np.array_equal(table.qlev, model.qlev) and np.array_equal(table.dpde, model.dpde)
    assert np.array_equal(table.rprof, model.rprof) and (table.nfor, table.npar) == (model.nfor, model.npar)
    assert fits.open(_named(cache, "cte"))["QPROF"].columns["QLEV_Q"].format == "J"


def test_best_references_fill_the_cte_keywords_only_when_pctecorr_is_perform(cache: Path, raws, tmp_path) -> None:
    ctx = refs.load_context(cache, "hst_0001.pmap")
    expected = {t: _named(cache, s).name for t, s in zip(CTE_TYPES, ("cte", "bic", "dkc"), strict=True)}
    for state, want in (("on", expected), ("off", dict.fromkeys(CTE_TYPES, refs.NA))):
        paths = write_fits(raws[state], tmp_path / state)
        raw = next(p for p in paths if p.name.endswith("_raw.fits"))
        lookup = ctx.lookup(refs.dataset_parameters(raw))
        assert not lookup.failures, lookup.failures
        assert {t: lookup.refs[t] for t in CTE_TYPES} == want, state
        updates = refs.header_updates(lookup, ctx, version="test")
        assert updates["PCTETAB"] == (f"iref${want['pctetab']}" if state == "on" else "N/A")


def test_uvis_raws_carry_cte_parameters_and_trails_only_with_pctecorr(raws) -> None:
    on, off = raws["on"][0].members[0], raws["off"][0].members[0]
    assert on.raw[0].header["PCTECORR"] == "PERFORM" and off.raw[0].header["PCTECORR"] == "OMIT"
    for key in ("PCTENSMD", "PCTETLEN", "PCTENFOR", "PCTENPAR", "FIXROCR", "PCTERNOI"):
        assert key in on.raw[0].header and key in off.raw[0].header  # calwf3 reads them with no default
    diff = on.raw[1].data.astype(np.float64) - off.raw[1].data.astype(np.float64)
    assert diff.any()
    # the same charge: traps delay it up the column, they do not make or keep much of it
    assert abs(diff.sum()) < 1e-5 * off.raw[1].data.sum()
    np.testing.assert_array_equal(on.truth.chips[0].scene, off.truth.chips[0].scene)  # truth without trails


def test_trails_are_what_the_engine_removes() -> None:
    """Stars far from the register lose >= 10 % to the traps; the engine's inversion (PCTENFOR = 5
    iterations) gives most of it back: each star's remaining loss is under a third of its trail loss
    (measured: 0-4 % left of 10-20 %; a strong table and a late date, on a full column as calwf3 has)."""
    table = trap_model(density=3.0)
    rng = np.random.default_rng(3)
    n, rows = 48, (1850, 1950)
    truth = np.full((ROWS, n), 6.0)
    for r in rows:
        truth[r - 1:r + 2] += np.array([0.2, 0.6, 0.2])[:, None] * rng.uniform(300, 600, n)[None, :]
    trailed = trail_charge(truth, np.arange(ROWS), True, table, expstart=59500.0)
    fff = np.repeat(time_scaling(59500.0, table)[:, None], n, axis=1)
    corrected = correct(trailed.astype(np.float32).astype(np.float64), fff, table, 3.75)
    for r in rows:
        ap = slice(r - 3, r + 4)
        flux = truth[ap].sum(axis=0) - 7 * 6.0
        loss = 1 - (trailed[ap].sum(axis=0) - 7 * 6.0) / flux
        back = (corrected[ap].sum(axis=0) - 7 * 6.0) / flux
        assert loss.min() >= 0.10, loss.min()
        assert (np.abs(back - 1) < loss / 3).all(), (back, loss)


def test_a_pctetab_delivery_changes_only_the_cte_rules(tmp_path: Path) -> None:
    root = tmp_path / "crds"
    build_or_link(root, ("wfc3", "acs"), size="subarray")
    new = bump_reference(root, "pctetab")
    old_ctx, new_ctx = refs.load_context(root, "hst_0001.pmap"), refs.load_context(root, new)
    assert refs.changed_types(old_ctx, new_ctx) == {"WFC3": ["pctetab"], "ACS": ["pctetab"]}
    acs_tables = sorted(references_dir(root).glob("*j_cte.fits"))
    assert len(acs_tables) == 2 and fits.getval(acs_tables[-1], "CTE_VER") == "3.1"
    delivered = new_ctx.rmap_names("WFC3")["pctetab"]
    names = [p.name for p in references_dir(root).glob("*i_cte.fits")]
    assert len(names) == 2 and delivered.endswith("_0002.rmap")
    newest = max(names)
    assert fits.getval(references_dir(root) / newest, "CTE_VER") == "2.1"
