"""WF3IR step formulas and quirks, expected values from shared/reference/ir-calibration.md."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest

from pipeline.science.calib.ir.fitsamps import DATAREJECT, HIGH_CURVATURE, SPIKE, fit_image, linfit, weight_table
from pipeline.science.calib.ir.rampfit import RampResult, fit_ramps
from pipeline.science.calib.ir.reftables import IRDetector
from pipeline.science.calib.ir.state import noise_dn, quadrant_slices

F32 = np.float32
GAIN = 2.35
IGN = 39


def full_frame_detector() -> IRDetector:
    return IRDetector(atodgain=(2.34, 2.37, 2.31, 2.38), readnoise=(20.2, 19.8, 19.9, 20.5), mean_gain=2.35,
                      ampx=512, ampy=512, nx=1024, ny=1024, trimx=(5, 5), trimy=(5, 5),
                      biassect=((1, 4), (1019, 1022)))


def test_noise_quadrants_split_at_ampx_minus_trim_with_b_c_below() -> None:
    """Quirk 3: boundary at raw index 507 (not 512); rows below: B (left), C (right)."""
    quads = dict((amp, sl) for amp, sl in quadrant_slices(full_frame_detector(), (0.0, 0.0)))
    assert quads[1] == (slice(5, 507), slice(5, 507))      # B
    assert quads[2] == (slice(5, 507), slice(507, 1019))   # C
    assert quads[0] == (slice(507, 1019), slice(5, 507))   # A
    assert quads[3] == (slice(507, 1019), slice(507, 1019))  # D


def test_noise_sum_and_root_in_double_then_divided_in_float() -> None:
    """Quirk 4: sqrt(double(rn*rn) + double(|s*g|)) rounded to float, then / g in float."""
    s = np.array([0.0, 123.456, -77.0, 30000.0], np.float32)
    g, rn = F32(2.34), F32(20.2)
    expect = (np.sqrt(np.float64(rn * rn) + np.abs(s * g).astype(np.float64)).astype(F32)) / g
    got = noise_dn(s, 2.34, 20.2)
    assert got.dtype == F32 and np.array_equal(got, expect)
    assert got[0] == F32(F32(20.2) / F32(2.34)) or abs(got[0] - 20.2 / 2.34) < 1e-5


def dark_model(time: np.ndarray) -> np.ndarray:
    """``EstimateDarkandGlow``: accumulated dark DN at each sample time (0.036 e-/s, amp glow 0)."""
    return (np.asarray(time, F32) * F32(0.036 / np.float64(F32(GAIN)))).astype(F32)


def _linfit(optimum: bool, x: np.ndarray, y: np.ndarray, sig: np.ndarray) -> np.ndarray:
    """(a, b, sigb) of the compiled ``linfit`` over every sample."""
    out = np.zeros(3, F32)
    linfit(optimum, x, y, sig, dark_model(x), x.size, GAIN, weight_table(x.size, GAIN), out)
    return out


def test_linfit_two_samples_uses_difference_and_double_sigb_chain() -> None:
    x = np.array([3.0, 6.0], F32)
    y = np.array([300.0, 600.0], F32)
    sig = np.array([10.0, 12.0], F32)
    dg = dark_model(x)
    _, b, sigb = _linfit(True, x, y, sig)
    assert b == F32(100.0)
    g = F32(GAIN)
    terms = F32(F32(g * F32(0.0) * F32(3.0)) ** 2 + g * (dg[1] - dg[0])) + g * F32(300.0)
    assert sigb == F32(np.sqrt(np.float64(terms)) / 3.0 / np.float64(g))


def test_weight_table_is_pow_of_the_distance_from_the_middle_over_cds_read_noise_squared() -> None:
    g = F32(GAIN)
    invr2 = F32(1.0 / np.float64(F32(21.0 / np.float64(g)) ** 2))
    table = weight_table(6, GAIN)
    assert np.all(table[0, 2:, :][np.tril(np.ones((5, 6), bool), k=1)] == invr2)   # p = 0: equal weights
    n, h = 5, 2.0
    for j, p in enumerate((10.0, 6.0, 3.0, 1.0, float(F32(0.4))), start=1):
        assert [table[j, n, k] for k in range(n)] == [F32(abs((abs(k - h) / h) ** p)) * invr2 for k in range(n)]
    assert table[1, 5, 2] == 0 and table[1, 5, 5] == 0   # the middle sample; past the interval's end


def test_linfit_optimum_weights_give_the_middle_sample_zero_weight() -> None:
    """pow(0, p) = 0 for p > 0: the middle sample of an odd interval does not count."""
    x = np.array([1, 2, 3, 4, 5], F32) * F32(10)
    y = x * F32(1000.0)
    sig = np.full_like(x, F32(5.0))
    y_bad = y.copy()
    y_bad[2] += F32(5e5)
    assert _linfit(True, x, y, sig)[1] == _linfit(True, x, y_bad, sig)[1]
    assert _linfit(False, x, y, sig)[1] != _linfit(False, x, y_bad, sig)[1]   # equal weights: it counts


# ------------------------------------------------------------------------------------ ramp fitting

TIMES = [0.0, 2.932] + [round(2.932 + 25.0 * k, 3) for k in range(1, 15)]


def _ramp(rate: float = 50.0, n: int = 8) -> tuple[list, list, list, list]:
    t = [F32(v) for v in TIMES[:n]]
    sci = [F32(rate * v) for v in t]
    err = [F32(np.sqrt(F32(400.0) + abs(s * F32(GAIN))) / F32(GAIN)) for s in sci]
    return sci, err, [0] * n, t


class PixelFit(NamedTuple):
    sci: np.float32
    err: np.float32
    samp: int
    time: np.float32


def _region(a: np.ndarray) -> np.ndarray:
    """(N, P) as the (N, 1, P) science region of a larger image, a view as the engine passes (so the
    tests use the compiled kernel's one specialisation instead of compiling another for C order)."""
    big = np.zeros((a.shape[0], 3, a.shape[1] + 2), a.dtype)
    big[:, 1, 1:-1] = a
    return big[:, 1:2, 1:-1]


def _fit(sci: list, err: list, dq: list, t: list) -> PixelFit:
    """One pixel's DN ramp through the compiled fit, the slope in DN/s; ``dq`` gets its flags in place."""
    def column(v: list, dtype: type = F32) -> np.ndarray:
        return _region(np.array(v, dtype)[:, None])
    out = fit_image(column(sci), column(err), column(dq, np.uint16), column(t), in_rates=False, out_counts=False,
                    zsig_done=False, sampzero=0.0, thresh=4.0, ign=IGN, gain=GAIN)
    dq[:] = out[5][:, 0, 0].tolist()
    return PixelFit(out[0][0, 0], out[1][0, 0], int(out[3][0, 0]), out[4][0, 0])


def _fit_ramps(sci: np.ndarray, err: np.ndarray, dq: np.ndarray, t: np.ndarray, **kw: object) -> RampResult:
    """:func:`fit_ramps` on (N, P) arrays, as one image row."""
    res = fit_ramps(*(_region(a) for a in (sci, err, dq, t)), **kw)   # type: ignore[arg-type]
    return RampResult(res.sci[0], res.err[0], res.dq[0], res.samp[0], res.time[0], res.flags[:, 0])


def test_clean_ramp_samp_counts_the_zero_read_and_time_starts_at_zero() -> None:
    sci, err, dq, t = _ramp()
    res = _fit(sci, err, dq, t)
    assert res.samp == 8
    assert res.time == F32(F32(t[1] - t[0]) + F32(t[7] - t[1]))
    assert res.sci == pytest.approx(50.0, rel=1e-5)


def test_cr_jump_splits_the_ramp_and_is_flagged_from_the_hit() -> None:
    sci, err, dq, t = _ramp()
    for k in range(4, 8):
        sci[k] = F32(sci[k] + 3000.0)
    res = _fit(sci, err, dq, t)
    assert all(dq[k] & DATAREJECT for k in (4, 5, 6, 7)) and not any(dq[k] & DATAREJECT for k in (0, 1, 2, 3))
    assert res.samp == (3 + 1) + (4 - 1)            # intervals 1..3 and 4..7 share no end point
    assert res.time == F32(F32(F32(t[1] - t[0]) + F32(t[3] - t[1])) + F32(t[7] - t[4]))
    assert res.sci == pytest.approx(50.0, rel=1e-4)


def test_zero_read_is_never_a_sample() -> None:
    sci, err, dq, t = _ramp()
    sci[0] = F32(1e6)
    assert _fit(sci, err, dq, t).sci == pytest.approx(50.0, rel=1e-5)


def test_mid_ramp_saturation_uses_earlier_reads() -> None:
    sci, err, dq, t = _ramp()
    dq[5:] = [256, 256, 256]
    res = _fit(sci, err, dq, t)
    assert res.samp == 4 + 1 and res.sci == pytest.approx(50.0, rel=1e-5)


def test_hot_pixel_goes_through_pass_two_and_badinpdq_gives_error_1e5() -> None:
    sci, err, _, t = _ramp()
    hot = _fit(sci, err, [16] * 8, t)
    assert hot.samp == 8 and hot.sci == pytest.approx(50.0, rel=1e-5)
    dead = _fit(sci, err, [4] * 8, t)
    assert (dead.sci, dead.err, dead.samp, dead.time) == (0.0, F32(1e5), 0, 0.0)


def test_spike_is_flagged_and_excluded() -> None:
    sci, err, dq, t = _ramp()
    sci[4] = F32(sci[4] + 2000.0)
    res = _fit(sci, err, dq, t)
    assert dq[4] & SPIKE and not dq[4] & DATAREJECT
    assert res.sci == pytest.approx(50.0, rel=1e-4)


def test_four_jumps_abandon_the_fit_first_sample_counted_twice() -> None:
    sci, err, dq, t = _ramp(n=16)
    for k, jump in ((4, 4000.0), (7, -9000.0), (10, 2500.0), (13, 15000.0)):
        for j in range(k, 16):
            sci[j] = F32(sci[j] + jump)
    res = _fit(sci, err, dq, t)
    assert all(d & HIGH_CURVATURE and not d & DATAREJECT for d in dq)   # the 4th jump: every read 16384
    first, last = 1, 15   # the first and last samples not flagged (4, 7, 10: jumps; 13: the fourth)
    dt = F32(t[last] - t[first])
    assert res.samp == 1 + 11
    assert res.sci == F32(F32(sci[last] - sci[first]) / dt)
    assert res.err == F32(F32(err[last] - err[first]) / dt)


def test_fit_ramps_flags_and_output_dq() -> None:
    """Image level: rates in and out equal the per-pixel DN fit bit for bit; partial saturation,
    2048 and 8192 never reach the output DQ; first-read saturation keeps the zero read; a jump flags
    every later read."""
    rng = np.random.default_rng(3)
    n, npix = 8, 400
    t = np.array(TIMES[:n], F32)[:, None] * np.ones(npix, F32)
    rate = rng.uniform(0.5, 300.0, npix).astype(F32)
    sci_dn = (rate * t + rng.normal(0, 8.0, (n, npix)).astype(F32)).astype(F32)
    sci_dn[0] = 0
    err_dn = (np.sqrt(F32(400.0) + np.abs(sci_dn * F32(GAIN))) / F32(GAIN)).astype(F32)
    with np.errstate(divide="ignore", invalid="ignore"):
        sci = np.where(t > 0, sci_dn / t, F32(0)).astype(F32)
        err = np.where(t > 0, err_dn / t, F32(0)).astype(F32)
    dq = np.zeros((n, npix), np.uint16)
    dq[:, 0] = 2048                   # ZEROSIG only: fitted, 2048 removed
    dq[5:, 1] = 256                   # saturated mid-ramp
    dq[1:, 2] = 256                   # saturated from read 1 (zero read 2048): zero-read branch
    dq[0, 2] = 2048
    sci[:, 3] += np.where(np.arange(n) >= 4, F32(5000.0), F32(0.0)) / np.where(t[:, 3] > 0, t[:, 3], 1)
    res = _fit_ramps(sci, err, dq, t, rates=True, zsig_done=True, sampzero=2.911465, thresh=4.0, ign=IGN,
                     gain=GAIN)
    assert res.dq[0] == 0 and res.dq[1] == 0
    assert (res.samp[2], res.time[2], res.sci[2]) == (1, F32(2.911465), sci[0, 2]) and res.dq[2] == 0
    assert res.flags[4, 3] & DATAREJECT and res.flags[7, 3] & DATAREJECT and not res.flags[3, 3] & DATAREJECT
    one = _fit(list(sci[:, 4] * t[:, 4]), list(err[:, 4] * t[:, 4]), [0] * n, list(t[:, 4]))
    assert (one.sci, one.err, one.samp, one.time) == (res.sci[4], res.err[4], res.samp[4], res.time[4])


def test_four_jumps_flag_every_read_and_the_output_unstable() -> None:
    sci, err, _, t = _ramp(n=16)
    for k, jump in ((4, 4000.0), (7, -9000.0), (10, 2500.0), (13, 15000.0)):
        for j in range(k, 16):
            sci[j] = F32(sci[j] + jump)
    clean = _ramp(n=16)[0]
    res = _fit_ramps(np.array([sci, clean], F32).T, np.array([err, err], F32).T, np.zeros((16, 2), np.uint16),
                     np.array([t, t], F32).T, rates=False, zsig_done=True, sampzero=2.911465, thresh=4.0, ign=IGN,
                     gain=GAIN)
    assert np.all(res.flags[:, 0] == HIGH_CURVATURE) and not np.any(res.flags[:, 1])
    assert list(res.dq) == [32, 0]


def test_counts_mode_leaves_first_read_saturated_pixels_as_the_zero_read() -> None:
    """UNITCORR=OMIT: fitted pixels go back to counts (x TIME); a pixel saturated from read 1
    keeps the zero read's value (calwf3 skips it before that conversion)."""
    n = 5
    t = np.array(TIMES[:n], F32)[:, None] * np.ones(2, F32)
    sci = (F32(40.0) * t).astype(F32)
    err = np.full((n, 2), F32(10.0))
    dq = np.zeros((n, 2), np.uint16)
    dq[1:, 1] = 256
    sci[0, 1] = F32(1234.5)
    res = _fit_ramps(sci, err, dq, t, rates=False, zsig_done=True, sampzero=2.911465, thresh=4.0, ign=IGN, gain=GAIN)
    assert res.sci[1] == F32(1234.5) and res.samp[1] == 1
    assert res.sci[0] == pytest.approx(40.0 * float(res.time[0]), rel=1e-5)
