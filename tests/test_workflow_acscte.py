"""A site with the ACS/WFC CTE branch on (``[calibration] pctecorr = ["WFC"]``) end to end on the
real stages: 2FITS writes PCTECORR = PERFORM, the simulator's full-frame WFC raws carry the trails,
RF fills PCTETAB and DRKCFILE from the ACS rules, CA writes ``_flc`` beside ``_flt`` (ACSCTE, then
ACS2D with the DRKCFILE), INGEST_SCI archives them. Full frame: the built-in ACSCTE does not correct
WFC subarrays (it skips them with a warning), so there is no smaller case."""

from __future__ import annotations

import pytest
from astropy.io import fits

from pipeline.archive.store import Archive
from pipeline.core.osf import Blackboard
from tests.test_workflow_cte import run_cte_site

pytestmark = [pytest.mark.slow, pytest.mark.long]  # minutes of full-frame CTE: make test-long


def test_a_wfc_cte_site_archives_flc_beside_flt(site, tmp_path, monkeypatch) -> None:
    tops = run_cte_site(site, monkeypatch, "WFC", "--size", "full", "--associations", "1", "--instruments", "acs",
                        "--seed", "3")
    bb = Blackboard(site.database_url)
    archive = Archive(site)
    exposures = sorted(m for t in tops for m in (bb.members(t) or [t]))
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
    for top in tops:
        entry = bb.find(top)
        assert entry is not None and set(entry.status) == {"c"}, entry.opus_name()
