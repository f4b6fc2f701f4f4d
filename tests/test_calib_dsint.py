"""The post-SM4 ACS/WFC DS_INT path: bias shift and cross-talk (ccd-calibration.md §8), the
simulator's DS_INT readout, and calacs's summation order in the destripe.

Expected values are worked out by hand from the §8 model, not taken from the engine: the DC level
follows the pixel stream ``dc[n+1] = x[n]·f·r + (1-f)·dc[n]`` with ``f = 1 - exp(-1/(τ·1000/22))``
(τ per amp, r = dc_ratio = 0.3) and each pixel is corrected by ``x - s·dc[n+1] - (10/22)·(dc[n+1] -
dc[n])`` (s = dsi_sens); each row is followed by the virtual gap pixels, filled with the "magic
square" mean of amp rows 2057-2066, columns 13-22, which is measured again and subtracted after.
For a lone pixel P on a zero background the corrected stream is, in closed form,
``P(1 - (s + 10/22)·f·r)`` at the pixel and ``-P·f·r·(1-f)^(m-1)·(s(1-f) - (10/22)·f)`` m pixels later.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.science.calib.steps import destripe

ROWS, COLS = 2068, 2072
TAU = (37.29, 36.18, 37.87, 42.46)           # µs, §8 (rounded as the spec gives them)
SENS = (2.919e-3, 10.806e-3, 12.432e-3, 3.860e-3)
GAP = 146  # virtual pixels per row: calacs's int(1000/22 * 3.212 + 0.5); the spec's "20" is not what calacs uses


def _expected_after_impulse(p: float, amp: int, m: int) -> float:
    f = 1.0 - math.exp(-1.0 / (TAU[amp] * 1000.0 / 22.0))
    r, s, k = 0.3, SENS[amp], 10.0 / 22.0
    if m == 0:
        return p * (1.0 - (s + k) * f * r)
    return -p * f * r * (1.0 - f) ** (m - 1) * (s * (1.0 - f) - k * f)


@pytest.mark.parametrize("amp", [0, 1, 2, 3])
def test_bias_shift_of_a_lone_pixel_follows_the_dsi_model(amp: int) -> None:
    data = np.zeros((ROWS, COLS))
    p, row, col = 1000.0, 5, 100
    data[row, col] = p
    out, magic = destripe.bias_shift(data, amp)
    assert magic == pytest.approx(0.0, abs=1e-12)           # the tail has died away by row 2057
    assert np.abs(out[:row]).max() < 1e-12 and np.abs(out[row, :col]).max() < 1e-12
    for r, c in [(row, col), (row, col + 1), (row, col + 7), (row, COLS - 1), (row + 1, 0), (row + 1, 50)]:
        m = (r - row) * (COLS + GAP) + (c - col)
        assert out[r, c] == pytest.approx(_expected_after_impulse(p, amp, m), rel=2e-3, abs=1e-12), (r, c)


def test_bias_shift_of_a_flat_level_is_removed_with_the_magic_square() -> None:
    """A constant level L reads as L(1 - s·r) after the filter; the magic square takes that out."""
    out, magic = destripe.bias_shift(np.full((ROWS, COLS), 250.0), 2)
    assert magic == pytest.approx(250.0 * (1 - SENS[2] * 0.3), rel=1e-6)
    assert np.abs(out).max() < 1e-9


def test_cross_talk_adds_the_mirror_pixel_scaled_by_9_1e_5() -> None:
    sci = np.zeros((2, 8), np.float32)
    sci[0, 7] = 10000.0   # right edge: its ghost lands on column 0
    destripe.cross_talk(sci)
    assert sci[0, 0] == np.float32(np.float32(10000.0 * 9.1e-5))
    # the right half is corrected with the already corrected left half: column 7 gets 9.1e-5 * SCI[0]
    assert sci[0, 7] == np.float32(10000.0) + np.float32(sci[0, 0] * 9.1e-5)


def test_simulated_ds_int_readout_is_undone_by_the_calacs_correction() -> None:
    """The simulator's readout is the exact inverse: bias shift then cross-talk give back the signal."""
    from pipeline.simulate.wfcreadout import apply_ds_int

    rng = np.random.default_rng(5)
    electrons = np.zeros((ROWS, 2 * COLS), np.float32)
    electrons[:, 24:2 * COLS - 24] = rng.gamma(2.0, 300.0, (ROWS, 2 * COLS - 48)).astype(np.float32)
    gain = np.full(2 * COLS, 2.0, np.float32)
    bias = {"A": 2100.0, "B": 2200.0, "C": 0.0, "D": 0.0}
    dn = electrons / gain + np.where(np.arange(2 * COLS) < COLS, 2100.0, 2200.0).astype(np.float32)[None, :]
    truth = dn.copy()
    apply_ds_int(dn, electrons, gain, 1, bias)
    assert np.abs(dn - truth).max() > 1.0       # the readout really is shifted
    sci = dn.astype(np.float64)
    for k, level in ((0, 2100.0), (1, 2200.0)):
        view = destripe.amp_view(sci, k)
        view[...] = destripe.bias_shift(view - level, k)[0] + level
    sci32 = sci.astype(np.float32) - truth.min()
    destripe.cross_talk(sci32)
    recovered = sci32 + truth.min()
    science = np.s_[:, 24:2 * COLS - 24]
    assert np.abs(recovered[science] - truth[science]).max() < 0.02  # DN; the ghost is undone to first order


def test_destripe_sums_run_in_calacs_loop_order() -> None:
    """numpy's pairwise sum differs from a C loop in the last bits; the destripe must use the loop's."""
    rng = np.random.default_rng(1)
    a = rng.normal(4000.0, 30.0, (300, 40)) * (1 + 1e-9 * rng.normal(size=(300, 40)))
    loop = 0.0
    for v in a.ravel():
        loop += v
    assert destripe.seq_sum(a) == loop
    rows = destripe.seq_sum(a, axis=1)
    assert all(rows[i] == sum_loop for i, sum_loop in enumerate(_row_loops(a)))
    # the data are such that numpy's own sum would have given other bits
    assert any(float(np.sum(a[i])) != rows[i] for i in range(a.shape[0])) or float(np.sum(a)) != loop


def _row_loops(a: np.ndarray) -> list[float]:
    out = []
    for row in a:
        s = 0.0
        for v in row:
            s += v
        out.append(s)
    return out
