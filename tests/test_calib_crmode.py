"""CRCORR's sky level (``cr_mode``) rounds as calwf3's and calacs's C does: the terms with a double
constant (``0.5 * hwidth``, the parabola ``bpeak + 0.5 + 0.5 * (dh1 - dh2) / denom``) are evaluated in
double and rounded once to float. Under NumPy 2 a float32 operand keeps such a term in float32, which
moved SKYSUM, and with it ~40 % of a ``_crj``'s SCI pixels, by an ulp against calwf3.e (simulated
UVIS CR-SPLIT, seed 4). The histograms below were found by searching for cases where the two differ."""

from __future__ import annotations

import numpy as np

from pipeline.science.calib.crrej import cr_mode

f32 = np.float32


def _peaked(nbins: int, peak: int, left: int, top: int, right: int) -> np.ndarray:
    hist = np.zeros(nbins, np.int64)
    hist[peak - 1:peak + 2] = (left, top, right)
    return hist


def test_the_parabola_is_evaluated_in_double() -> None:
    hw, hm = f32(2.9000401), f32(-104.0)
    dh1, dh2 = f32(99229 - 24482), f32(99229 - 76989)
    mode_c = f32(1447 + 0.5 + 0.5 * float(dh1 - dh2) / float(dh1 + dh2))  # C: double, then float
    mode_f32 = f32(1447 + 0.5) + f32(0.5) * (dh1 - dh2) / (dh1 + dh2)      # all in float32
    assert mode_c != mode_f32
    assert cr_mode(_peaked(1740, 1447, 24482, 99229, 76989), float(hw), float(hm)) == float(hm + mode_c * hw)


def test_a_peak_in_the_last_bin_is_its_midpoint_in_double() -> None:
    hw, hm = f32(1.2462279), f32(-11076.0)
    hist = np.zeros(8539, np.int64)
    hist[-1] = 5
    expected = f32(float(hm) + 8538.5 * float(hw))
    assert expected != hm + f32(8538.5) * hw
    assert cr_mode(hist, float(hw), float(hm)) == float(expected)
