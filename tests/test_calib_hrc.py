"""ACS/HRC in the built-in engine: simulated exposures (accuracy, CR-SPLIT) and the real HRC raws."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.science.calib import builtin
from pipeline.science.calib.api import calibrate
from pipeline.science.calib.compare import compare_input
from pipeline.science.calib.hrc import HrcChip, single_amp_slots
from pipeline.science.calib.steps.spotflat import mktime_seconds, obs_seconds, shift_spot, table_seconds
from pipeline.simulate import hrc


@pytest.fixture(scope="module")
def jref(module_tmp) -> Path:
    d = module_tmp("hrc") / "jref"
    hrc.write_references(d)
    return d


def _env(jref: Path) -> dict[str, str]:
    return {"jref": str(jref) + "/"}


def test_single_amp_gain_goes_to_every_column() -> None:
    assert single_amp_slots((0.0, 0.0, 2.216, 0.0), (0.0, 0.0, 2.216, 0.0)) == (2.216, 2.216)
    assert HrcChip.__mro__[1].__name__ == "Chip"


def test_simulated_exposure_against_truth(jref: Path) -> None:
    raw = jref.parent / "jhrc01abq_raw.fits"
    truth = hrc.write_raw(raw, exptime=300.0, ncr=0)
    flt = fits.open(builtin.calibrate_exposure(raw, jref.parent, environ=_env(jref)))
    sci = flt["SCI"].data.astype(np.float64)
    assert sci.shape == (1024, 1024)
    assert flt["SCI"].header["BUNIT"] == "ELECTRONS"
    assert flt["SCI"].header["PHOTMODE"] == "ACS HRC F555W MJD#52500.3000"
    assert "PHOTFLAM" not in flt[0].header
    good = (flt["DQ"].data == 0) & ~truth.saturated
    sky = good & (truth.electrons < np.median(truth.electrons) + 1)
    # the overscan fit removes the bias level: the sky comes back at its true level
    assert abs(np.median(sci[sky]) - np.median(truth.electrons[sky])) < 0.5
    assert np.all(flt["DQ"].data[:, 199] & 4)                     # BPIXTAB column
    assert flt["SCI"].header["MEANDARK"] > 0 and flt[0].header["BLEVCORR"] == "COMPLETE"
    assert np.count_nonzero(flt["DQ"].data & 2048) > 0            # saturated stars


def test_crsplit_association_gives_crj_and_masks(jref: Path) -> None:
    d = jref.parent
    raws = [d / f"jhrc02c{i}q_raw.fits" for i in (1, 2)]
    truths = [hrc.write_raw(r, seed=10 + i, star_seed=5, crsplit=2, exptime=150.0) for i, r in enumerate(raws)]
    outs = builtin.calibrate_stack(raws, d, "jhrc02010", environ=_env(jref))
    assert [p.name for p in outs] == ["jhrc02010_crj.fits", "jhrc02c1q_flt.fits", "jhrc02c2q_flt.fits"]
    for path, truth in zip(outs[1:], truths, strict=True):
        dq = fits.getdata(path, "DQ")
        hit = truth.cosmic_rays & ~truths[0].saturated & ~truths[1].saturated
        assert np.mean(dq[hit] & 8192 > 0) > 0.9                  # the CRs are found
    crj = fits.open(outs[0])
    assert crj["SCI"].header["NCOMBINE"] == 2 and crj[0].header["CRCORR"] == "COMPLETE"
    assert crj[0].header["DARKTIME"] == 300.0                     # ACSREJ: cumulative dark time
    assert "EXPFLAG" not in crj[0].header                         # ACSREJ leaves EXPFLAG alone (WF3REJ sets it)
    assert fits.getval(outs[1], "CRCORR") == "PERFORM"            # calacs leaves the members' switch


@pytest.mark.parametrize("root,photmode", [("j8bt05njq", "ACS HRC F555W MJD#52377.7615"),
                                           ("j8bt09jcq", "ACS HRC F330W MJD#52377.1903")])
def test_real_hrc_raws_end_to_end(tmp_path: Path, realdata: Path, root: str, photmode: str) -> None:
    real_set = realdata / "acs_hrc_j8bt"
    raw = real_set / "raw" / f"{root}_raw.fits"
    jref = tmp_path / "jref"
    hrc.write_references(jref)
    real = {"BPIXTAB": real_set / "reference/j4d1435jj_bpx.fits",
            "CRREJTAB": real_set / "reference/n4e12510j_crr.fits"}
    prepared = hrc.prepare_real_raw(raw, tmp_path / "in", jref, real_tables=real)
    flt = fits.open(builtin.calibrate_exposure(prepared, tmp_path, environ=_env(jref)))
    history = "".join(str(h) for h in flt[0].header["HISTORY"])
    assert "owlpipe simulated hrc_sim_bia.fits" in history and "real table j4d1435jj_bpx.fits" in history
    assert flt["SCI"].data.shape == (1024, 1024)
    assert flt["SCI"].header["PHOTMODE"] == photmode
    assert flt["SCI"].header["MEANDARK"] == 0.0                    # no DARKTIME in 2002 HRC raws
    # bias level ~1134 DN x gain 2.216 taken from the real overscan
    assert 2400 < flt["SCI"].header["MEANBLEV"] < 2600
    sky = np.median(flt["SCI"].data)
    assert -5 < sky < 200


@pytest.mark.parametrize("aperture", sorted(hrc.SUBARRAYS))
def test_subarray_against_truth(jref: Path, aperture: str) -> None:
    """An HRC subarray at the amp C corner keeps its prescan; the OSCNTAB row of its NX/NY trims it
    and the prescan-only bias fit (no virtual overscan) brings the sky back to its true level."""
    raw = jref.parent / f"jhrc0{3 + sorted(hrc.SUBARRAYS).index(aperture)}s1q_raw.fits"
    truth = hrc.write_raw(raw, exptime=300.0, ncr=0, aperture=aperture)
    nx, ny = hrc.SUBARRAYS[aperture]
    assert fits.getdata(raw, "SCI").shape == (ny, nx + hrc.PRESCAN)
    flt = fits.open(builtin.calibrate_exposure(raw, jref.parent, environ=_env(jref)))
    sci = flt["SCI"].data.astype(np.float64)
    assert sci.shape == (ny, nx) and flt[0].header["BLEVCORR"] == "COMPLETE" and flt[0].header["SUBARRAY"]
    assert flt["SCI"].header["LTV1"] == 0.0
    good = (flt["DQ"].data == 0) & ~truth.saturated
    sky = good & (truth.electrons < np.median(truth.electrons) + 1)
    assert abs(np.median(sci[sky]) - np.median(truth.electrons[sky])) < 0.5


@pytest.mark.skipif(shutil.which("calacs.e") is None, reason="calacs.e (hstcal) not on PATH")
def test_real_calacs_agrees_bit_for_bit_on_hrc_subarrays(jref: Path, tmp_path: Path) -> None:
    for k, aperture in enumerate(sorted(hrc.SUBARRAYS)):
        raw = tmp_path / f"jhrc08s{k + 1}q_raw.fits"
        hrc.write_raw(raw, seed=20 + k, aperture=aperture)
        result = compare_input(raw, tmp_path / f"work{k}", environ=dict(os.environ, jref=str(jref) + "/"))
        assert result.ok(0.0) and result.diffs, [d.line() for d in result.diffs]


def test_owl_simulate_acs_modes_writes_an_hrc_subarray_and_an_sbc_repeat(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["simulate", "acs-modes", str(tmp_path), "--hrc-aperture", "HRC-512",
                                       "--seed", "4"])
    assert result.exit_code == 0, result.output
    raw = tmp_path / "jhrc04s1q_raw.fits"
    assert fits.getheader(raw)["APERTURE"] == "HRC-512" and fits.getdata(raw, "SCI").shape == (512, 531)
    out = calibrate([tmp_path / "jsbc04010_asn.fits", raw], tmp_path / "out", engine="builtin",
                    environ={"jref": f"{tmp_path / 'jref'}/"})
    assert sorted(p.name for p in out) == ["jhrc04s1q_flt.fits", "jsbc04011_sfl.fits", "jsbc04r1q_flt.fits",
                                           "jsbc04r2q_flt.fits"]


def test_spot_flat_shift_is_calacs_bilinear() -> None:
    spot = np.arange(12, dtype=np.float32).reshape(3, 4) + 1
    sci, err = shift_spot(spot, np.float32(1), np.float32(0))
    assert np.array_equal(sci[:, 1:], spot[:, :3]) and np.all(sci[:, 0] == 1) and np.all(err[:, 0] == 1)
    assert np.array_equal(err[:, 1:], np.sqrt(spot[:, :3].astype(np.float64)).astype(np.float32))
    sci, _ = shift_spot(spot, np.float32(-0.5), np.float32(0.25))
    # (x=0.5, y=0.75): the bilinear value of pixels (0,0),(1,0),(0,1),(1,1) in float32 as binterp sums it
    f = np.float32
    tx, ty, sx, sy = f(0.5), f(0.25), f(0.5), f(0.75)
    want = (((tx * ty) * f(1) + (sx * ty) * f(2)) + (sy * tx) * f(5)) + (sx * sy) * f(6)
    assert sci[1, 0] == want and np.all(sci[0] == 1)             # row 0 maps to y = -0.25: outside
    # last column: its right neighbour is the first pixel of the next row (calacs's flat indexing)
    assert sci[1, 3] == (((tx * ty) * f(4) + (sx * ty) * f(5)) + (sy * tx) * f(8)) + (sx * sy) * f(9)


def test_spottab_dates_are_one_month_late() -> None:
    assert obs_seconds("2002-12-05") == mktime_seconds(2003, 0, 5, 0)          # December -> next January
    assert table_seconds("15/06/02", Path("x")) == obs_seconds("2002-06-15") + 12 * 3600


def test_coronagraphic_flat_multiplies_the_shifted_spot(jref: Path, tmp_path: Path) -> None:
    raw = tmp_path / "jhrc09c1q_raw.fits"
    hrc.write_raw(raw, coronagraph=True, ncr=0, expstart=53000.2)   # 2003-12-27: SPOTTAB row 01/06/04 is nearest
    log: list[str] = []
    flt = fits.getdata(builtin.calibrate_exposure(raw, tmp_path, environ=_env(jref),
                                                  log=lambda s, t: log.append(t)), "SCI")
    assert any("spot shift of: 3.1  2.3" in t for t in log)
    with fits.open(raw, mode="update") as h:
        h[0].header["CFLTFILE"] = "N/A"
    (tmp_path / "plain").mkdir()
    plain = fits.getdata(builtin.calibrate_exposure(raw, tmp_path / "plain", environ=_env(jref)), "SCI")
    spot, _ = shift_spot(hrc.spot_flat(), np.float32(3.1), np.float32(2.35))
    ratio = plain.astype(np.float64) / flt
    core = spot < 0.5
    assert np.allclose(ratio[core], spot[core], rtol=1e-5) and np.array_equal(flt[spot == 1], plain[spot == 1])


@pytest.mark.skipif(shutil.which("calacs.e") is None, reason="calacs.e (hstcal) not on PATH")
def test_real_calacs_agrees_bit_for_bit_on_coronagraphic_flats(jref: Path, tmp_path: Path) -> None:
    for k, (aperture, expstart) in enumerate((("HRC", 52500.3), ("HRC-512", 53000.2), ("HRC", 52334.2))):
        raw = tmp_path / f"jhrc10c{k + 1}q_raw.fits"
        hrc.write_raw(raw, seed=30 + k, aperture=aperture, coronagraph=True, expstart=expstart)
        result = compare_input(raw, tmp_path / f"work{k}", environ=dict(os.environ, jref=str(jref) + "/"))
        assert result.ok(0.0) and result.diffs, [d.line() for d in result.diffs]
