"""calwf3's resistant mean (``wf3ir/resistmean.c``), rounded where the C code rounds.

One function serves IR BLEVCORR (reference pixels, sigrej 3) and the UVIS CTE residual bias
(serial overscan, sigrej 7.5): the same C routine in calwf3. What decides the last bit:

- sums are double, taken in array order (``findMean``, ``findSigma``); squares are float products;
- the variance is rounded to float before its square root;
- medians average the middle pair with their sum in float (``findRMedian``);
- MAD = float median / 0.6745 in double, rounded to float; cut-offs are float products;
- round 2 keeps the survivors of round 1 (``tempdata2``), cut about their own median;
- below sigrej 4.5 the sigma is divided by the truncation polynomial (in double).
"""

from __future__ import annotations

import numpy as np

F32 = np.float32
F64 = np.float64
#: Truncation correction of the standard deviation (applied when sigrej <= 4.5).
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
    """``findMean``: a double sum in array order, divided in double, rounded to float."""
    if values.size == 0:
        return F32(0.0)
    return F32(np.cumsum(values, dtype=F64)[-1] / F64(values.size))


def sigma(values: np.ndarray, mu: np.float32) -> np.float32:
    """``findSigma``: float squares summed in double in order, the variance rounded to float before the root."""
    n = values.size
    if n <= 1:
        return F32(0.0)
    sum2 = np.cumsum(values * values, dtype=F64)[-1]
    var = F64(n / (n - 1.0)) * (sum2 / F64(n) - F64(mu) * F64(mu))
    return F32(np.sqrt(F64(F32(var)))) if var >= 0 else F32(0.0)


def mad(absdev: np.ndarray) -> np.float32:
    """The deviation scale of round 1: median / 0.6745 in double, rounded to float; the mean / 0.8
    when that is below 1e-24 (more than half the values equal)."""
    scale = F32(F64(median(absdev)) / 0.6745)
    return F32(F64(mean(absdev)) / 0.8) if scale < 1.0e-24 else scale


def _truncation(sd: np.float32, rej: np.float32) -> np.float32:
    r = F64(rej)
    return F32(F64(sd) / (_POLY[0] + _POLY[1] * r + _POLY[2] * r * r + _POLY[3] * r * r * r))


def resistmean(values: np.ndarray, sigrej: float) -> tuple[float, float]:
    """(mean, sigma) of float32 ``values`` after a cut at ``sigrej`` median absolute deviations about
    the median, then at ``sigrej`` (truncation-corrected) sigmas about the survivors' median."""
    data = np.asarray(values, F32).ravel()
    if data.size == 0:
        raise ValueError("resistant mean of no values")
    rej = F32(sigrej)
    absdev = np.abs(data - median(data))
    good = data[absdev <= F32(rej * mad(absdev))]
    mu = mean(good)
    sd = sigma(good, mu)
    if rej <= 4.5:
        sd = _truncation(sd, rej)
    cutoff = F32(rej * sd)
    final = good[np.abs(good - median(good)) <= cutoff]
    mu = mean(final)
    sd = sigma(final, mu)
    if rej <= 4.5:
        sd = _truncation(sd, rej)
    return float(mu), float(sd)
