"""ACS/WFC CR-SPLIT with PCTECORR: ACSREJ on the members' blv set into ``_crj`` and, apart, on
their blc set (ACSCCD, then ACSCTE) into ``_crc``, then each member's ``_flt`` and ``_flc``, as
calacs.c's ProcessCCD does; and the comparison with the real ``calacs.e`` when it is on PATH."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.core.asntable import read_asn_table
from pipeline.core.config import load_instrument_defaults, with_pctecorr
from pipeline.science import refs
from pipeline.science.calib import calibrate
from pipeline.science.calib.compare import compare_input
from pipeline.simulate.crdscache import build_reference_cache
from pipeline.simulate.downlink import iter_downlink, write_fits

pytestmark = [pytest.mark.slow, pytest.mark.long]  # minutes of full-frame CTE: make test-long
CALACS = shutil.which("calacs.e")  # real hstcal only where it is installed


@pytest.fixture(scope="module")
def crsplit(module_tmp) -> tuple[Path, dict[str, str]]:
    """A simulated full-frame WFC CR-SPLIT pair whose raws ask for PCTECORR, with best references."""
    root = module_tmp("acscrc")
    crds, raws = root / "crds", root / "raws"
    build_reference_cache(crds, ["acs"], size="full")
    cte_on = with_pctecorr(load_instrument_defaults(), ["WFC"])
    write_fits(iter_downlink(4, "full", 2, ["acs"], defaults=cte_on), raws)
    (asn,) = [a for a in raws.glob("*_asn.fits") if read_asn_table(a).asn_type == "CR-SPLIT"]
    os.environ["CRDS_PATH"] = str(crds)
    try:
        members = [raws / f"{m}_raw.fits" for m in read_asn_table(asn).members]
        refs.assign_bestrefs(members, refs.load_context(crds))
    finally:
        del os.environ["CRDS_PATH"]
    return asn, dict(os.environ, jref=f"{crds / 'references' / 'hst'}/")


def test_crsplit_makes_crc_and_flc_beside_crj_and_flt(crsplit, tmp_path: Path) -> None:
    asn, env = crsplit
    table = read_asn_table(asn)
    product, members = table.products[0], table.members
    made = {p.name: p for p in calibrate([asn], tmp_path, engine="builtin", environ=env) if p.suffix == ".fits"}
    assert {f"{product}_crj.fits", f"{product}_crc.fits", *(f"{m}_{s}.fits" for m in members for s in ("flt", "flc"))} \
        <= set(made)
    with fits.open(made[f"{product}_crc.fits"]) as crc, fits.open(made[f"{product}_crj.fits"]) as crj:
        assert crc[0].header["PCTECORR"] == "COMPLETE" and crj[0].header["PCTECORR"] != "COMPLETE"
        assert crc[0].header["DRKCFILE"].endswith("_dkc.fits")
        assert (crc["SCI", 1].data != crj["SCI", 1].data).any()  # trails removed in the crc only
        assert crc["SCI", 1].header["NCOMBINE"] == len(members)
        # the headers as calacs 10.5.0 writes them: the product's role, and FindAsnRoot's "_crc_tmp" quirk
        assert (crj[0].header["ROOTNAME"], crj[0].header["ASN_MTYP"], crj["ERR", 2].header["EXPNAME"]) == \
            (product.upper(), "PROD-CRJ", product)
        assert (crc[0].header["ROOTNAME"], crc["DQ", 1].header["EXPNAME"]) == \
            (f"{product.upper()}_CRC_TMP", f"{product}_crc_tmp")
        assert "PHOTFLAM" not in crj[0].header and crj["SCI", 1].header["PHOTFLAM"] > 0
    for m in members:
        with fits.open(made[f"{m}_flc.fits"]) as flc, fits.open(made[f"{m}_flt.fits"]) as flt:
            assert flc[0].header["PCTECORR"] == "COMPLETE"
            assert (flc["DQ", 1].data & 8192).any()  # its own ACSREJ run flagged cosmic rays in it
            assert flt[0].header["CRCORR"] == flc[0].header["CRCORR"] == "PERFORM"  # finished in the crj/crc


@pytest.mark.skipif(CALACS is None, reason="calacs.e (hstcal) not installed")
def test_real_calacs_agrees_on_the_cte_corrected_crsplit(crsplit, tmp_path: Path) -> None:
    asn, env = crsplit
    result = compare_input(asn, tmp_path, environ=env)
    products = {d.product for d in result.diffs}
    assert any(p.endswith("_crc.fits") for p in products) and any(p.endswith("_flc.fits") for p in products)
    assert result.ok(0.0), [d.line() for d in result.diffs if not d.within(0.0)]
    for name in sorted(p for p in products if p.endswith(("_flc.fits", "_crc.fits"))):
        with fits.open(tmp_path / "builtin" / name) as a, fits.open(tmp_path / "hstcal" / name) as b:
            for key in ("PCTECORR", "CTE_NAME", "CTE_VER", "DRKCFILE"):
                assert a[0].header[key] == b[0].header[key], (name, key)
            np.testing.assert_array_equal(a["DQ", 1].data, b["DQ", 1].data)
