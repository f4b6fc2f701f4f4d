"""MD: SBC and HRC flts from the built-in engine drizzle into _drz products."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.core.names import parse_dataset
from pipeline.science.calib import builtin
from pipeline.science.drizzle import drizzle, preflight
from pipeline.simulate import hrc, sbc


def test_sbc_and_hrc_drizzle(tmp_path: Path) -> None:
    sbc_refs, hrc_refs = tmp_path / "sbcref", tmp_path / "jref"
    sbc.write_raw(tmp_path / "jsbc07abq_raw.fits", sbc.write_references(sbc_refs))
    hrc.write_references(hrc_refs)
    hrc.write_raw(tmp_path / "jhrc07abq_raw.fits")
    flts = [builtin.calibrate_exposure(tmp_path / "jsbc07abq_raw.fits", tmp_path, environ={"jref": f"{sbc_refs}/"}),
            builtin.calibrate_exposure(tmp_path / "jhrc07abq_raw.fits", tmp_path, environ={"jref": f"{hrc_refs}/"})]
    assert preflight(flts[0]).detector == "SBC"  # no ATODGN/READNSE needed for a MAMA
    for flt in flts:
        product = drizzle([flt], parse_dataset(flt.name.split("_")[0]), tmp_path)
        with fits.open(product.path) as h:
            assert product.path.name.endswith("_drz.fits")
            assert np.nanmax(h["SCI"].data) > 10
