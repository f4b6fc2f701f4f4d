"""The resistant mean of BLEVCORR (``wf3ir/resistmean.c``), float32 where the C code is float."""

from __future__ import annotations

import numpy as np

F32 = np.float32
F64 = np.float64
#: Truncation correction of the standard deviation for a 3-sigma cut (used when sigrej <= 4.5).
_POLY = (-0.15405, 0.90723, -0.23584, 0.020142)


def median(values: np.ndarray) -> np.float32:
    """``findRMedian``: the middle value, or 0.5 * (a + b) with the sum in float."""
    n = values.size
    if n == 0:
        return F32(0.0)
    s = np.sort(values)
    if n % 2 == 0:
        return F32(0.5 * F64(F32(s[n // 2 - 1] + s[n // 2])))
    return F32(s[n // 2])


def mean(values: np.ndarray) -> np.float32:
    return F32(np.sum(values, dtype=F64) / F64(values.size)) if values.size else F32(0.0)


def sigma(values: np.ndarray, mu: np.float32) -> np.float32:
    """``findSigma``: squares in float summed in double, the variance rounded to float before the root."""
    n = values.size
    if n <= 1:
        return F32(0.0)
    sum2 = np.sum(values * values, dtype=F64)
    var = (n / (n - 1.0)) * (sum2 / n - F64(mu) * F64(mu))
    return F32(np.sqrt(F64(F32(var)))) if var >= 0 else F32(0.0)


def _mad(values: np.ndarray, center: np.float32) -> tuple[np.ndarray, np.float32]:
    absdev = np.abs(values - center)
    mad = F32(F64(median(absdev)) / 0.6745)
    if mad < 1.0e-24:
        mad = F32(F64(mean(absdev)) / 0.8)
    return absdev, mad


def resistant_mean(values: np.ndarray, sigrej: float = 3.0) -> tuple[float, float]:
    """(mean, sigma) after rejecting points beyond ``sigrej`` median absolute deviations, then
    beyond ``sigrej`` truncation-corrected standard deviations of the survivors."""
    data = np.asarray(values, F32).ravel()
    if data.size == 0:
        raise ValueError("resistant mean of no values")
    rej = F32(sigrej)
    absdev, mad = _mad(data, median(data))
    good = data[absdev <= F32(rej * mad)]
    mu = mean(good)
    sd = sigma(good, mu)
    r = F64(rej)
    correction = _POLY[0] + _POLY[1] * r + _POLY[2] * r * r + _POLY[3] * r * r * r
    if sigrej <= 4.5:
        sd = F32(F64(sd) / correction)
    cutoff = F32(rej * sd)
    absdev2 = np.abs(good - median(good))
    final = good[absdev2 <= cutoff]
    mu = mean(final)
    sd = sigma(final, mu)
    if sigrej <= 4.5:
        sd = F32(F64(sd) / correction)
    return float(mu), float(sd)
