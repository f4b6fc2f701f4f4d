"""The compiled UVIS CTE kernels against the numpy reference with a realistic 999-trap table
(:func:`pipeline.simulate.ctefiles.realistic_model`): the readout's block skipping (an empty trap
jumps over blocks that cannot fill it) must not change a bit, with bright pixels that reach the
high traps, negative pixels, and a time scaling that drops (after the readout-CR fix)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pipeline.science.calib.cte import kernels
from pipeline.science.calib.cte.invert import correct
from pipeline.science.calib.cte.readout import simulate, transfer
from pipeline.science.calib.cte.uvis import time_scaling
from pipeline.simulate.ctefiles import NTRAPS, realistic_model

pytestmark = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")


def _columns(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cols = rng.normal(12.0, 4.5, (2070, n))
    for c in range(n):                                   # a few bright pixels and a star per column
        cols[rng.integers(1, 2070, 3), c] += rng.uniform(200.0, 60000.0, 3)
        r = int(rng.integers(60, 2000))
        cols[r - 1:r + 2, c] += np.array([0.2, 0.6, 0.2]) * rng.uniform(1e3, 9e4)
    cols[:, 0] = 0.0                                     # an empty column: nothing fills
    cols[5:70, 1] = 80000.0                              # a saturated bleed near the register
    return cols


def test_realistic_table_has_999_distinct_integer_levels_and_normalised_releases() -> None:
    t = realistic_model()
    assert t.qlev.size == NTRAPS and np.all(np.diff(t.qlev) > 0) and np.array_equal(t.qlev, np.round(t.qlev))
    assert t.qlev[0] == 1.0 and t.qlev[-1] == 1e5
    assert np.all(t.dpde > 0)
    assert np.allclose(t.rprof.sum(axis=0), 1.0, atol=1e-6) and not t.rprof[60:].any()
    assert t.rprof[0, -1] == pytest.approx(0.2, abs=0.02) and t.rprof[1, -1] == pytest.approx(0.1, abs=0.01)
    assert not t.rprof[6:, 0].any()                      # the first electrons' traps empty within 6 transfers


def test_compiled_transfer_is_bit_identical_with_999_traps() -> None:
    table = replace(realistic_model(), npar=2)
    pixi = _columns(12, 1)
    fff = time_scaling(59000.0, table.date0, table.date1, pixi.shape[1])[1]
    fff[700:705, 3] *= 0.9 ** np.arange(1, 6)           # drops, as the readout-CR fix leaves them
    want = pixi
    for _ in range(table.npar):
        want = simulate(want, fff, table)
    assert np.array_equal(transfer(pixi, fff, table), want)
    assert np.array_equal(transfer(pixi, fff, table, compiled=False), want)


@pytest.mark.slow
def test_compiled_correction_is_bit_identical_with_999_traps() -> None:
    """One smoothing + readout per pass keeps the numpy reference (a Python loop over traps and
    rows) to about a minute; the bright pixels still reach traps 500-900."""
    table = replace(realistic_model(), nfor=1, npar=1)
    raz = _columns(4, 2).astype(np.float32)
    raz[1000:1003, 2] = -40.0                                       # an over-subtraction: the CR fix
    fff = time_scaling(59000.0, table.date0, table.date1, raz.shape[1])[1]
    f1, f2 = fff.copy(), fff.copy()
    a = correct(raz, f1, table, 3.75, compiled=True)
    b = correct(raz, f2, table, 3.75, compiled=False)
    assert np.array_equal(a, b) and np.array_equal(f1, f2)
    assert not np.array_equal(f1, fff)                              # the CR fix did run
