"""NLINCORR's per-pixel polynomial compiled with numba (``wf3ir/nlincorr.c``).

Why compiled: numpy evaluated the polynomial with a full-frame float64 temporary per coefficient
and per read, and a boolean mask per condition; the loop touches each pixel once. The arithmetic
is calwf3's: the correction factor summed in double and rounded to float after every term,
``pow()`` for the powers above one (no fast-math, so no reassociation or fused multiply-adds).
"""

from __future__ import annotations

import numpy as np

from pipeline.science.calib.jit import jit, numba, prange

SATPIXEL, ZEROSIG = 256, 2048


def _read_row(y, sci, dq, zsig, zsig_dq, use_zsig, coef, node, nldq):  # type: ignore[no-untyped-def]
    """Row ``y`` of :func:`_read`; returns how many of its pixels went above NODE."""
    nx = sci.shape[1]
    ncoef = coef.shape[0]
    nsat = 0
    for x in range(nx):
        d = dq[y, x]
        s = sci[y, x]
        if use_zsig:
            s = s + zsig[y, x]
            d |= zsig_dq[y, x] & ZEROSIG
        d |= nldq[y, x]
        if (d & SATPIXEL) == 0:
            if s <= node[y, x]:
                s64 = np.float64(s)
                c = np.float32(1.0)
                for j in range(ncoef):
                    cj = np.float64(coef[j, y, x])
                    if j == 0:
                        term = cj
                    elif j == 1:   # x**1 is exact: no pow() for it, as calwf3's compiler folds it
                        term = cj * s64
                    else:
                        term = cj * s64 ** np.float64(j)
                    c = np.float32(np.float64(c) + term)
                corrected = s * c
                if use_zsig:
                    corrected = corrected - zsig[y, x]
                sci[y, x] = corrected
            else:
                d |= SATPIXEL
                nsat += 1
        dq[y, x] = d
    return nsat


def _read(sci, dq, zsig, zsig_dq, use_zsig, coef, node, nldq):  # type: ignore[no-untyped-def]
    """One read's science region in place, rows spread over numba's threads: ``s = read (+ zsig)``;
    where not saturated and ``s <= NODE``, ``s * (1 + sum_k c_k s^k) (- zsig)``; above NODE flagged
    256. Returns that count."""
    nsat = 0
    for y in prange(sci.shape[0]):
        nsat += _read_row(y, sci, dq, zsig, zsig_dq, use_zsig, coef, node, nldq)
    return nsat


if numba is not None:
    _read_row = jit(_read_row)
    _read = jit(_read, parallel=True)


def correct_read(sci: np.ndarray, dq: np.ndarray, zsig: np.ndarray | None, zsig_dq: np.ndarray | None,
                 coef: np.ndarray, node: np.ndarray, nldq: np.ndarray) -> int:
    """NLINCORR of one read's region (views updated in place; ``zsig`` None for the zero read or
    without ZSIGCORR); returns how many pixels went above NODE."""
    use_zsig = zsig is not None and zsig_dq is not None
    z = zsig if zsig is not None else sci
    zdq = zsig_dq if zsig_dq is not None else dq
    return int(_read(sci, dq, z, zdq, use_zsig, coef, node, nldq))
