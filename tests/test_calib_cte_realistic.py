"""The compiled UVIS CTE kernels against the numpy reference with a realistic 999-trap table
(:func:`pipeline.simulate.ctefiles.realistic_model`): the readout's block skipping (an empty trap
jumps over blocks that cannot fill it) must not change a bit, with bright pixels that reach the
high traps, negative pixels, and a time scaling that drops (after the readout-CR fix)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipeline.science.calib import uvis
from pipeline.science.calib.builtin import new_context
from pipeline.science.calib.cte import kernels
from pipeline.science.calib.cte import uvis as uvis_cte
from pipeline.science.calib.cte.invert import correct
from pipeline.science.calib.cte.pctetab import read_pctetab
from pipeline.science.calib.cte.readout import simulate, transfer
from pipeline.science.calib.cte.uvis import time_scaling
from pipeline.science.calib.imageio import read_exposure
from pipeline.simulate.ctefiles import NTRAPS, UNUSED, realistic_model, write_pctetab

needs_numba = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")


def _every(step: int, **changes: int) -> object:
    """Every ``step``-th trap of the realistic table (levels still 1 e- .. 10^5 e-), the other rows
    unused: the numpy reference loops over traps and rows in Python, 999 traps would take minutes."""
    t = realistic_model()
    keep = np.arange(NTRAPS) % step == 0
    keep[-1] = True
    qlev = np.where(keep, t.qlev, UNUSED)
    order = np.argsort(qlev, kind="stable")
    return replace(t, qlev=qlev[order], dpde=t.dpde[order] * step, rprof=t.rprof[:, order], cprof=t.cprof[:, order],
                   **changes)


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


def test_pctetab_name_is_cut_to_calwf3s_24_characters(tmp_path: Path) -> None:
    """wf3cte.e wrote 'owlsim pixelCTE realisti' for this 25-character CTE_NAME (SZ_CBUF = 24)."""
    table = read_pctetab(write_pctetab(tmp_path / "r_cte.fits", realistic_model()))
    assert table.name == "owlsim pixelCTE realisti" and table.qlev.size == NTRAPS


@needs_numba
def test_compiled_transfer_is_bit_identical_with_realistic_traps() -> None:
    table = _every(16, npar=1)
    pixi = _columns(8, 1)
    fff = time_scaling(59000.0, table.date0, table.date1, pixi.shape[1])[1]
    fff[700:705, 3] *= 0.9 ** np.arange(1, 6)           # drops, as the readout-CR fix leaves them
    want = pixi
    for _ in range(table.npar):
        want = simulate(want, fff, table)
    assert np.array_equal(transfer(pixi, fff, table), want)
    assert np.array_equal(transfer(pixi, fff, table, compiled=False), want)


@needs_numba
@pytest.mark.slow
def test_compiled_correction_is_bit_identical_with_realistic_traps() -> None:
    table = _every(32, nfor=1, npar=2)
    raz = _columns(4, 2).astype(np.float32)
    raz[1000:1003, 2] = -40.0                                       # an over-subtraction: the CR fix
    fff = time_scaling(59000.0, table.date0, table.date1, raz.shape[1])[1]
    f1, f2 = fff.copy(), fff.copy()
    a = correct(raz, f1, table, 3.75, compiled=True)
    b = correct(raz, f2, table, 3.75, compiled=False)
    assert np.array_equal(a, b) and np.array_equal(f1, f2)
    assert not np.array_equal(f1, fff)                              # the CR fix did run


@needs_numba
@pytest.mark.long
@pytest.mark.skipif(shutil.which("wf3cte.e") is None, reason="calwf3's wf3cte.e is not on PATH (hstcal not installed)")
def test_full_frame_rac_matches_wf3cte_with_the_realistic_table(tmp_path: Path) -> None:
    """The whole WF3CTE step on a full frame trailed through all 999 traps: calwf3's rac_tmp SCI,
    ERR and DQ bit for bit, and the same PCTERNOI (minutes of calwf3 CPU: make test-long). The
    integer trap levels make the result sensitive to one float ulp of the residual bias."""
    from tests.cte_synth import build

    raw = build(tmp_path / "set", realistic=True)
    work = tmp_path / "hstcal"
    work.mkdir()
    shutil.copy(raw, work / raw.name)
    done = subprocess.run([shutil.which("wf3cte.e"), raw.name], cwd=work, capture_output=True, text=True,
                          env={**os.environ, "iref": f"{raw.parent}/"})
    rac = work / raw.name.replace("_raw", "_rac_tmp")
    assert rac.is_file(), done.stdout[-2000:]
    exposure = read_exposure(raw)
    ctx = new_context(exposure, site=None, environ={"iref": f"{raw.parent}/"}, log=None)
    ctx.read_switches(uvis.SWITCHES)
    ours = uvis_cte.run(ctx, exposure)
    theirs = read_exposure(rac)
    for a, b, raw_imset in zip(ours.imsets, theirs.imsets, exposure.imsets, strict=True):
        for name in ("sci", "err", "dq"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), (a.extver, name)
        assert not np.array_equal(a.sci, raw_imset.sci)
    assert np.float32(theirs.primary["PCTERNOI"]) == np.float32(ctx.primary_updates["PCTERNOI"])
    assert theirs.primary["CTE_NAME"] == ctx.primary_updates["CTE_NAME"]
