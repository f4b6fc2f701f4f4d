"""calwf3's resistant mean (``wf3ir/resistmean.c``), shared by IR BLEVCORR and the UVIS CTE bias."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.science.calib.resistmean import mad, mean, median, resistmean, sigma

F32 = np.float32


def test_outlier_rejected_and_truncation_correction_below_4_5_sigma() -> None:
    # median 3, MAD 1/0.6745 -> 100 rejected; the corrected 3-sigma cut keeps 1..4: mean 2.5
    m, sd = resistmean(np.array([1, 2, 3, 4, 100], F32), 3.0)
    assert m == pytest.approx(2.5)
    corr = -0.15405 + 0.90723 * 3 - 0.23584 * 9 + 0.020142 * 27
    assert sd == pytest.approx(np.sqrt(4 / 3 * (30 / 4 - 6.25)) / corr, rel=1e-6)
    # at the CTE's 7.5 sigma no correction: the plain sample sigma
    m, sd = resistmean(np.array([1, 2, 3, 4, 100], F32), 7.5)
    assert m == pytest.approx(2.5) and sd == pytest.approx(np.sqrt(4 / 3 * (30 / 4 - 6.25)), rel=1e-6)


def test_second_cut_keeps_only_first_round_survivors() -> None:
    """Round 2 filters the round-1 survivors (``tempdata2``), not the input: 230 is cut by the MAD
    round (7.5 x 27.6) and stays out although it lies inside the sigma round's 7.5 x 31.8."""
    m, sd = resistmean(np.array([0.0] * 60 + [50.0] * 20 + [-50.0] * 20 + [230.0], F32), 7.5)
    assert m == 0.0 and sd == pytest.approx(31.782, abs=1e-3)


def test_even_median_sums_the_middle_pair_in_float() -> None:
    # 16777216 + 16777218 rounds to 33554432 in float: the median is 16777216, not 16777217
    assert median(np.array([16777216.0, 16777218.0, 5.0, 16777220.0], F32)) == F32(16777216.0)


def test_mean_is_a_double_sum_in_array_order() -> None:
    """C's running sum loses the 1 against 1e30; numpy's pairwise ``sum`` (eight interleaved partial
    sums) would keep it and give 1/16."""
    values = np.zeros(16, F32)
    values[[0, 1, 8]] = 1e30, 1.0, -1e30
    assert np.sum(values, dtype=np.float64) == 1.0
    assert mean(values) == F32(0.0)


def test_sigma_rounds_squares_and_variance_to_float() -> None:
    x = np.array([3.1, 2.7, 3.3, 2.9], F32)
    mu = mean(x)
    sum2 = 0.0
    for v in x:
        sum2 += float(F32(v * v))
    var = 4 / 3.0 * (sum2 / 4 - float(mu) * float(mu))
    assert sigma(x, mu) == F32(np.sqrt(float(F32(var))))


def test_mad_divides_in_double_and_falls_back_to_the_mean() -> None:
    """MAD = float median / 0.6745 in double, then float (a float32 division differs in the last bit
    for some medians, and a one-ulp cut-off moved thousands of CTE fill decisions once)."""
    medians = np.random.default_rng(4).uniform(0.1, 50.0, 2000).astype(F32)
    differ = 0
    for m in medians:
        absdev = np.array([0.0, m, m * 2], F32)    # median m
        assert mad(absdev) == F32(float(m) / 0.6745)
        differ += mad(absdev) != m / F32(0.6745)
    assert differ > 0
    # more than half the deviations zero: the mean / 0.8
    assert mad(np.array([0, 0, 0, 4, 8], F32)) == F32(float(F32(12 / 5)) / 0.8)


def test_no_values_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        resistmean(np.array([], F32), 3.0)
