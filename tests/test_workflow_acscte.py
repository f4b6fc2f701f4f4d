"""A site with the ACS/WFC CTE branch on (``[calibration] pctecorr = ["WFC"]``) end to end on the
real stages: 2FITS writes PCTECORR = PERFORM, the simulator's full-frame WFC raws carry the trails,
RF fills PCTETAB and DRKCFILE from the ACS rules, CA writes ``_flc`` beside ``_flt`` (ACSCTE, then
ACS2D with the DRKCFILE), MD ``_drc`` beside ``_drz``, INGEST_SCI archives and catalogues them: a
full-frame singleton, and (the built-in ACSCTE corrects WFC subarrays as calacs 10.5.0 does) a
WFC1A-512-style dithered pair and CR-SPLIT pair."""

from __future__ import annotations

import pytest
from astropy.io import fits

from tests.test_workflow_cte import drc_beside_drz, run_cte_site, site_exposures

pytestmark = [pytest.mark.slow, pytest.mark.long]  # minutes of full-frame CTE: make test-long


def test_a_wfc_cte_site_archives_flc_beside_flt(site, tmp_path, monkeypatch) -> None:
    tops = run_cte_site(site, monkeypatch, "WFC", "--size", "full", "--associations", "1", "--instruments", "acs",
                        "--seed", "3")
    bb, archive, exposures = site_exposures(site, tops)
    assert exposures
    for dataset in exposures:
        (raw,) = archive.get(dataset, kind="raw", dest=tmp_path / dataset)
        h = fits.getheader(raw)
        assert h["PCTECORR"] == "PERFORM" and h["PCTETAB"] == f"jref${h['PCTETAB'].split('$')[-1]}"
        assert h["PCTETAB"].endswith("j_cte.fits") and h["DRKCFILE"].endswith("j_dkc.fits")
        (flc,) = archive.get(dataset, kind="flc", dest=tmp_path / f"{dataset}-flc")
        (flt,) = archive.get(dataset, kind="flt", dest=tmp_path / f"{dataset}-flt")
        with fits.open(flc) as c, fits.open(flt) as t:
            assert c[0].header["PCTECORR"] == "COMPLETE" and c[0].header["DRKCFILE"] == h["DRKCFILE"]
            assert (c["SCI", 1].data != t["SCI", 1].data).any()  # the trails are gone from the flc only
    assert drc_beside_drz(bb, archive, tops) == 0  # MD's _drc beside _drz; every top complete


def test_a_wfc_cte_site_drizzles_subarray_flcs_into_drc_beside_drz(site, tmp_path, monkeypatch) -> None:
    tops = run_cte_site(site, monkeypatch, "WFC", "--size", "subarray", "--associations", "2", "--instruments",
                        "acs", "--seed", "5")  # a dither pair and a CR-SPLIT pair
    bb, archive, exposures = site_exposures(site, tops)
    assert len(exposures) == 4
    for dataset in exposures:
        (flc,) = archive.get(dataset, kind="flc", dest=tmp_path / f"{dataset}-flc")
        with fits.open(flc) as c:
            assert c[0].header["SUBARRAY"] and c[0].header["PCTECORR"] == "COMPLETE"
        assert archive.metadata(dataset)["software"]["CTE_VER"] == "3.0"  # catalogued from the _flc
    assert drc_beside_drz(bb, archive, tops) == 1  # MD's _drc beside _drz; the CR-SPLIT's _crc beside _crj
