"""Residual bias per amp from the serial virtual overscan (``findPostScanBias``), measured with
calwf3's resistant mean (``resistmean``: median/MAD cut, then a sigma cut about the new median)."""

from __future__ import annotations

import numpy as np

from pipeline.science.calib.cte.raz import AMP_COLS, SCIENCE_ROWS

#: calwf3 stops collecting overscan values after this many (27 columns x 2051 rows).
MAX_VALUES = 55377
POSTSCAN_FIRST = 2075
#: Subarrays: the physical prescan columns of a RAZ block that ``findPreScanBias`` reads.
PRESCAN_COLUMNS = slice(5, 25)
SIGREJ = 7.5


def _median(x: np.ndarray) -> np.float32:
    """Median of float32 values; an even count averages the middle two with their sum in float."""
    s = np.sort(x)
    n = s.size
    if n % 2:
        return np.float32(s[n // 2])
    return np.float32(0.5 * np.float32(s[n // 2 - 1] + s[n // 2]))


def _mean_sigma(x: np.ndarray) -> tuple[np.float32, np.float32]:
    """Mean and sample sigma; sums in double in array order, each square rounded to float first,
    and the variance taken about the mean already rounded to float (``findMean``/``findSigma``)."""
    n = x.size
    total = np.cumsum(x, dtype=np.float64)[-1]
    squares = np.cumsum((x * x).astype(np.float32), dtype=np.float64)[-1]
    mean = np.float64(np.float32(total / n))
    if n < 2:
        return np.float32(mean), np.float32(0.0)
    var = np.float32(n / (n - 1) * (squares / n - mean * mean))
    return np.float32(mean), np.float32(np.sqrt(max(float(var), 0.0)))


def resistmean(values: np.ndarray, sigrej: float = SIGREJ) -> tuple[float, float]:
    """(mean, sigma) of ``values`` (float32) after the two rejection passes."""
    x = np.asarray(values, dtype=np.float32)
    if x.size == 0:
        return 0.0, 0.0
    med = _median(x)
    dev = np.abs(x - med)
    mad = np.float32(_median(dev) / 0.6745)
    if mad < 1e-24:
        mad = np.float32(np.mean(dev, dtype=np.float64) / 0.8)
    # the cut-offs are float products, compared with float deviations (``wheregood``)
    keep = x[dev <= np.float32(sigrej) * mad]
    mean, sigma = _mean_sigma(keep)
    cut = np.float32(sigrej) * sigma
    med2 = _median(keep)
    final = keep[np.abs(keep - med2) <= cut]
    mean, sigma = _mean_sigma(final)
    return float(mean), float(sigma)


def postscan_bias(raz: np.ndarray) -> list[float]:
    """Per amp (C, D, A, B): the resistant mean of RAZ block columns 2075.. rows 0..2050, collected
    column by column and cut at 55377 values."""
    out = []
    for k in range(4):
        c0 = k * AMP_COLS + POSTSCAN_FIRST
        block = raz[:SCIENCE_ROWS, c0:(k + 1) * AMP_COLS]
        values = np.ascontiguousarray(block.T).ravel()[:MAX_VALUES]
        out.append(resistmean(values)[0])
    return out


def prescan_bias(raz: np.ndarray, mask: np.ndarray) -> list[float]:
    """Per amp (C, D, A, B) of a subarray pasted into a full frame: the resistant mean of the
    masked pixels of RAZ block columns 5..24, rows 0..2050, column by column, at most 55377
    values; 0 for an amp the subarray does not cover (``findPreScanBias``)."""
    out = []
    for k in range(4):
        cols = slice(k * AMP_COLS + PRESCAN_COLUMNS.start, k * AMP_COLS + PRESCAN_COLUMNS.stop)
        block, keep = raz[:SCIENCE_ROWS, cols].T, mask[:SCIENCE_ROWS, cols].T
        values = np.ascontiguousarray(block)[keep][:MAX_VALUES]
        out.append(resistmean(values)[0] if values.size else 0.0)
    return out
