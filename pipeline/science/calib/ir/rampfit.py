"""CRCORR: the up-the-ramp fit with cosmic-ray and spike rejection (``cridcalc.c``).

Per pixel: intervals between flagged cosmic-ray jumps are fitted with equal weights, tested for
spikes, then jumps, then a bad first sample, iterating until nothing new is rejected; the final
slopes come from optimum-weighted fits combined by inverse variance. The loop is calwf3's, compiled
with numba in :mod:`.fitsamps`; here the image-level call and its result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.science.calib.ir.fitsamps import fit_image


@dataclass
class RampResult:
    """CRCORR output for the pixels given (Y, X) and the per-read flags (N, Y, X) for ``_ima``."""

    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    samp: np.ndarray
    time: np.ndarray
    flags: np.ndarray   # per-sample 8192 / 1024 / 16384 after post-processing


def fit_ramps(sci: np.ndarray, err: np.ndarray, dq: np.ndarray, time: np.ndarray, *, rates: bool,
              zsig_done: bool, sampzero: float, thresh: float, ign: int, gain: float) -> RampResult:
    """Fit every pixel: arrays are (N, Y, X) in time order (index 0 = zero read), SCI/ERR as stored
    in the reads (rates after UNITCORR; the result is in the same unit), DQ with ZEROSIG still present."""
    return RampResult(*fit_image(sci, err, dq, time, in_rates=rates, out_counts=not rates, zsig_done=zsig_done,
                                 sampzero=sampzero, thresh=thresh, ign=ign, gain=gain))
