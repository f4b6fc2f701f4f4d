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
    sci_kw, err_kw = image_stats(chip.sci, chip.err, chip.dq, chip.sdqflags)
    chip.sci_keywords.update(sci_kw)
    chip.err_keywords.update(err_kw)


def _extremes(arr: np.ndarray, good: np.ndarray, inf: np.float32) -> tuple[np.float32, np.float32]:
    """Min and max of ``arr`` where ``good`` (at least one): the good values gathered once, then
    numpy's vectorised reductions, about 2.5x faster than the masked ones. A minimum or maximum is
    one value whatever the order, except that -0.0 and 0.0 compare equal: a zero result is taken
    again from the masked reduction, so the keyword's sign is the one it always was."""
    kept = arr[good]
    low, high = kept.min(), kept.max()
    if low == 0:
        low = np.min(arr, where=good, initial=inf)
    if high == 0:
        high = np.max(arr, where=good, initial=-inf)
    return low, high


def image_stats(sci: np.ndarray, err: np.ndarray, dq: np.ndarray, sdqflags: int) -> tuple[dict, dict]:
    """(SCI, ERR) header keywords. One pass over blocks of rows (masks and ratios stay in cache);
    sums accumulate in double."""
    serious = np.uint16(sdqflags)
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
            low, high = _extremes(arr, good, inf)
            lo[name] = min(lo[name], low)
            hi[name] = max(hi[name], high)
            total[name] += float(np.sum(arr, where=good, dtype=np.float64))
    sci_kw: dict[str, object] = {"NGOODPIX": n}
    err_kw: dict[str, object] = {"NGOODPIX": n}
    if n:
        sci_kw.update(GOODMIN=_f(lo["sci"]), GOODMAX=_f(hi["sci"]), GOODMEAN=_f(total["sci"] / n),
                      SNRMIN=_f(lo["snr"]), SNRMAX=_f(hi["snr"]), SNRMEAN=_f(total["snr"] / n))
        err_kw.update(GOODMIN=_f(lo["err"]), GOODMAX=_f(hi["err"]), GOODMEAN=_f(total["err"] / n))
    return sci_kw, err_kw


def finish_imset(chip: Chip) -> Chip:
    """The end of ACS2D/WF32D for one imset: statistics, then every computed keyword into the SCI
    and ERR headers."""
    compute_stats(chip)
    return write_keywords(chip)


def write_keywords(chip: Chip) -> Chip:
    """Every computed keyword into the imset's SCI and ERR headers."""
    chip.imset.sci_header.update(chip.sci_keywords)
    chip.imset.err_header.update(chip.err_keywords)
    return chip
