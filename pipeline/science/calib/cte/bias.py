"""Residual bias per amp from the serial virtual overscan (``findPostScanBias``), measured with
calwf3's resistant mean (:mod:`pipeline.science.calib.resistmean`) at 7.5 sigma."""

from __future__ import annotations

import numpy as np

from pipeline.science.calib.cte.raz import AMP_COLS, SCIENCE_ROWS
from pipeline.science.calib.resistmean import resistmean

#: calwf3 stops collecting overscan values after this many (27 columns x 2051 rows).
MAX_VALUES = 55377
POSTSCAN_FIRST = 2075
#: Subarrays: the physical prescan columns of a RAZ block that ``findPreScanBias`` reads.
PRESCAN_COLUMNS = slice(5, 25)
SIGREJ = 7.5


def postscan_bias(raz: np.ndarray) -> list[float]:
    """Per amp (C, D, A, B): the resistant mean of RAZ block columns 2075.. rows 0..2050, collected
    column by column and cut at 55377 values."""
    out = []
    for k in range(4):
        c0 = k * AMP_COLS + POSTSCAN_FIRST
        block = raz[:SCIENCE_ROWS, c0:(k + 1) * AMP_COLS]
        values = np.ascontiguousarray(block.T).ravel()[:MAX_VALUES]
        out.append(resistmean(values, SIGREJ)[0])
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
        out.append(resistmean(values, SIGREJ)[0] if values.size else 0.0)
    return out
