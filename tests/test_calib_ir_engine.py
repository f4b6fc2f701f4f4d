"""The built-in WF3IR chain end to end on simulated ramps: product layout, the calwf3 quirks that
show in the files, and accuracy against the simulator's truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.core.errors import MissingReference
from pipeline.science.calib.api import calibrate
from pipeline.simulate.ir import IRExposure, write_exposure
from pipeline.simulate.irmodel import READNOISE, detector_maps, mean_gain, sample_times

F32 = np.float32


def _simulate(tmp: Path, exp: IRExposure) -> tuple[Path, Path, dict[str, str]]:
    from pipeline.simulate.irrefs import write_ir_references

    maps = detector_maps()
    refs = write_ir_references(maps, tmp / "refs", darks=[(exp.samp_seq, exp.subtype)], filters=[exp.filter])
    raw, truth = write_exposure(maps, exp, tmp, refs)
    return raw, truth, {"iref": str(tmp / "refs") + "/"}


@pytest.fixture(scope="module")
def small(module_tmp) -> tuple[Path, Path, Path]:
    tmp = module_tmp("irsmall")
    raw, _, env = _simulate(tmp, IRExposure("ibsmal01q", samp_seq="RAPID", nsamp=6, aperture="IRSUB64", seed=4))
    out = tmp / "out"
    calibrate([raw], out, engine="builtin", environ=env)
    return raw, out / "ibsmal01q_ima.fits", out / "ibsmal01q_flt.fits"


def test_products_have_calwf3_layout(small: tuple[Path, Path, Path]) -> None:
    raw, ima, flt = small
    times = sample_times("RAPID", 6)
    with fits.open(ima) as h:
        assert h[0].header["NEXTEND"] == 30
        assert [x.name for x in h[1:6]] == ["SCI", "ERR", "DQ", "SAMP", "TIME"]
        assert h["SCI", 1].header["SAMPTIME"] == times[-1] and h["SCI", 6].header["SAMPTIME"] == 0.0
        assert h["SCI", 1].data.shape == (74, 74) and h["SCI", 1].header["BUNIT"] == "ELECTRONS/S"
        assert h["TIME", 1].header["PIXVALUE"] == pytest.approx(times[-1])
        for sw in ("DQICORR", "ZSIGCORR", "BLEVCORR", "ZOFFCORR", "NLINCORR", "DARKCORR", "FLATCORR", "UNITCORR",
                   "PHOTCORR", "CRCORR"):
            assert h[0].header[sw] == "COMPLETE", sw
    with fits.open(flt) as h, fits.open(raw) as r:
        assert h[0].header["NEXTEND"] == 5 and h["SCI"].data.shape == (64, 64)
        assert h["SCI"].header["LTV1"] == r["SCI", 1].header["LTV1"] - 5
        assert h[0].header["PHOTMODE"].startswith("WFC3 IR F160W MJD#")
        assert h[0].header["PHOTFLAM"] > 0 and "PHOTFLAM" not in h["SCI"].header
        assert h[0].header["ATODGNA"] == pytest.approx(2.34, rel=1e-6)
        for name in ("SAMP", "TIME"):   # arrays, or NAXIS=0 with PIXVALUE when constant (hstio)
            hdr = h[name].header
            assert (hdr.get("NAXIS1"), hdr.get("NAXIS2")) == (64, 64) or (hdr["NPIX1"], hdr["NPIX2"]) == (64, 64)
        assert not np.any(h["DQ"].data & (8192 | 2048 | 1024))
        good = (h["DQ"].data == 0) & (h["ERR"].data > 0)
        # calwf3 IR statistics: SCI's SNR* are the ERR statistics, ERR's GOOD* the SNR ones
        assert h["SCI"].header["SNRMEAN"] == pytest.approx(float(np.mean(h["ERR"].data[good], dtype=np.float64)),
                                                           rel=1e-6)
        snr = h["SCI"].data[good] / h["ERR"].data[good]
        assert h["ERR"].header["GOODMAX"] == pytest.approx(float(snr.max()), rel=1e-6)


def test_ima_reference_pixels_hold_blev_and_zero_read_corrected_dn(small: tuple[Path, Path, Path]) -> None:
    """((raw_k - m_k) - (raw_0 - m_0)) * mean_gain, not a rate (verified behaviour in the spec)."""
    raw, ima, _ = small
    with fits.open(raw, do_not_scale_image_data=False) as r, fits.open(ima) as h:
        n = r[0].header["NSAMP"]
        zero = r["SCI", n].data.astype(F32)
        last = r["SCI", 1].data.astype(F32)
        m_k = F32(h["SCI", 1].header["MEANBLEV"])
        from pipeline.science.calib.resistmean import resistmean

        m_0 = F32(resistmean(np.concatenate([zero[5:-5, 1:5].ravel(), zero[5:-5, -5:-1].ravel()]), 3.0)[0])
        expect = ((last - m_k) - (zero - m_0)) * F32(mean_gain())
        assert np.array_equal(h["SCI", 1].data[:, :5], expect[:, :5])


def test_missing_dark_time_is_a_reference_error(tmp_path: Path) -> None:
    raw, _, env = _simulate(tmp_path, IRExposure("ibdark01q", samp_seq="SPARS10", nsamp=4, aperture="IRSUB64"))
    with fits.open(raw, mode="update") as h:
        h[0].header["SAMP_SEQ"] = "SPARS25"     # the SPARS10 dark no longer matches
    with pytest.raises(MissingReference, match="SAMP_SEQ"):
        calibrate([raw], tmp_path / "out", engine="builtin", environ=env)


@pytest.fixture(scope="module")
def accuracy(module_tmp) -> dict[str, np.ndarray]:
    tmp = module_tmp("iracc")
    exp = IRExposure("ibacc001q", samp_seq="SPARS25", nsamp=12, aperture="IRSUB256", cr_rate=4e-5, seed=11)
    raw, truth, env = _simulate(tmp, exp)
    calibrate([raw], tmp / "out", engine="builtin", environ=env)
    out: dict[str, np.ndarray] = {}
    with fits.open(tmp / "out" / "ibacc001q_flt.fits") as f, fits.open(truth) as t, \
            fits.open(tmp / "out" / "ibacc001q_ima.fits") as ima:
        for name in ("SCI", "ERR", "DQ", "SAMP"):
            out[name] = f[name].data.copy()
        for name in ("RATE", "CRREAD", "SATREAD", "CRSIZE"):
            out[name] = t[name].data.copy()
        flagged = np.zeros(out["SCI"].shape, bool)
        for extver in range(1, exp.nsamp + 1):
            flagged |= (ima["DQ", extver].data[5:-5, 5:-5] & 8192) != 0
        out["FLAGGED"] = flagged
    out["TIMES"] = np.array(sample_times(exp.samp_seq, exp.nsamp))
    return out


def test_count_rates_agree_with_truth_within_errors(accuracy: dict[str, np.ndarray]) -> None:
    a = accuracy
    good = (a["SATREAD"] == 0) & ((a["DQ"] & (4 | 8 | 16 | 32)) == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(a["SCI"] - a["RATE"]) / a["ERR"]
    assert good.sum() > 60000
    assert np.mean(z[good] <= 3.0) >= 0.99          # ERR is a 1-sigma error: 3 ERR holds 99.7 %
    assert 0.60 <= np.mean(z[good] <= 1.0) <= 0.90


def test_cosmic_ray_jumps_above_five_sigma_are_flagged(accuracy: dict[str, np.ndarray]) -> None:
    """Jumps after the first read (a jump before it is absorbed by the zero read, as in calwf3)."""
    a = accuracy
    times = a["TIMES"]
    k = a["CRREAD"].astype(int)
    dt = np.where(k > 0, times[np.clip(k, 1, None)] - times[np.clip(k - 1, 0, None)], 0.0)
    rn_e = np.mean(READNOISE)
    sigma_e = np.sqrt(rn_e * rn_e + a["RATE"] * dt)
    testable = ((k >= 2) & (a["CRSIZE"] >= 5 * sigma_e) & (a["SATREAD"] == 0)
                & ((a["DQ"] & (4 | 8 | 16 | 32)) == 0))
    assert testable.sum() > 100
    assert np.all(a["FLAGGED"][testable])


def test_saturated_pixels_use_the_reads_before_saturation(accuracy: dict[str, np.ndarray]) -> None:
    a = accuracy
    mid = (a["SATREAD"] >= 2) & (a["CRREAD"] == 0) & ((a["DQ"] & (4 | 8 | 16 | 32)) == 0)
    assert mid.sum() > 50
    assert np.mean(a["SAMP"][mid] == a["SATREAD"][mid]) >= 0.95
    assert not np.any(a["DQ"][mid] & 256)


def test_after_calibration_checks_pass_on_ir_products(small: tuple[Path, Path, Path]) -> None:
    from pipeline.science.checks import ac

    raw, ima, flt = small
    for product in (ima, flt):
        lines = [f.line() for f in ac.check_product(product, raw=raw) if f.rule != "processing-record"]
        assert lines == [], lines   # processing-record needs CRDS_CTX, which RF writes


def test_ca_stage_calibrates_an_ir_exposure(site, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from pipeline.core.names import parse_dataset
    from pipeline.core.osf import Blackboard
    from pipeline.core.stage import run_stage
    from stages.ca import Calibrate

    raw, _, env = _simulate(tmp_path, IRExposure("ibstag01q", samp_seq="SPARS10", nsamp=4, aperture="IRSUB64"))
    monkeypatch.setenv("iref", env["iref"])
    name = parse_dataset("ibstag01q")
    work = site.work_dir(name)
    work.mkdir(parents=True)
    raw.replace(work / raw.name)
    Blackboard(site.database_url).create(name)
    assert run_stage(Calibrate, ["ibstag01q", "--site", str(site.root)]) == 0
    assert (work / "ibstag01q_ima.fits").is_file()
    assert fits.getval(work / "ibstag01q_flt.fits", "CAL_ENG") == "builtin"
