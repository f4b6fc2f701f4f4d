"""Column inversion (``sub_ctecor_v2c``): find the image that, read out through the trap model,
gives the observed one; then damp over-subtracted readout cosmic rays by lowering the local
time scaling and redo those columns (at most 10 passes). All columns in one vectorised call."""

from __future__ import annotations

import numpy as np

from pipeline.science.calib.cte import kernels
from pipeline.science.calib.cte.pctetab import CteTable
from pipeline.science.calib.cte.readout import simulate
from pipeline.science.calib.cte.smooth import smooth

CR_ROWS = (15, 2060)     # rows scanned for over-subtracted readout cosmic rays (inclusive)
MAX_PASSES = 10


def forward_model(raz: np.ndarray, fff: np.ndarray, table: CteTable, rnoi: float) -> np.ndarray:
    """One pass: NITFOR x (smooth, NITPAR readout sub-steps, correct) -> the model ``mod``."""
    mod = raz.copy()
    for _ in range(table.nfor):
        rsz = smooth(mod, rnoi)
        obs = rsz
        for _ in range(table.npar):
            obs = simulate(obs, fff, table)
        mod = raz - (obs - rsz)
    return mod


def readout_cr_fix(mod: np.ndarray, raz: np.ndarray, fff: np.ndarray, threshold: float) -> np.ndarray:
    """Scale fff by 0.9 where a readout CR was over-subtracted (in place); returns the columns hit."""
    t = float(np.float32(threshold))
    lo, hi = CR_ROWS
    j = np.arange(lo, hi + 1)
    m, d = mod, mod - raz
    hit = ((m[lo:hi + 1] < t) & (d[lo:hi + 1] < t) & (m[lo:hi + 1] < m[lo + 1:hi + 2])
           & (m[lo:hi + 1] < m[lo - 1:hi]))
    rows, cols = np.nonzero(hit)
    if rows.size == 0:
        return np.zeros(mod.shape[1], dtype=bool)
    jq = j[rows]
    jmax = jq.copy()
    for cand in (jq - 2, jq - 1):
        better = d[cand, cols] > d[jmax, cols]
        jmax = np.where(better, cand, jmax)
    ok = d[jmax, cols] > -2.5 * t
    jmax, cols = jmax[ok], cols[ok]
    # repeated hits on one pixel multiply again, one after the other
    flat = jmax * mod.shape[1] + cols
    uniq, count = np.unique(flat, return_counts=True)
    r, c = np.divmod(uniq, mod.shape[1])
    for k in range(1, int(count.max(initial=0)) + 1):
        sel = count >= k
        fff[r[sel], c[sel]] *= 0.90
    touched = np.zeros(mod.shape[1], dtype=bool)
    touched[cols] = True
    return touched


def correct(raz: np.ndarray, fff: np.ndarray, table: CteTable, rnoi: float, *, compiled: bool = True) -> np.ndarray:
    """``rzc``: the CTE-corrected RAZ image (float32) from ``raz`` (e-, float32) and the time
    scaling image ``fff`` (float64, modified where readout CRs are damped). The compiled kernel
    (:mod:`.kernels`, bit-identical) is used when numba is installed; this numpy path otherwise."""
    if compiled and kernels.AVAILABLE:
        return kernels.correct_compiled(raz, fff, table.qlev, table.dpde / table.npar, table.rprof, table.cprof,
                                        table.nfor, table.npar, table.trsh, rnoi)
    obs = raz.astype(np.float64)
    out = np.empty(raz.shape, dtype=np.float32)
    cols = np.arange(raz.shape[1])
    passes = 0
    while cols.size:
        passes += 1
        whole = cols.size == raz.shape[1]
        o = obs if whole else obs[:, cols]
        f = fff if whole else fff[:, cols]
        mod = forward_model(o, f, table, rnoi)
        redo = np.zeros(cols.size, dtype=bool)
        if table.trsh < 0:
            redo = readout_cr_fix(mod, o, f, table.trsh)
            if not whole:
                fff[:, cols] = f
        out[:, cols] = mod
        if passes >= MAX_PASSES:
            break
        cols = cols[redo]
    return out
