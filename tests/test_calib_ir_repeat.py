"""RPTCORR for WFC3/IR: a REPEAT association's member ``_flt`` combined by WF3REJ into ``_crj``
(electrons, four amplifier quadrants), and bit for bit what calwf3.e writes where it is on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.core.asntable import build_asn_table
from pipeline.science.calib.api import calibrate
from pipeline.science.calib.compare import compare_products
from pipeline.science.calib.ir.repeat import ir_rej_noise
from pipeline.simulate.ir import IRExposure, write_exposure
from pipeline.simulate.irheaders import Visit
from pipeline.simulate.irmodel import detector_maps
from pipeline.simulate.irrefs import write_ir_references

ROOTS = ("ibrpt1a1q", "ibrpt1a2q")
CALWF3 = shutil.which("calwf3.e")  # real hstcal only where it is installed


@pytest.fixture(scope="module")
def repeat(module_tmp) -> tuple[Path, dict[str, str]]:
    d = module_tmp("irrepeat")
    maps = detector_maps()
    refs = write_ir_references(maps, d / "refs", darks=[("SPARS25", "SQ64SUB")], filters=["F160W"])
    for k, root in enumerate(ROOTS):
        exp = IRExposure(root, samp_seq="SPARS25", nsamp=6, aperture="IRSUB64", seed=20 + k, scene_seed=99,
                         expstart=56000.2 + 0.01 * k,
                         visit=Visit(asn_id="ibrpt1010", asn_type="REPEAT", asn_memtype="EXP-RPT"))
        raw, _ = write_exposure(maps, exp, d, refs)
        with fits.open(raw, mode="update") as h:
            assert h[0].header["RPTCORR"] == "PERFORM"  # REPEAT members: 2FITS's switch for the sum
    build_asn_table("ibrpt1010", list(ROOTS), "REPEAT",
                    header=fits.getheader(d / f"{ROOTS[0]}_raw.fits")).writeto(d / "ibrpt1010_asn.fits")
    return d, {"iref": str(d / "refs") + "/"}


def test_ir_quadrants_follow_get_nsegn() -> None:
    primary = {"ATODGNA": 2.0, "ATODGNB": 2.5, "ATODGNC": 3.0, "ATODGND": 4.0,
               "READNSEA": 20.0, "READNSEB": 25.0, "READNSEC": 30.0, "READNSED": 40.0}
    n = ir_rej_noise(primary, (64, 80))
    assert (n.ampx, n.ampy) == (40, 32)
    assert n.gain == (2.0, 4.0) and n.low is not None and n.low[1] == (2.5, 3.0)
    assert n.noise2 == (100.0, 100.0) and n.low[0] == (100.0, 100.0)
    blocks = {(s, r.start, r.stop, c.start, c.stop): g for s, r, c, _, g in n.blocks(64, 80)}
    assert blocks == {(0, 0, 32, 0, 40): 2.5, (0, 32, 64, 0, 40): 2.0, (1, 0, 32, 40, 80): 3.0,
                      (1, 32, 64, 40, 80): 4.0}
    assert [g for _, _, _, g in n.within(slice(31, 32), 64, 80)] == [2.5, 3.0]
    assert [g for _, _, _, g in n.within(slice(32, 33), 64, 80)] == [2.0, 4.0]


def test_repeat_association_gives_crj_in_electrons(repeat, tmp_path) -> None:
    d, env = repeat
    out = calibrate([d / "ibrpt1010_asn.fits"], tmp_path, engine="builtin", environ=env)
    assert sorted(p.name for p in out) == ["ibrpt1011_crj.fits", "ibrpt1a1q_flt.fits", "ibrpt1a2q_flt.fits"]
    with fits.open(tmp_path / "ibrpt1011_crj.fits") as crj:
        assert [h.name for h in crj] == ["PRIMARY", "SCI", "ERR", "DQ"]
        p = crj[0].header
        assert (p["RPTCORR"], p["ROOTNAME"], p["ASN_MTYP"], p["NEXTEND"]) == ("COMPLETE", "IBRPT1011", "PROD-RPT", 3)
        assert crj["SCI"].header["BUNIT"] == "ELECTRONS" and crj["SCI"].header["NCOMBINE"] == 2
        flts = [fits.open(tmp_path / f"{r}_flt.fits") for r in ROOTS]
        exptimes = [f[0].header["EXPTIME"] for f in flts]
        assert p["EXPTIME"] == pytest.approx(sum(exptimes))
        assert all(f[0].header["RPTCORR"] == "PERFORM" for f in flts)  # calwf3 leaves the members' switch
        summed = sum(f["SCI"].data.astype(np.float64) * t for f, t in zip(flts, exptimes, strict=True))
        good = (crj["DQ"].data == 0) & (flts[0]["DQ"].data == 0) & (flts[1]["DQ"].data == 0)
        rel = np.abs(crj["SCI"].data[good] - summed[good]) / np.maximum(np.abs(summed[good]), 200.0)
        assert np.median(rel) < 0.05  # the sum of the members, cosmic-ray hits replaced
        for f in flts:
            f.close()


@pytest.mark.skipif(CALWF3 is None, reason="calwf3.e (hstcal) not installed")
def test_crj_is_bit_identical_to_calwf3(repeat, tmp_path) -> None:
    d, env = repeat
    hst = tmp_path / "hst"
    hst.mkdir()
    for name in [*(f"{r}_raw.fits" for r in ROOTS), "ibrpt1010_asn.fits"]:
        shutil.copy(d / name, hst / name)
    proc = subprocess.run([str(CALWF3), "ibrpt1010_asn.fits"], cwd=hst, capture_output=True, text=True,
                          env={**os.environ, **env, "imclobber": "yes"}, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:]
    calibrate([d / "ibrpt1010_asn.fits"], tmp_path / "owl", engine="builtin", environ=env)
    for name in ("ibrpt1011_crj.fits", *(f"{r}_{kind}.fits" for r in ROOTS for kind in ("flt", "ima"))):
        diffs = compare_products(tmp_path / "owl" / name, hst / name)   # pixels and every header keyword
        assert len(diffs) > 1 and all(d.within(0.0) for d in diffs), [d.line() for d in diffs if not d.within(0.0)]
