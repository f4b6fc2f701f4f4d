"""Per-step numerics of the built-in engine on small hand-built arrays: formulas and calwf3's quirks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.science.calib.chip import Chip
from pipeline.science.calib.context import CalContext
from pipeline.science.calib.geometry import Overscan
from pipeline.science.calib.imageio import Imset
from pipeline.science.calib.steps import destripe
from pipeline.science.calib.steps.blev import ACS as BLEV_ACS
from pipeline.science.calib.steps.blev import BlevCorr, clean_fit_values
from pipeline.science.calib.steps.dqi import DqiCorr, apply_bpixtab, overscan_mask
from pipeline.science.calib.steps.noise import ErrInit
from pipeline.science.calib.steps.refimage import RefBlock, div1d
from pipeline.science.calib.steps.sink import detect_sinks
from pipeline.science.calib.steps.subtract import FlshCorrUvis
from pipeline.science.calib.tables import BadPixelRuns, CCDParams
from tests.calib_synth import Geometry, UvisSet, write_raw_reference

G = Geometry()


def ccd(**kw) -> CCDParams:  # type: ignore[no-untyped-def]
    base = dict(row=1, ccdamp="ABCD", chip=1, atodgain=(1.5, 2.0, 1.6, 1.7), readnoise=(3.0, 4.0, 3.5, 3.2),
                ccdbias=(2500.0, 2600.0, 2550.0, 2650.0), mean_gain=1.7, ampx=G.amp_width, ampy=0, saturate=60000.0)
    base.update(kw)
    return CCDParams(**base)  # type: ignore[arg-type]


def oscn(chip: int) -> Overscan:
    p, w, v = G.prescan, G.amp_width, G.virtual
    ty = list(G.trimy(chip))
    vy = [G.rows, G.ny - 1] if chip == 2 else [0, G.vrows - 1]
    return Overscan(trimx=[p, p, v, v], trimy=ty, vx=[p + 2, p + w - 3, p + w + 2 * v + 2, p + 2 * w + 2 * v - 3],
                    vy=vy + vy, biassect={"A": (0, p - 1), "B": (G.nx - p, G.nx - 1), "C": (p + w + 1, p + w + v - 2),
                                         "D": (p + w + v + 1, p + w + 2 * v - 2)}, overscan=True)


def make_chip(chip: int = 1, sci: np.ndarray | None = None, **ccd_kw) -> Chip:  # type: ignore[no-untyped-def]
    data = np.zeros((G.ny, G.nx), np.float32) if sci is None else sci.astype(np.float32)
    hdr = fits.Header({"CCDCHIP": chip, "LTV1": float(G.prescan), "LTV2": float(G.trimy(chip)[0]),
                       "LTM1_1": 1.0, "LTM2_2": 1.0})
    im = Imset(2 if chip == 1 else 1, data, np.zeros_like(data), np.zeros(data.shape, np.uint16), hdr,
               fits.Header(), fits.Header())
    c = ccd(chip=chip, **ccd_kw)
    return Chip(imset=im, ccd=c, oscn=oscn(chip), ampx=c.ampx, ampy=0, subarray=False)


def context(tmp_path: Path, primary: dict | None = None) -> CalContext:  # type: ignore[type-arg]
    hdr = fits.Header({"CCDGAIN": 1.5, "FLASHDUR": 10.0, "FLASHSTA": "SUCCESSFUL", "EXPSTART": 56000.0,
                       **(primary or {})})
    return CalContext(path=tmp_path / "x_raw.fits", primary=hdr, detector="UVIS", environ={"iref": f"{tmp_path}/"})


# ---------------------------------------------------------------------------------------------- ERR


def test_err_init_formula_per_amp_and_boundary() -> None:
    c = make_chip(1, np.full((G.ny, G.nx), 3000.0))
    ErrInit().run(CalContext(Path("x"), fits.Header(), "UVIS"), c)
    boundary = G.amp_width + G.prescan + G.virtual  # AMPX + LTV1 + TRIMX3
    left = np.sqrt((3000 - 2500) * 1.5 + 3.0 ** 2) / 1.5
    right = np.sqrt((3000 - 2600) * 2.0 + 4.0 ** 2) / 2.0
    assert c.err[:, boundary - 1] == pytest.approx(left, rel=1e-6)
    assert c.err[:, boundary] == pytest.approx(right, rel=1e-6)
    low = make_chip(1, np.full((G.ny, G.nx), 100.0))  # below the CCDTAB bias: only read noise
    ErrInit().run(CalContext(Path("x"), fits.Header(), "UVIS"), low)
    assert low.err[0, 0] == pytest.approx(3.0 / 1.5, rel=1e-6)


def test_err_init_skipped_when_err_not_all_zero() -> None:
    c = make_chip(1, np.full((G.ny, G.nx), 3000.0))
    c.err[3, 3] = 1.0
    ErrInit().run(CalContext(Path("x"), fits.Header(), "UVIS"), c)
    assert np.count_nonzero(c.err) == 1


# ---------------------------------------------------------------------------------------------- DQI


def test_atod_and_scalar_saturation(tmp_path: Path) -> None:
    sci = np.full((G.ny, G.nx), 1000.0)
    sci[2, 2], sci[3, 3], sci[4, 4] = 65535, 60001, 65534
    c = make_chip(1, sci)
    ctx = context(tmp_path, {"BPIXTAB": "N/A"})
    DqiCorr(raw=True, scalar_saturation=True).run(ctx, c)
    assert c.dq[2, 2] == 2048 | 256 and c.dq[3, 3] == 256 and c.dq[4, 4] == 256 and c.dq[5, 5] == 0


def test_image_path_flags_only_overscan_with_the_scalar(tmp_path: Path) -> None:
    c = make_chip(1, np.full((G.ny, G.nx), 61000.0))
    DqiCorr(raw=True, scalar_saturation=False).run(context(tmp_path, {"BPIXTAB": "N/A"}), c)
    mask = overscan_mask(c)
    assert np.all((c.dq == 256) == mask)
    # chip 1: the parallel virtual rows are at the bottom; prescan and serial-virtual columns are overscan
    assert mask[: G.vrows].all() and not mask[G.vrows:, G.prescan:G.prescan + G.amp_width].any()
    assert mask[:, G.prescan + G.amp_width:G.prescan + G.amp_width + 2 * G.virtual].all()


def test_bpixtab_right_amp_runs_shift_past_the_serial_virtual_overscan() -> None:
    c = make_chip(2)
    runs = BadPixelRuns((2 * G.amp_width, G.rows), x0=np.array([3, G.amp_width + 1]), y0=np.array([4, 6]),
                        length=np.array([2, 3]), axis=np.array([1, 2]), value=np.array([4, 16]))
    apply_bpixtab(c, runs, shift=True)
    assert c.dq[4, 3 + G.prescan] == 4 and c.dq[4, 4 + G.prescan] == 4
    x = G.amp_width + 1 + 2 * G.virtual + G.prescan  # +TRIMX3+TRIMX4 for the ABCD readout
    assert list(np.nonzero(c.dq[:, x])[0]) == [6, 7, 8]
    trimmed = make_chip(2, np.zeros(G.trimmed))
    trimmed.imset.sci_header.update(LTV1=0.0, LTV2=0.0)
    apply_bpixtab(trimmed, runs, shift=False)
    assert list(np.nonzero(trimmed.dq[:, G.amp_width + 1])[0]) == [6, 7, 8]


# --------------------------------------------------------------------------------------------- BLEV


def _ramp_chip(chip: int, slope: float, icpt: float) -> Chip:
    sci = np.zeros((G.ny, G.nx))
    rows = np.arange(G.ny)
    sci += (icpt + slope * rows)[:, None]  # overscan level grows with the raw row
    return make_chip(chip, sci)


@pytest.mark.parametrize("chip", [1, 2])
def test_blev_fits_in_j_but_evaluates_at_the_raw_row(tmp_path: Path, chip: int) -> None:
    slope, icpt = 0.5, 2500.0
    c = _ramp_chip(chip, slope, icpt)
    before = c.sci.copy()
    BlevCorr().run(context(tmp_path), c)
    trimy1 = G.trimy(chip)[0]
    sizey = G.rows
    mid = sizey // 2
    # fitted as b = slope*(j - mid) + icpt' with j = r - trimy1, i.e. icpt' = icpt + slope*(trimy1 + mid)
    r = np.arange(trimy1, trimy1 + sizey)
    level = slope * (r - mid) + (icpt + slope * (trimy1 + mid))
    col = G.prescan + 3
    assert np.allclose(before[r, col] - c.sci[r, col], level, rtol=0, atol=1e-3)
    # the quirk: the residual is TRIMY1 * slope (0 for chip 2, 4*slope for the mini chip 1)
    assert np.allclose(c.sci[r, col], -slope * trimy1, atol=1e-3)


def test_blev_parallel_drift_slope_is_removed_along_the_row(tmp_path: Path) -> None:
    c = make_chip(2, np.full((G.ny, G.nx), 2500.0))
    cols = np.arange(G.nx)
    c.sci[G.rows:, :] += (0.01 * cols)[None, :].astype(np.float32)   # drift seen in the virtual rows
    BlevCorr().run(context(tmp_path), c)
    left = c.sci[5, G.prescan:G.prescan + G.amp_width]
    zerocol = (c.oscn.biassect["C"][0] + c.oscn.biassect["C"][1]) / 2.0
    expected = -0.01 * (np.arange(G.prescan, G.prescan + G.amp_width) - zerocol)
    assert np.allclose(left, expected, atol=1e-3)
    assert c.sci_keywords["MEANBLEV"] == pytest.approx(2500.0 + 0.01 * (G.amp_width / 2 - zerocol)
                                                       / 2 + 0.01 * (G.amp_width / 2
                                                                     - (c.oscn.biassect["D"][0]
                                                                        + c.oscn.biassect["D"][1]) / 2.0) / 2,
                                                       abs=1e-3)


def test_clean_bias_fit_one_sided_clipping() -> None:
    vals = np.r_[np.full(40, 100.0), 130.0, 70.0]
    keep = clean_fit_values(vals, np.ones(vals.size, bool), rn=2.0, v=BlevCorr().v)
    assert not keep[40] and keep[41]          # only high values are rejected
    keep_acs = clean_fit_values(np.r_[np.full(40, 100.4), 104.6], np.ones(41, bool), rn=1.0, v=BLEV_ACS)
    assert not keep_acs[-1]                  # ACS threshold truncated to int: 103 < 104.6


# -------------------------------------------------------------------------------------------- FLASH


def test_flshcorr_uses_the_b_gain_on_raw_columns_2048_to_2102_quirk(tmp_path: Path) -> None:
    flash = np.ones((G.ny, G.nx))
    s = UvisSet()
    write_raw_reference(tmp_path / "x_fls.fits", s, {1: flash, 2: flash}, filetype="POST FLASH")
    ctx = context(tmp_path, {"FLSHFILE": "iref$x_fls.fits", "FLASHDUR": 10.0})
    c = make_chip(1)
    FlshCorrUvis().run(ctx, c)
    ampx = G.amp_width  # compared with the raw column, without the prescan offset
    assert c.sci[5, ampx - 1] == pytest.approx(-10 / 1.5)
    assert c.sci[5, ampx] == pytest.approx(-10 / 2.0)          # still amp A's science, but gain B
    assert c.sci[5, ampx + G.prescan - 1] == pytest.approx(-10 / 2.0)
    assert c.sci_keywords["MEANFLSH"] > 0


# --------------------------------------------------------------------------------------------- FLAT


def test_div1d_zero_flat_flags_512_and_leaves_pixel() -> None:
    c = make_chip(1, np.full((3, 4), 10.0))
    c.imset.err[...] = 2.0
    f = np.array([[2.0, 0.0, 1.0, 4.0]] * 3, np.float32)
    ref = RefBlock(f, np.full(f.shape, 0.1, np.float32), np.zeros(f.shape, np.uint16))
    div1d(c, ref)
    assert c.sci[0, 0] == pytest.approx(5.0) and c.sci[0, 1] == 10.0 and c.dq[0, 1] == 512
    assert c.err[0, 0] == pytest.approx(np.sqrt((2 / 2) ** 2 + (0.1 * 10 / 4) ** 2), rel=1e-6)
    assert c.err[0, 1] == 2.0


# --------------------------------------------------------------------------------------------- SINK


def test_sink_pixels_walk_upstream_until_the_tail_ends() -> None:
    ny = 8
    ref = np.zeros((ny, 3), np.float32)
    ref[2, 1] = 55000.0     # sink, on since MJD 55000
    ref[1, 1] = -1.0        # downstream neighbour
    ref[3:6, 1] = [300.0, 20.0, 500.0]
    ref[6, 1] = 0.0
    ref[2, 2] = 58000.0     # turns on after the exposure
    sci = np.full((ny, 3), 100.0, np.float32)
    dq = np.zeros((ny, 3), np.uint16)
    assert detect_sinks(sci, dq, ref, 56000.0, upstream_down=False) == 1
    assert list(np.nonzero(dq[:, 1])[0]) == [1, 2, 3, 5]     # 20 < SCI 100 is skipped, 500 flagged
    assert not dq[:, 2].any()
    dq2 = np.zeros((ny, 3), np.uint16)
    detect_sinks(sci[::-1].copy(), dq2, ref[::-1].copy(), 56000.0, upstream_down=True)
    assert list(np.nonzero(dq2[::-1, 1])[0]) == [1, 2, 3, 5]


# ---------------------------------------------------------------------------------------- destripe


def test_cross_talk_runs_left_to_right_in_place() -> None:
    sci = np.array([[1000.0, 0.0, 0.0, 2000.0]], np.float32)
    destripe.cross_talk(sci)
    assert sci[0, 0] == pytest.approx(1000 + 2000 * 9.1e-5)
    assert sci[0, 3] == pytest.approx(2000 + (1000 + 2000 * 9.1e-5) * 9.1e-5)


def test_remove_stripes_takes_the_common_row_pattern_out_of_every_amp() -> None:
    rng = np.random.default_rng(3)
    rows, cols = 60, 80
    stripe = rng.normal(0, 3, rows)
    pixels = [(rng.normal(100, 1, (rows, cols)) + stripe[:, None]).astype(np.float32) for _ in range(4)]
    amps = [destripe.Amp(p, p[:, :destripe.NBIAS_COLS] - 100.0, np.ones(rows, bool), 100.0) for p in pixels]
    fixed, skipped = destripe.remove_stripes(amps)
    assert fixed == rows and skipped == 0
    assert np.std(np.mean([p[:, 30] for p in pixels], axis=0)) < 0.6   # the 3-sigma stripe is gone
    assert abs(np.mean([p[:, 30] for p in pixels])) < 0.5               # and the level (100) with it
