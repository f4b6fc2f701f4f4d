"""The trap model: readout of RAZ columns through the parallel register (``sim_colreadout_l_uvis_w``).

Traps are taken from the highest charge level down; each carries its fill state up the column,
so rows stay a Python loop, but every step works on all columns at once. A trap is skipped in a
column whose charge never reaches its level: it would never fill, so it changes nothing there.
"""

from __future__ import annotations

import numpy as np

from pipeline.science.calib.cte import kernels
from pipeline.science.calib.cte.pctetab import TRAIL, CteTable


def last_trap(pmax: np.ndarray, qlev: np.ndarray) -> np.ndarray:
    """Per column: the last trap index w with pmax >= q_w, or 1 when there is none."""
    ge = pmax[None, :] >= qlev[:, None]
    last = qlev.size - 1 - np.argmax(ge[::-1], axis=0)
    return np.where(ge.any(axis=0), last, 1)


def _trap_pass(p: np.ndarray, f: np.ndarray, decrease: np.ndarray, q: float, fill_charge: float,
               rprof: np.ndarray, cprof: np.ndarray, first: int) -> None:
    """One trap up every column of ``p`` (rows, n), in place. ``f`` is the time-scaling image,
    ``decrease[j]`` says whether any column's f drops at row j."""
    n = p.shape[1]
    ftrap = np.zeros(n)
    ttrap = np.full(n, TRAIL + 1, dtype=np.int64)
    zero = np.zeros(n)
    for j in range(first, p.shape[0]):
        if j > 1 and decrease[j]:
            drop = f[j] < f[j - 1]
            ftrap = np.where(drop, (f[j] / f[j - 1]) * ftrap, ftrap)
        pj = p[j]
        fill = pj >= q
        live = ttrap < TRAIL
        if not live.any() and not fill.any():
            continue
        ttrap += live
        idx = np.minimum(ttrap, TRAIL) - 1
        p1 = np.where(live, rprof[idx] * ftrap, zero)
        p2 = np.where(live & fill, cprof[idx] * ftrap, zero)
        ftrap = np.where(fill, fill_charge * f[j], ftrap)
        pg = np.where(fill, ftrap, zero)
        ttrap[fill] = 0
        p[j] = ((pj + p1) + p2) - pg


def simulate(pixi: np.ndarray, fff: np.ndarray, table: CteTable) -> np.ndarray:
    """Read out columns ``pixi`` (rows, n) in e- with time scaling ``fff`` (rows, n), one of the
    NITPAR sub-steps: returns ``pixo``. Row 0 is never processed."""
    pixo = pixi.copy()
    pmax = np.maximum(10.0, pixi.max(axis=0))
    wf = last_trap(pmax, table.qlev)
    decrease = np.zeros(pixi.shape[0], dtype=bool)
    decrease[1:] = (fff[1:] < fff[:-1]).any(axis=1)
    for w in range(int(wf.max()), -1, -1):
        q = float(table.qlev[w])
        active = wf >= w
        active &= pixo[1:].max(axis=0) >= q
        cols = np.flatnonzero(active)
        if cols.size == 0:
            continue
        whole = cols.size == pixo.shape[1]
        p = pixo if whole else pixo[:, cols]
        f = fff if whole else fff[:, cols]
        filled_rows = np.flatnonzero((p[1:] >= q).any(axis=1)) + 1
        _trap_pass(p, f, decrease, q, float(table.dpde[w]) / table.npar,
                   table.rprof[:TRAIL, w].astype(np.float64), table.cprof[:TRAIL, w].astype(np.float64),
                   first=int(filled_rows[0]))
        if not whole:
            pixo[:, cols] = p
    return pixo


def transfer(pixi: np.ndarray, fff: np.ndarray, table: CteTable, *, compiled: bool = True) -> np.ndarray:
    """The whole parallel transfer of ``pixi`` (rows, n): NITPAR sub-steps of :func:`simulate`, with
    the compiled kernel (bit-identical) when numba is installed: what the simulator trails raws with."""
    if compiled and kernels.AVAILABLE:
        return kernels.readout_compiled(pixi, fff, table.qlev, table.dpde / table.npar, table.rprof, table.cprof,
                                        table.npar)
    obs = pixi
    for _ in range(table.npar):
        obs = simulate(obs, fff, table)
    return obs
