"""PCTERNOI: the read-noise level estimated from the RAZ image in electrons (``find_raz2rnoival``).

Each science pixel is compared with the mean of its 8 neighbours; the narrowest histogram window
holding 75 % of those differences gives the noise. Vectorised over all columns at once.
"""

from __future__ import annotations

import numpy as np

from pipeline.science.calib.cte.raz import AMP_COLS

NBINS = 1001
DEFAULT = 9.75
RANGE = (3.75, 9.75)


def _bins(values: np.ndarray) -> np.ndarray:
    """``(int)(501 + 4.5*v + 0.5)`` (truncation toward zero), clipped to 1..1001."""
    idx = np.trunc(501.0 + 4.5 * values.astype(np.float64) + 0.5)
    return np.clip(idx, 1, NBINS).astype(np.int64)


def _narrowest(hist: np.ndarray) -> tuple[int, int]:
    """Smallest ih < iih <= 1000 with cum[iih] - cum[ih] > 0.75 total (ties: smallest ih); bins 1
    and 1001 are left out of the cumulative sums. ``hist`` is indexed by bin number (0 unused)."""
    h = hist.astype(np.int64).copy()
    h[1] = 0
    h[NBINS] = 0
    cum = np.cumsum(h)
    need = 0.75 * cum[-1]
    for width in range(1, NBINS):
        diff = cum[1 + width:NBINS] - cum[1:NBINS - width]
        hit = np.flatnonzero(diff > need)
        if hit.size:
            ih = 1 + int(hit[0])
            return ih, ih + width
    return 1, NBINS - 1


def estimate(raz: np.ndarray) -> float:
    """The PCTERNOI value (float32) for a RAZ image in e- (float32, 2070 x 8412)."""
    ncols = raz.shape[1]
    cols = np.arange(2, ncols + 1)                        # 1-based columns 2..8412 ...
    local = cols - ((cols - 1) // AMP_COLS) * AMP_COLS
    cols = cols[(local > 25) & (local < 2072)] - 1        # ... whose block column is science (0-based)
    rows = np.arange(1, 2047)                             # 0-based rows of 1-based j = 2..2047
    positive = raz[1:2047][:, cols] > 0
    anyp = positive.any(axis=0)
    j1 = np.where(anyp, rows[np.argmax(positive, axis=0)] + 1, 2047)  # 1-based
    j2 = np.where(anyp, rows[positive.shape[0] - 1 - np.argmax(positive[::-1], axis=0)] + 1, 2)
    # 8-neighbour sum in float, in calwf3's order; row index r is the 0-based row of 1-based j = r + 1
    r = slice(1, 2047)
    nb = [raz[2:2048, cols - 1], raz[2:2048, cols], raz[2:2048, cols + 1], raz[r, cols - 1], raz[r, cols + 1],
          raz[0:2046, cols - 1], raz[0:2046, cols], raz[0:2046, cols + 1]]
    s = nb[0].astype(np.float32)
    for term in nb[1:]:
        s = s + term
    b = (s.astype(np.float64) / 8.0).astype(np.float32)
    pix = raz[r, cols]
    d = pix - b
    jrow = (rows + 1)[:, None]                            # 1-based j of each row of the block
    valid = (jrow >= j1[None, :]) & (jrow <= j2[None, :])
    noise = np.bincount(_bins(d[valid]), minlength=NBINS + 1)
    vhist = np.bincount(_bins(pix[valid]), minlength=NBINS + 1)
    ih, iih = _narrowest(noise)
    idmin = iih - ih
    iv1, iv2 = _narrowest(vhist)
    bins = np.arange(iv1, iv2 + 1)
    count = int(vhist[iv1:iv2 + 1].sum())
    if count == 0 or int((vhist[iv1:iv2 + 1] * (bins - 501)).sum()) == 0:
        return DEFAULT
    rnoi = float(np.float32(idmin / 2.30 / 4.5 / np.sqrt(1.125)))
    return min(max(rnoi, RANGE[0]), RANGE[1])
