"""CRCORR: the up-the-ramp fit with cosmic-ray and spike rejection (``cridcalc.c``).

Per pixel: intervals between flagged cosmic-ray jumps are fitted with equal weights, tested for
spikes, then jumps, then a bad first sample, iterating until nothing new is rejected; the final
slopes come from optimum-weighted fits combined by inverse variance: :mod:`.fitsamps`, calwf3's
per-pixel loop compiled with numba. Here: the image-level set-up and the flags' post-processing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.science.calib.ir.fitsamps import DATAREJECT, HIGH_CURVATURE, SATPIXEL, UNSTABLE, ZEROSIG, fit_pixels

F32 = np.float32


@dataclass
class RampResult:
    """CRCORR output inside R (flattened pixels) and the per-read flags for ``_ima``."""

    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    samp: np.ndarray
    time: np.ndarray
    flags: np.ndarray   # (N, P) per-sample flags after post-processing


def fit_ramps(sci: np.ndarray, err: np.ndarray, dq: np.ndarray, time: np.ndarray, *, rates: bool,
              zsig_done: bool, sampzero: float, thresh: float, ign: int, gain: float) -> RampResult:
    """Fit every pixel: arrays are (N, P) in time order (index 0 = zero read), SCI/ERR as stored in
    the reads (rates after UNITCORR), DQ with ZEROSIG still present."""
    nsamp, npix = sci.shape
    with np.errstate(invalid="ignore", over="ignore"):
        s = sci * time if rates else sci.copy()
        e = err * time if rates else err.copy()
    d = dq & np.uint16(0xFFFF ^ ZEROSIG)
    first_sat = (dq[1] & SATPIXEL) != 0 if (zsig_done and nsamp > 1) else np.zeros(npix, bool)
    fits, flags = fit_pixels(s, e, d, time, np.flatnonzero(~first_sat), thresh, ign, gain)
    out = RampResult(fits[0], fits[1], np.bitwise_or.reduce(d, axis=0), fits[2].astype(np.int16), fits[3], flags)
    fs = np.flatnonzero(first_sat)
    out.sci[fs], out.err[fs], out.samp[fs] = sci[0, fs], err[0, fs], 1
    out.time[fs] = F32(sampzero)
    out.dq[fs] = d[0, fs]
    if not rates:   # back to counts; the pixels saturated from read 1 keep the zero read's value
        fitted = ~first_sat
        out.sci[fitted] *= out.time[fitted]
        out.err[fitted] *= out.time[fitted]
    _post_process(out, ~first_sat)
    return out


def _post_process(out: RampResult, fitted: np.ndarray) -> None:
    """Partial saturation leaves the output DQ of fitted pixels (those saturated from the first
    read keep the zero read's DQ); a jump flags every later sample; too many jumps flag every
    sample (HIGH_CURVATURE) and the output UNSTABLE."""
    flags = out.flags
    out.dq[fitted] -= out.dq[fitted] & SATPIXEL
    for k in range(flags.shape[0] - 1):
        flags[k + 1] |= flags[k] & DATAREJECT
    curved = np.any(flags[:-1] & HIGH_CURVATURE, axis=0)
    flags[:, curved] = (flags[:, curved] | HIGH_CURVATURE) & (0xFFFF ^ DATAREJECT)
    unstable = (flags[-1] & HIGH_CURVATURE) != 0
    out.dq[unstable] = (out.dq[unstable] | UNSTABLE) & (0xFFFF ^ DATAREJECT)
