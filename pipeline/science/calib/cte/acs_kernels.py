"""calacs's generation-2/3 CTE model (``ctegen2/ctegen2.c``) compiled with numba, one amp at a time,
the columns spread over the cores: read-noise smoothing of the amp (``cteSmoothImage``), the trap
readout of a column (``simulatePixelReadout_v1_2``), the damped inversion with the readout
cosmic-ray fix (``inverseCTEBlur``, ``correctCROverSubtraction``).

Arrays are column-major as in calacs: ``a[column, row]``. The arithmetic is calacs's, operation
for operation (no fast-math: no reassociation, no fused multiply-adds), so results are
bit-identical to acscte. Without numba the same functions run as plain Python (slow, but correct).
"""

from __future__ import annotations

import numpy as np

from pipeline.science.calib.cte.kernels import balanced
from pipeline.science.calib.jit import jit, numba, prange

SMOOTH_ITERATIONS = 100
RN_FRACTION = 0.33
MAX_REDO = 5
CR_FIRST = 10



def _adjust(obs, rsz, adj, rn):  # type: ignore[no-untyped-def]
    """``find_dadjFast`` for every pixel of column ``i`` (one Jacobi sweep: reads ``rsz``)."""
    ncols, nrows = obs.shape
    rn2 = rn * rn
    lim = rn * RN_FRACTION
    nlim = rn * -RN_FRACTION
    for i in prange(ncols):
        for j in range(nrows):
            mval = np.float64(rsz[i, j])
            dval0 = np.float64(obs[i, j]) - mval
            dval0u = dval0
            if dval0u > 1:
                dval0u = 1.0
            elif dval0u < -1:
                dval0u = -1.0
            dval9 = 0.0
            if 0 < i < ncols - 1 and 0 < j < nrows - 1:
                dval9 = np.float64(obs[i, j - 1]) - np.float64(rsz[i, j - 1])
                dval9 = dval9 + np.float64(obs[i, j]) - np.float64(rsz[i, j])
                dval9 = dval9 + np.float64(obs[i, j + 1]) - np.float64(rsz[i, j + 1])
                dval9 = dval9 + np.float64(obs[i - 1, j - 1]) - np.float64(rsz[i - 1, j - 1])
                dval9 = dval9 + np.float64(obs[i - 1, j]) - np.float64(rsz[i - 1, j])
                dval9 = dval9 + np.float64(obs[i - 1, j + 1]) - np.float64(rsz[i - 1, j + 1])
                dval9 = dval9 + np.float64(obs[i + 1, j - 1]) - np.float64(rsz[i + 1, j - 1])
                dval9 = dval9 + np.float64(obs[i + 1, j]) - np.float64(rsz[i + 1, j])
                dval9 = dval9 + np.float64(obs[i + 1, j + 1]) - np.float64(rsz[i + 1, j + 1])
                dval9 = dval9 / 9.0
            dval9u = dval9
            if dval9u > lim:
                dval9u = lim
            elif dval9u < nlim:
                dval9u = nlim
            dmod1 = np.float64(rsz[i, j - 1]) - mval if j > 0 else 0.0
            dmod2 = np.float64(rsz[i, j + 1]) - mval if j < nrows - 1 else 0.0
            dmod1u = dmod1
            if dmod1u > lim:
                dmod1u = lim
            elif dmod1u < nlim:
                dmod1u = nlim
            dmod2u = dmod2
            if dmod2u > lim:
                dmod2u = lim
            elif dmod2u < nlim:
                dmod2u = nlim
            w0 = dval0 * dval0 / (dval0 * dval0 + 4.0 * rn2)
            w9 = dval9 * dval9 / (dval9 * dval9 + 18.0 * rn2)
            w1 = 4 * rn2 / (dmod1 * dmod1 + 4.0 * rn2)
            w2 = 4 * rn2 / (dmod2 * dmod2 + 4.0 * rn2)
            adj[i, j] = np.float32(dval0u * w0 * 0.25 + dval9u * w9 * 0.25 + dmod1u * w1 * 0.25
                                   + dmod2u * w2 * 0.25)


def _apply(obs, rsz, adj, sums, counts):  # type: ignore[no-untyped-def]
    """``rsz += 0.75 adj``, then per column the squares of ``obs - rsz`` where either is > 0.1."""
    ncols, nrows = obs.shape
    for i in prange(ncols):
        s = 0.0
        n = 0.0
        for j in range(nrows):
            r = np.float32(np.float64(rsz[i, j]) + np.float64(adj[i, j]) * 0.75)
            rsz[i, j] = r
            noise = np.float64(np.float32(obs[i, j] - r))
            if abs(np.float64(obs[i, j])) > 0.1 or abs(np.float64(r)) > 0.1:
                s += noise * noise
                n += 1.0
        sums[i] = s
        counts[i] = n


def smooth(obs: np.ndarray, rn: float) -> np.ndarray:
    """``cteSmoothImage`` of a column-major float32 amp: up to 100 sweeps, stopping once the removed
    noise's RMS over the amp reaches ``rn`` (within 1e-5)."""
    rsz = obs.copy()
    if rn < 0.1:
        return rsz
    adj = np.empty_like(obs)
    sums = np.empty(obs.shape[0])
    counts = np.empty(obs.shape[0])
    for _ in range(SMOOTH_ITERATIONS):
        _adjust(obs, rsz, adj, rn)
        _apply(obs, rsz, adj, sums, counts)
        total = 0.0
        n = 0.0
        for k in range(sums.size):  # calacs sums per thread, then adds the partial sums
            total += sums[k]
            n += counts[k]
        if rn - np.sqrt(total / n) < 0.00001:
            break
    return rsz


def _readout(col, traps, drops, qlev, fill, rprof, cprof, ntraps, tlen):  # type: ignore[no-untyped-def]
    """One parallel-transfer sub-step of a column (``simulatePixelReadout_v1_2``), in place.
    ``rprof``/``cprof`` are (trap, step); ``fill[w] = DPDE_W / NPAR``; ``drops[i]`` says whether
    the trap scaling falls at row i."""
    n = col.shape[0]
    pmax = 10.0
    for i in range(n):
        if col[i] > pmax:
            pmax = col[i]
    top = ntraps - 1
    for w in range(ntraps - 1, -1, -1):
        if qlev[w] <= pmax:
            top = w
            break
    for w in range(top, -1, -1):
        q = qlev[w]
        fw = fill[w]
        nt = tlen
        trapped = 0.0
        for i in range(n):
            if drops[i]:
                trapped *= np.float64(traps[i]) / np.float64(traps[i - 1])
            pixel = col[i]
            if pixel >= q:
                add = 0.0
                if nt < tlen:
                    nt += 1
                    add = rprof[w, nt - 1] * trapped + cprof[w, nt - 1] * trapped
                trapped = fw * np.float64(traps[i])
                col[i] = pixel + (add - trapped)
                nt = 0
            elif nt < tlen:
                nt += 1
                col[i] = pixel + rprof[w, nt - 1] * trapped


def _cr_oversubtraction(traps, model, obs, thresh):  # type: ignore[no-untyped-def]
    """``correctCROverSubtraction``: lower the trap scaling by 25 % from the likely readout CR up to
    an over-subtracted pixel (or pair, or triple); True when the column must be redone."""
    n = model.shape[0]
    redo = False
    for i in range(CR_FIRST, n - 2):
        m0, m1, m2 = model[i], model[i + 1], model[i + 2]
        if ((thresh > m0 and thresh > m0 - obs[i])
                or (m0 + m1 < -12.0 and m0 + m1 - obs[i] - obs[i + 1] < -12.0)
                or (m0 + m1 + m2 < -15.0 and m0 + m1 + m2 - obs[i] - obs[i + 1] - obs[i + 2] < -15.0)):
            redo = True
            imax = i
            for ii in range(i - 10, i + 1):
                if model[ii] - obs[ii] > model[imax] - obs[imax]:
                    imax = ii
            for ii in range(imax, i + 1):
                traps[ii] = np.float32(np.float64(traps[ii]) * 0.75)
    return redo


def _column(smoothed, traps, out, qlev, fill, rprof, cprof, ntraps, tlen, nfor, npar, rn2, fixrocr,
            thresh):  # type: ignore[no-untyped-def]
    n = smoothed.shape[0]
    obs = np.empty(n)
    model = np.empty(n)
    temp = np.empty(n)
    drops = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        obs[i] = smoothed[i]
    nredo = 0
    while True:
        for i in range(1, n):
            drops[i] = np.float64(traps[i]) < np.float64(traps[i - 1])
        for i in range(n):
            model[i] = obs[i]
        for _ in range(1, nfor):
            for i in range(n):
                temp[i] = model[i]
            for _ in range(npar):
                _readout(model, traps, drops, qlev, fill, rprof, cprof, ntraps, tlen)
            for i in range(n):
                delta = model[i] - obs[i]
                delta2 = delta * delta
                delta *= delta2 / (delta2 + rn2)
                model[i] = temp[i] - delta
        for i in range(n):
            temp[i] = model[i]
        for _ in range(npar):
            _readout(model, traps, drops, qlev, fill, rprof, cprof, ntraps, tlen)
        for i in range(n):
            model[i] = temp[i] - (model[i] - obs[i])
        redo = _cr_oversubtraction(traps, model, obs, thresh) if fixrocr else False
        nredo += 1
        if not redo or nredo >= MAX_REDO:
            break
    for i in range(n):
        out[i] = np.float32(model[i])


def _all_columns(smoothed, traps, out, qlev, fill, rprof, cprof, ntraps, tlen, nfor, npar, rn2, fixrocr,
                 thresh):  # type: ignore[no-untyped-def]
    for c in prange(smoothed.shape[0]):
        _column(smoothed[c], traps[c], out[c], qlev, fill, rprof, cprof, ntraps, tlen, nfor, npar, rn2, fixrocr,
                thresh)


def _read_columns(cols, traps, qlev, fill, rprof, cprof, ntraps, tlen, npar):  # type: ignore[no-untyped-def]
    """NPAR readout sub-steps of every column in place: the forward model the inversion undoes."""
    n = cols.shape[1]
    for c in prange(cols.shape[0]):
        drops = np.zeros(n, dtype=np.bool_)
        for i in range(1, n):
            drops[i] = np.float64(traps[c, i]) < np.float64(traps[c, i - 1])
        for _ in range(npar):
            _readout(cols[c], traps[c], drops, qlev, fill, rprof, cprof, ntraps, tlen)


if numba is not None:
    _adjust = jit(_adjust, parallel=True)
    _apply = jit(_apply, parallel=True)
    _readout = jit(_readout)
    _cr_oversubtraction = jit(_cr_oversubtraction)
    _column = jit(_column)
    _all_columns = jit(_all_columns, parallel=True)
    _read_columns = jit(_read_columns, parallel=True)


def invert(smoothed: np.ndarray, traps: np.ndarray, qlev: np.ndarray, dpde: np.ndarray, rprof: np.ndarray,
           cprof: np.ndarray, *, ntraps: int, tlen: int, nfor: int, npar: int, rn: float, fixrocr: int,
           thresh: float) -> np.ndarray:
    """``inverseCTEBlur`` of a column-major float32 amp; ``traps`` (float32, same shape) is lowered
    in place where readout cosmic rays were over-subtracted. Returns the corrected amp (float32)."""
    out = np.empty_like(smoothed)
    fill = dpde / npar
    r = np.ascontiguousarray(rprof[:tlen].T, dtype=np.float64)
    c = np.ascontiguousarray(cprof[:tlen].T, dtype=np.float64)
    with balanced():
        _all_columns(smoothed, traps, out, qlev, fill, r, c, ntraps, tlen, nfor, npar, rn * rn, fixrocr, float(thresh))
    return out


def read_out(charge: np.ndarray, traps: np.ndarray, qlev: np.ndarray, dpde: np.ndarray, rprof: np.ndarray,
             cprof: np.ndarray, *, ntraps: int, tlen: int, npar: int) -> np.ndarray:
    """Column-major charge (e-, float64 copy) after NPAR sub-steps of ``simulatePixelReadout_v1_2``:
    how the simulator puts the trails in that ``invert`` takes out."""
    out = np.array(charge, dtype=np.float64, order="C")
    r = np.ascontiguousarray(rprof[:tlen].T, dtype=np.float64)
    c = np.ascontiguousarray(cprof[:tlen].T, dtype=np.float64)
    with balanced():
        _read_columns(out, traps, qlev, dpde / npar, r, c, ntraps, tlen, npar)
    return out
