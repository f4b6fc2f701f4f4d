"""Read-noise smoothing of RAZ columns (``rm_rnZ_colj``), all columns at once.

The smoothest column consistent with the observed one plus read noise: small pixel-to-pixel
wiggles (below a growing threshold RNN) are moved into a noise image ``rnz`` in steps of at most
RNOI/10, until the noise removed reaches RNOI. Columns stop independently.
"""

from __future__ import annotations

import numpy as np

FIRST, LAST = 2, 2047          # 0-based rows the smoothing may touch (plus one either side)
NIT_MAX = 298


def row_range(chg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column: first and last 0-based row in 2..2047 with a positive value (else 2047, 2)."""
    positive = chg[FIRST:LAST + 1] > 0
    anyp = positive.any(axis=0)
    j1 = np.where(anyp, FIRST + np.argmax(positive, axis=0), LAST)
    j2 = np.where(anyp, LAST - np.argmax(positive[::-1], axis=0), FIRST)
    return j1, j2


def smooth(chg: np.ndarray, rnoi: float) -> np.ndarray:
    """``rsz`` for a (rows, columns) float64 array ``chg``; ``rnoi`` is PCTERNOI (float32 value)."""
    rsz = chg.copy()
    j1, j2 = row_range(chg)
    rows = np.arange(FIRST, LAST + 1)[:, None]
    cols = np.flatnonzero(j1 <= j2)
    if cols.size == 0:
        return rsz
    rnoi = float(np.float32(rnoi))
    clip = rnoi / 5.0
    # work on rows 1..2048 of the columns still iterating; index 0 of the block is row 1
    c = chg[1:LAST + 2, cols]
    r = c.copy()
    rnz = np.zeros_like(c)
    inside = (rows >= j1[cols]) & (rows <= j2[cols])           # rows 2..2047 of the block
    nit = 1
    while nit <= NIT_MAX and cols.size:
        rnn = rnoi * (1.0 + 5.0 * nit / 299.0)
        dd = r[1:-1] - (r[2:] + r[:-2]) / 2.0
        flag = inside & (np.abs(dd) < rnn)
        dd = np.where(flag, np.clip(dd, -clip, clip), 0.0)
        q = 0.25 * dd
        # the updates land in ascending j: on row j first -dd(j-1)/4, then +dd(j)/2, then -dd(j+1)/4
        rnz[2:] -= q
        rnz[1:-1] += 0.5 * dd
        rnz[:-2] -= q
        np.subtract(c[1:-1], rnz[1:-1], out=r[1:-1], where=inside)
        num = np.where(inside, rnz[1:-1] * rnz[1:-1], 0.0).sum(axis=0)
        den = flag.sum(axis=0).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            rnu = np.sqrt(num / den)
        stop = rnu > rnoi
        if stop.any():
            done = cols[stop]
            rsz[1:LAST + 2, done] = r[:, stop]
            keep = ~stop
            cols, c, r, rnz, inside = cols[keep], c[:, keep], r[:, keep], rnz[:, keep], inside[:, keep]
        nit += 1
    if cols.size:
        rsz[1:LAST + 2, cols] = r
    return rsz
