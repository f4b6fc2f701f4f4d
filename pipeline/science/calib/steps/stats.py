"""Statistics keywords (``dostat.c``) over pixels with no serious DQ bit and ERR > 0.

SCI header: NGOODPIX, GOODMIN, GOODMAX, GOODMEAN, SNRMIN, SNRMAX, SNRMEAN; ERR header: NGOODPIX,
GOODMIN, GOODMAX, GOODMEAN (of ERR). Sums in double, values stored as float32.
"""

from __future__ import annotations

import numpy as np

from pipeline.science.calib.chip import Chip
from pipeline.science.calib.numerics import row_blocks


def _f(x: float) -> float:
    return float(np.float32(x))  # PutKeyFlt stores float32


def compute_stats(chip: Chip) -> None:
    """One pass over blocks of rows (masks and ratios stay in cache); sums accumulate in double."""
    sci, err, dq = chip.sci, chip.err, chip.dq
    serious = np.uint16(chip.sdqflags)
    inf = np.float32(np.inf)
    n = 0
    lo = {"sci": inf, "err": inf, "snr": inf}
    hi = {"sci": -inf, "err": -inf, "snr": -inf}
    total = {"sci": 0.0, "err": 0.0, "snr": 0.0}
    for rows in row_blocks(sci.shape[0]):
        e = err[rows]
        good = (dq[rows] & serious) == 0
        good &= e > 0
        k = int(np.count_nonzero(good))
        if k == 0:
            continue
        n += k
        s = sci[rows]
        snr = np.divide(s, e, where=good, out=np.zeros(s.shape, np.float32))
        for name, arr in (("sci", s), ("err", e), ("snr", snr)):
            lo[name] = min(lo[name], np.min(arr, where=good, initial=inf))
            hi[name] = max(hi[name], np.max(arr, where=good, initial=-inf))
            total[name] += float(np.sum(arr, where=good, dtype=np.float64))
    chip.sci_keywords["NGOODPIX"] = n
    chip.err_keywords["NGOODPIX"] = n
    if n == 0:
        return
    chip.sci_keywords.update(GOODMIN=_f(lo["sci"]), GOODMAX=_f(hi["sci"]), GOODMEAN=_f(total["sci"] / n),
                             SNRMIN=_f(lo["snr"]), SNRMAX=_f(hi["snr"]), SNRMEAN=_f(total["snr"] / n))
    chip.err_keywords.update(GOODMIN=_f(lo["err"]), GOODMAX=_f(hi["err"]), GOODMEAN=_f(total["err"] / n))


def finish_imset(chip: Chip) -> Chip:
    """The end of ACS2D/WF32D for one imset: statistics, then every computed keyword into the SCI
    and ERR headers."""
    compute_stats(chip)
    chip.imset.sci_header.update(chip.sci_keywords)
    chip.imset.err_header.update(chip.err_keywords)
    return chip
