"""The lane-blocked CTE kernel (:mod:`pipeline.science.calib.cte.lanes`: LANES columns smoothed at
once in vector code) against the scalar kernel and the numpy reference, bit for bit: columns with
different row ranges, columns that stop at different sweeps, a column with nothing to smooth, a
partial last block, and columns whose readout-CR fix sends them to a second pass."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pipeline.science.calib.cte import kernels
from pipeline.science.calib.cte.invert import correct
from pipeline.science.calib.cte.uvis import time_scaling
from pipeline.simulate.ctefiles import trap_model

pytestmark = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")

ROWS = 2070


def _columns(ncol: int, rng: np.random.Generator) -> np.ndarray:
    """(rows, ncol): noise of 0.3 to 40 e- (the wide ones stop within a few sweeps, the quiet ones
    run all 298), positive only between random first and last rows, one column never positive."""
    chg = np.empty((ROWS, ncol))
    for c in range(ncol):
        chg[:, c] = rng.normal(5.0, rng.uniform(0.3, 40.0), ROWS)
        chg[:rng.integers(0, 600), c] = -2.0
        chg[ROWS - rng.integers(23, 900):, c] = -2.0
    chg[:, 2] = -1.0
    chg[1500:1530, 3] = rng.normal(5.0, 3.0, 30)
    return chg


def _smooth_scalar(chg: np.ndarray) -> tuple[np.ndarray, list[int]]:
    rsz = np.empty_like(chg)
    sweeps = []
    for c in range(chg.shape[1]):
        col = np.ascontiguousarray(chg[:, c])
        out = np.empty(ROWS)
        sweeps.append(kernels._smooth(col, out, np.empty(ROWS), 3.75))
        rsz[:, c] = out
    return rsz, sweeps


def test_lane_smoothing_is_bit_identical_to_the_scalar_kernel_per_column() -> None:
    lanes = kernels.LANES
    chg = _columns(2 * lanes + 5, np.random.default_rng(41))            # two full blocks and a partial one
    want, sweeps = _smooth_scalar(chg)
    assert sweeps[2] == 0 and 298 in sweeps                              # nothing to smooth; never stops
    assert len({s for s in sweeps if 0 < s < 298}) >= 10                # stops at many different sweeps
    rsz, rnz = np.empty((ROWS, lanes)), np.empty((ROWS, lanes))
    lo, hi, acc = np.empty(lanes, np.int64), np.empty(lanes, np.int64), np.empty(2 * lanes)
    for start in range(0, chg.shape[1], lanes):
        block = np.zeros((ROWS, lanes))
        width = min(lanes, chg.shape[1] - start)
        block[:, :width] = chg[:, start:start + width]
        kernels._smooth_lanes(block, rsz, rnz, lo, hi, acc, 3.75)
        assert np.array_equal(rsz[:, :width], want[:, start:start + width]), f"block at column {start}"
        assert np.array_equal(rsz[:, width:], block[:, width:])          # unused lanes untouched


def test_lane_blocked_correction_matches_the_numpy_reference_with_readout_cr_redos() -> None:
    """13 columns: one full block of 8 and a partial one of 5; a bright pixel above low ones in three
    of them (and one random hit) makes the readout-CR fix lower fff and redo those columns, which
    continue on the scalar path."""
    rng = np.random.default_rng(8)
    ncol = kernels.LANES + 5
    table = replace(trap_model(active=8, qmax=2000.0, density=8.0), nfor=2, npar=2)
    raz = (rng.normal(8.0, 3.0, (ROWS, ncol)) + np.where(rng.random((ROWS, ncol)) < 0.01, 800.0, 0.0))
    for c, bright, low in ((1, 3000.0, -15.0), (9, 1500.0, -12.0), (12, 5000.0, -20.0)):
        raz[1700, c] = bright                                           # its trail, corrected, over-subtracts
        raz[1701:1704, c] = low
    raz = raz.astype(np.float32)
    fff = time_scaling(58000.0, table.date0, table.date1, ncol)[1]
    f1, f2 = fff.copy(), fff.copy()
    a = correct(raz, f1, table, 3.75, compiled=True)
    b = correct(raz, f2, table, 3.75, compiled=False)
    redone = np.flatnonzero((f1 != fff).any(axis=0))
    assert {1, 9, 12} <= set(redone.tolist())
    assert np.array_equal(a, b) and np.array_equal(f1, f2)
