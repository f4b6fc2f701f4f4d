"""The simulator's ACS/WFC pixel-based CTE: PCTETAB and DRKCFILE in its CRDS cache under the real
``hst_0349`` ACS rules (crds certify, best references only with PCTECORR), and trails in full-frame
WFC raws that the built-in ACSCTE takes out again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.core.config import load_instrument_defaults, with_pctecorr
from pipeline.science import refs
from pipeline.science.calib.cte import acs
from pipeline.science.calib.cte.acs_pctetab import read_acs_pctetab
from pipeline.simulate.crdscache import build_reference_cache, mappings_dir, references_dir
from pipeline.simulate.ctefiles import acs_observatory_model
from pipeline.simulate.downlink import iter_downlink, write_fits
from tests.test_simulate_cte import assert_delivery_certifies

ACS_CTE = ("pctetab", "drkcfile")


@pytest.fixture(scope="module")
def cache(module_tmp) -> Path:
    root = module_tmp("acsctecrds")
    build_reference_cache(root, ("acs",), size="subarray")
    return root


def _named(cache: Path, suffix: str) -> Path:
    found = sorted(references_dir(cache).glob(f"*j_{suffix}.fits"))
    assert len(found) == 1, found
    return found[0]


def test_acs_cte_references_certify_clean(cache: Path) -> None:
    assert_delivery_certifies(cache, "acs", ACS_CTE, [_named(cache, s) for s in ("cte", "dkc")])


def test_acs_cte_references_have_the_real_layouts(cache: Path) -> None:
    table = read_acs_pctetab(_named(cache, "cte"))
    model = acs_observatory_model()
    assert set(table.sets) == {"parallel", "A", "B", "C", "D"}
    for name, s in table.sets.items():  # the traps the raws are read out through
        assert np.array_equal(s.qlev, model.sets[name].qlev) and np.array_equal(s.dpde, model.sets[name].dpde)
        assert np.array_equal(s.rprof, model.sets[name].rprof) and s.npar == model.sets[name].npar
    with fits.open(_named(cache, "dkc")) as dkc:
        assert dkc[0].header["FILETYPE"] == "CTEDARK" and dkc[0].header["CCDGAIN"] == -999.0
        assert dkc["SCI", 1].data.shape == (2048, 4096) and {dkc["SCI", v].header["CCDCHIP"] for v in (1, 2)} == {1, 2}
    rmap = next(mappings_dir(cache).glob("hst_acs_drkcfile_*.rmap")).read_text()
    assert "'parkey' : (('DETECTOR', 'CCDAMP', 'CCDGAIN'), ('DATE-OBS', 'TIME-OBS'))" in rmap


def test_best_references_fill_acs_cte_keywords_only_with_pctecorr(cache: Path, tmp_path: Path) -> None:
    ctx = refs.load_context(cache, "hst_0001.pmap")
    on = with_pctecorr(load_instrument_defaults(), ["WFC"])
    expected = {"pctetab": _named(cache, "cte").name, "drkcfile": _named(cache, "dkc").name}
    for state, defaults, want in (("on", on, expected), ("off", None, dict.fromkeys(ACS_CTE, refs.NA))):
        visits = list(iter_downlink(11, "subarray", 1, ("acs",), defaults=defaults))
        paths = write_fits(visits, tmp_path / state)
        raw = next(p for p in paths if p.name.endswith("_raw.fits") and fits.getval(p, "DETECTOR") == "WFC")
        assert fits.getval(raw, "PCTECORR") == ("PERFORM" if state == "on" else "OMIT")
        lookup = ctx.lookup(refs.dataset_parameters(raw))
        assert not lookup.failures, lookup.failures
        assert {t: lookup.refs[t] for t in ACS_CTE} == want, state


def test_acs_trails_are_what_acscte_removes() -> None:
    """Parallel then serial readout of amp C through the delivered table, then calacs's order of
    corrections (serial, parallel): the charge comes back to float32 rounding."""
    table = acs_observatory_model()
    charge = np.full((2048, 2048), 20.0, np.float32)
    charge[1500:1503, 500:503] += 3000.0
    expstart = 57000.0
    par, ser = table.sets["parallel"], table.sets["C"]
    trailed = acs.trail_amp(charge, par, amp="C", serial=False, column_offset=0, scale_frac=par.scale_frac(expstart))
    trailed = acs.trail_amp(trailed, ser, amp="C", serial=True, column_offset=0, scale_frac=ser.scale_frac(expstart))
    assert (trailed[1503:1520, 501] - 20.0).sum() > 1.0  # parallel trail, away from amp C
    assert (trailed[1501, 503:510] - 20.0).sum() > 0.05  # serial trail
    assert trailed[1500:1503, 500:503].sum() < charge[1500:1503, 500:503].sum() - 1.0
    err = np.ones_like(trailed)
    out, err = acs.correct_amp(trailed, err, ser, amp="C", serial=True, rn=3.0, column_offset=0,
                               scale_frac=ser.scale_frac(expstart))
    out, err = acs.correct_amp(out, err, par, amp="C", serial=False, rn=3.0, column_offset=0,
                               scale_frac=par.scale_frac(expstart))
    np.testing.assert_allclose(out, charge, atol=0.01)
