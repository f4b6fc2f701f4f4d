"""The per-column inversion compiled with numba: the same arithmetic as :mod:`.smooth`,
:mod:`.readout` and :mod:`.invert`, in the same order (no fast-math, so no reassociation or fused
multiply-adds), one column at a time with the columns spread over the cores. The numpy modules stay
the reference; ``tests/test_calib_cte.py`` holds the two to bit-identical results.

Why: the smoothing alone sweeps every column up to 298 times per forward iteration; numpy pays a
full-frame temporary per operation per sweep, a compiled loop keeps the column in cache. The first
pass smooths LANES columns at once (:func:`_smooth_lanes`, vector code from :mod:`.lanes`); the
scalar :func:`_smooth` stays for the passes redone after a readout-CR fix.
"""

from __future__ import annotations

import contextlib

import numpy as np

from pipeline.science.calib.jit import jit, numba

if numba is not None:
    from pipeline.science.calib.cte.lanes import LANES, sweep

TRAIL = 60
NIT_MAX = 298
FIRST, LAST = 2, 2047
CR_LO, CR_HI = 15, 2060
MAX_PASSES = 10
#: Columns handed to a core at a time. Columns cost very different amounts (smoothing sweeps, trap
#: levels reached, readout-CR redos) and the cores are shared: small chunks keep both busy to the
#: end instead of one static half each. Columns are independent, so results do not change.
CHUNK = 32
#: Rows per block of the readout's skip test (:func:`_simulate`).
BLOCK = 64


def _row_range(chg):  # type: ignore[no-untyped-def]
    """First and last row in FIRST..LAST with a positive value (LAST, FIRST when none)."""
    j1, j2 = LAST, FIRST
    for j in range(FIRST, LAST + 1):
        if chg[j] > 0:
            j1 = j
            break
    for j in range(LAST, FIRST - 1, -1):
        if chg[j] > 0:
            j2 = j
            break
    return j1, j2


def _smooth(chg, rsz, rnz, rnoi):  # type: ignore[no-untyped-def]
    """``rsz`` of one column; returns the sweeps it ran (0 to NIT_MAX), which the tests use to pick
    columns that stop at different sweeps."""
    n = chg.shape[0]
    for j in range(n):
        rsz[j] = chg[j]
        rnz[j] = 0.0
    j1, j2 = _row_range(chg)
    if j1 > j2:
        return 0
    clip = rnoi / 5.0
    for nit in range(1, NIT_MAX + 1):
        rnn = rnoi * (1.0 + 5.0 * nit / 299.0)
        # one sweep: dd(j) from the sweep's starting rsz, its updates, and rsz(j-1) once rnz(j-1) is
        # final. The three rnz values in play and the old rsz neighbours live in registers (a, b and
        # s0, s1): the same operations on each element in the same order, without store-to-load stalls.
        num = 0.0
        den = 0.0
        s0 = rsz[j1 - 1]
        s1 = rsz[j1]
        a = rnz[j1 - 1]
        b = rnz[j1]
        for j in range(j1, j2 + 1):
            s2 = rsz[j + 1]
            d = s1 - (s2 + s0) / 2.0
            if abs(d) < rnn:
                if d > clip:
                    d = clip
                elif d < -clip:
                    d = -clip
                den += 1.0
            else:
                d = 0.0
            q = 0.25 * d
            c = rnz[j + 1]
            a -= q
            b += 0.5 * d
            c -= q
            rnz[j - 1] = a
            if j > j1:
                rsz[j - 1] = chg[j - 1] - a
                num += a * a
            a = b
            b = c
            s0 = s1
            s1 = s2
        rnz[j2] = a
        rnz[j2 + 1] = b
        rsz[j2] = chg[j2] - a
        num += a * a
        rnu = np.sqrt(num / den)
        if rnu > rnoi:
            return nit
    return NIT_MAX


def _smooth_lanes(chg, rsz, rnz, lo, hi, acc, rnoi):  # type: ignore[no-untyped-def]
    """:func:`_smooth` of the LANES columns of ``chg`` (rows, LANES) at once, bit-identical per
    column: the sweeps in :func:`.lanes.sweep`, each lane stopping at its own sweep (a stopped
    lane keeps its rsz). ``rnz`` (rows, LANES), ``lo``, ``hi`` (LANES, int64), ``acc`` (2 LANES): scratch."""
    n = chg.shape[0]
    for j in range(n):
        for k in range(LANES):
            rsz[j, k] = chg[j, k]
            rnz[j, k] = 0.0
    for k in range(LANES):
        lo[k], hi[k] = _row_range(chg[:, k])
    clip = rnoi / 5.0
    for nit in range(1, NIT_MAX + 1):
        j1, j2 = LAST + 1, FIRST - 1
        for k in range(LANES):
            if lo[k] <= hi[k]:
                j1 = min(j1, lo[k])
                j2 = max(j2, hi[k])
        if j1 > j2:
            return
        sweep(chg, rsz, rnz, lo, hi, acc, j1, j2, rnoi * (1.0 + 5.0 * nit / 299.0), clip)
        for k in range(LANES):
            if lo[k] <= hi[k] and np.sqrt(acc[k] / acc[LANES + k]) > rnoi:
                lo[k], hi[k] = LAST + 1, FIRST - 1


def _block_max(pixo, bmax, b):  # type: ignore[no-untyped-def]
    """The largest value of rows ``b*BLOCK .. (b+1)*BLOCK - 1`` (row 0 excluded: never read out)."""
    m = -np.inf
    for j in range(max(b * BLOCK, 1), min((b + 1) * BLOCK, pixo.shape[0])):
        if pixo[j] > m:
            m = pixo[j]
    bmax[b] = m


def _simulate(pixi, pixo, f, drops, qlev, fill_charge, rprof, cprof, bmax):  # type: ignore[no-untyped-def]
    """``rprof``/``cprof`` are (trap, step) here; ``drops`` says whether f ever decreases.

    The rows a trap changes are those where it fills (pixo >= q) and the 60 after each fill;
    elsewhere it is empty and calwf3's step adds zeros (its charge, rescaled where f drops, is
    overwritten at the next fill before it is read). ``bmax`` holds an upper bound of each
    ``BLOCK``-row block, exact after the block was last changed: an empty trap jumps over every
    block that cannot fill it, so the high traps of a bright column cost a few blocks, not 2069 rows.
    """
    n = pixi.shape[0]
    pmax = 10.0
    for j in range(n):
        pixo[j] = pixi[j]
        if pixi[j] > pmax:
            pmax = pixi[j]
    wf = -1
    for w in range(qlev.shape[0]):
        if pmax >= qlev[w]:
            wf = w
    if wf < 0:
        wf = 1
    nblocks = (n + BLOCK - 1) // BLOCK
    for b in range(nblocks):
        _block_max(pixo, bmax, b)
    for w in range(wf, -1, -1):
        q = qlev[w]
        fill = fill_charge[w]
        ftrap = 0.0
        ttrap = TRAIL + 1
        for b in range(nblocks):
            if ttrap >= TRAIL and not bmax[b] >= q:
                continue
            for j in range(max(b * BLOCK, 1), min((b + 1) * BLOCK, n)):
                if ttrap >= TRAIL and not bmax[b] >= q:
                    break  # empty, and nothing left in this block can fill it
                if drops and j > 1 and f[j] < f[j - 1]:
                    ftrap = (f[j] / f[j - 1]) * ftrap
                pj = pixo[j]
                if pj >= q:
                    p1 = 0.0
                    p2 = 0.0
                    if ttrap < TRAIL:
                        ttrap += 1
                        p1 = rprof[w, ttrap - 1] * ftrap
                        p2 = cprof[w, ttrap - 1] * ftrap
                    ftrap = fill * f[j]
                    pixo[j] = ((pj + p1) + p2) - ftrap
                    ttrap = 0
                elif ttrap < TRAIL:
                    ttrap += 1
                    pixo[j] = pj + rprof[w, ttrap - 1] * ftrap
            _block_max(pixo, bmax, b)


def _transfer(a, b, f, qlev, fill_charge, rprof, cprof, npar, bmax):  # type: ignore[no-untyped-def]
    """NITPAR sub-steps of :func:`_simulate` on column ``a`` in place (``b``, ``bmax``: scratch)."""
    n = a.shape[0]
    drops = False
    for j in range(2, n):
        if f[j] < f[j - 1]:
            drops = True
    for _ in range(npar):
        _simulate(a, b, f, drops, qlev, fill_charge, rprof, cprof, bmax)
        for j in range(n):
            a[j] = b[j]


def _read_out(rsz, raz, f, mod, work, bmax, qlev, fill_charge, rprof, cprof, npar):  # type: ignore[no-untyped-def]
    """The rest of a forward iteration after the smoothing: ``rsz`` read out (NITPAR sub-steps)
    and ``mod = raz - (readout - rsz)``. ``work`` (2, rows) and ``bmax``: scratch."""
    a = work[0]
    for j in range(raz.shape[0]):
        a[j] = rsz[j]
    _transfer(a, work[1], f, qlev, fill_charge, rprof, cprof, npar, bmax)
    for j in range(raz.shape[0]):
        mod[j] = raz[j] - (a[j] - rsz[j])


def _cr_fix(raz, mod, f, t, npass):  # type: ignore[no-untyped-def]
    """calwf3's readout-CR damping of pass ``npass`` (``f`` scaled in place); True: redo the column."""
    redo = False
    for j in range(CR_LO, CR_HI + 1):
        if (mod[j] < t and mod[j] - raz[j] < t and mod[j] < mod[j + 1] and mod[j] < mod[j - 1]):
            jmax = j
            if mod[j - 2] - raz[j - 2] > mod[jmax] - raz[jmax]:
                jmax = j - 2
            if mod[j - 1] - raz[j - 1] > mod[jmax] - raz[jmax]:
                jmax = j - 1
            if mod[jmax] - raz[jmax] > -2.5 * t:
                f[jmax] *= 0.90
                redo = npass < MAX_PASSES
    return redo


def _column(raz, f, out, qlev, fill_charge, rprof, cprof, nfor, npar, trsh, rnoi, first):  # type: ignore[no-untyped-def]
    """Passes ``first`` .. MAX_PASSES of one column (a pass redone after a readout-CR fix)."""
    n = raz.shape[0]
    mod = np.empty(n)
    rsz = np.empty(n)
    rnz = np.empty(n)
    work = np.empty((2, n))
    bmax = np.empty((n + BLOCK - 1) // BLOCK)
    t = np.float64(np.float32(trsh))
    for npass in range(first, MAX_PASSES + 1):
        for j in range(n):
            mod[j] = raz[j]
        for _ in range(nfor):
            _smooth(mod, rsz, rnz, rnoi)
            _read_out(rsz, raz, f, mod, work, bmax, qlev, fill_charge, rprof, cprof, npar)
        if not (trsh < 0 and _cr_fix(raz, mod, f, t, npass)):
            break
    for j in range(n):
        out[j] = np.float32(mod[j])


def _lane_block(raz, fff, out, qlev, fill_charge, rprof, cprof, nfor, npar, trsh, rnoi):  # type: ignore[no-untyped-def]
    """The first pass of up to LANES columns (``raz``, ``fff``, ``out``: (columns, rows)), their
    smoothing in :func:`_smooth_lanes`, their readouts one by one; a column whose readout CRs need a
    second pass continues alone in :func:`_column`. Unused lanes hold zeros: never smoothed."""
    ncol, n = raz.shape
    chg = np.zeros((n, LANES))
    rsz = np.empty((n, LANES))
    rnz = np.empty((n, LANES))
    lo = np.empty(LANES, np.int64)
    hi = np.empty(LANES, np.int64)
    acc = np.empty(2 * LANES)
    r = np.empty(n)
    m = np.empty(n)
    work = np.empty((2, n))
    bmax = np.empty((n + BLOCK - 1) // BLOCK)
    for k in range(ncol):
        for j in range(n):
            chg[j, k] = raz[k, j]
    for _ in range(nfor):
        _smooth_lanes(chg, rsz, rnz, lo, hi, acc, rnoi)
        for k in range(ncol):
            for j in range(n):
                r[j] = rsz[j, k]
            _read_out(r, raz[k], fff[k], m, work, bmax, qlev, fill_charge, rprof, cprof, npar)
            for j in range(n):
                chg[j, k] = m[j]
    t = np.float64(np.float32(trsh))
    for k in range(ncol):
        for j in range(n):
            m[j] = chg[j, k]
        if trsh < 0 and _cr_fix(raz[k], m, fff[k], t, 1):
            _column(raz[k], fff[k], out[k], qlev, fill_charge, rprof, cprof, nfor, npar, trsh, rnoi, 2)
        else:
            for j in range(n):
                out[k, j] = np.float32(m[j])


def _all_columns(raz, fff, out, qlev, fill_charge, rprof, cprof, nfor, npar, trsh, rnoi):  # type: ignore[no-untyped-def]
    for c in numba.prange((raz.shape[0] + LANES - 1) // LANES):
        s = slice(c * LANES, min((c + 1) * LANES, raz.shape[0]))
        _lane_block(raz[s], fff[s], out[s], qlev, fill_charge, rprof, cprof, nfor, npar, trsh, rnoi)


def _readout_columns(cols, fff, qlev, fill_charge, rprof, cprof, npar):  # type: ignore[no-untyped-def]
    """NITPAR readout sub-steps of every column of ``cols`` (columns, rows), in place."""
    n = cols.shape[1]
    for c in numba.prange(cols.shape[0]):
        _transfer(cols[c], np.empty(n), fff[c], qlev, fill_charge, rprof, cprof, npar,
                  np.empty((n + BLOCK - 1) // BLOCK))


if numba is not None:
    _smooth = jit(_smooth)
    _block_max = jit(_block_max)
    _simulate = jit(_simulate)
    _transfer = jit(_transfer)
    _row_range = jit(_row_range)
    _smooth_lanes = jit(_smooth_lanes)
    _read_out = jit(_read_out)
    _cr_fix = jit(_cr_fix)
    _column = jit(_column)
    _lane_block = jit(_lane_block)
    _all_columns = jit(_all_columns, parallel=True)
    _readout_columns = jit(_readout_columns, parallel=True)

AVAILABLE = numba is not None


def balanced(chunk: int = CHUNK) -> contextlib.AbstractContextManager[object]:
    """Dynamic hand-out of ``chunk`` iterations (columns, or lane blocks) to the threads of a parallel kernel."""
    return numba.parallel_chunksize(chunk) if numba is not None else contextlib.nullcontext()


def _profiles(prof: np.ndarray) -> np.ndarray:
    """A PCTETAB profile (step, trap) as the kernels read it: (trap, step), the 60 steps used."""
    return np.ascontiguousarray(prof[:TRAIL].T, np.float64)


def readout_compiled(pixi: np.ndarray, fff: np.ndarray, qlev: np.ndarray, fill_charge: np.ndarray,
                     rprof: np.ndarray, cprof: np.ndarray, npar: int) -> np.ndarray:
    """``npar`` sub-steps of :func:`.readout.simulate` on ``pixi`` (rows, columns), bit-identical:
    how the simulator trails a full frame through the 999 traps of a realistic table in seconds."""
    cols = np.ascontiguousarray(pixi.T, dtype=np.float64)
    with balanced():
        _readout_columns(cols, np.ascontiguousarray(fff.T, dtype=np.float64), np.asarray(qlev, np.float64),
                         np.asarray(fill_charge, np.float64), _profiles(rprof), _profiles(cprof), npar)
    return np.ascontiguousarray(cols.T)


def correct_compiled(raz: np.ndarray, fff: np.ndarray, qlev: np.ndarray, fill_charge: np.ndarray,
                     rprof: np.ndarray, cprof: np.ndarray, nfor: int, npar: int, trsh: float,
                     rnoi: float) -> np.ndarray:
    """``rzc`` (rows, columns) float32 from ``raz`` (rows, columns) and ``fff`` (modified in place)."""
    cols_raz = np.ascontiguousarray(raz.T, dtype=np.float64)
    cols_fff = np.ascontiguousarray(fff.T, dtype=np.float64)
    out = np.empty(cols_raz.shape, dtype=np.float32)
    with balanced(max(1, CHUNK // LANES)):
        _all_columns(cols_raz, cols_fff, out, qlev, fill_charge, _profiles(rprof), _profiles(cprof), nfor, npar,
                     float(trsh), float(rnoi))
    fff[:] = cols_fff.T
    return np.ascontiguousarray(out.T)
