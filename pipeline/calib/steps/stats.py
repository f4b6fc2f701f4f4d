"""Statistics keywords (``dostat.c``) over pixels with no serious DQ bit and ERR > 0.

SCI header: NGOODPIX, GOODMIN, GOODMAX, GOODMEAN, SNRMIN, SNRMAX, SNRMEAN; ERR header: NGOODPIX,
GOODMIN, GOODMAX, GOODMEAN (of ERR). Sums in double, values stored as float32.
"""

from __future__ import annotations

import numpy as np

from pipeline.calib.chip import Chip


def compute_stats(chip: Chip) -> None:
    good = (chip.dq & np.uint16(chip.sdqflags)) == 0
    good &= chip.err > 0
    n = int(np.count_nonzero(good))
    chip.sci_keywords["NGOODPIX"] = n
    chip.err_keywords["NGOODPIX"] = n
    if n == 0:
        return
    sci = chip.sci[good].astype(np.float64)
    err = chip.err[good].astype(np.float64)
    snr = sci / err
    f = lambda x: float(np.float32(x))  # noqa: E731 - PutKeyFlt stores float32
    chip.sci_keywords.update(GOODMIN=f(sci.min()), GOODMAX=f(sci.max()), GOODMEAN=f(sci.mean()),
                             SNRMIN=f(snr.min()), SNRMAX=f(snr.max()), SNRMEAN=f(snr.mean()))
    chip.err_keywords.update(GOODMIN=f(err.min()), GOODMAX=f(err.max()), GOODMEAN=f(err.mean()))
