"""CRCORR: the up-the-ramp fit with cosmic-ray and spike rejection (``cridcalc.c``).

Per pixel: intervals between flagged cosmic-ray jumps are fitted with equal weights, tested for
spikes, then jumps, then a bad first sample, iterating until nothing new is rejected; the final
slopes come from optimum-weighted fits combined by inverse variance. Pixels whose samples are all
good and whose first fit shows no jump large enough to trigger any test take one vectorised
optimum fit; the rest go through :mod:`.fitsamps`, calwf3's per-pixel loop compiled with numba.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.science.calib.ir.fitsamps import (
    DATAREJECT,
    HIGH_CURVATURE,
    SATPIXEL,
    SPIKE_THRESH,
    UNSTABLE,
    ZEROSIG,
    fit_pixels,
)
from pipeline.science.calib.ir.linfit import dark_model, linfit

F32 = np.float32
F64 = np.float64
#: Pixels per block of the vectorised shortcut (bounds its temporaries to a few tens of MB).
CHUNK = 65536


# ------------------------------------------------------------------------------------ the image


@dataclass
class RampResult:
    """CRCORR output inside R (flattened pixels) and the per-read flags for ``_ima``."""

    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    samp: np.ndarray
    time: np.ndarray
    flags: np.ndarray   # (N, P) per-sample flags after post-processing
    n_slow: int


def fit_ramps(sci: np.ndarray, err: np.ndarray, dq: np.ndarray, time: np.ndarray, *, rates: bool,
              zsig_done: bool, sampzero: float, thresh: float, ign: int, gain: float) -> RampResult:
    """Fit every pixel: arrays are (N, P) in time order (index 0 = zero read), SCI/ERR as stored in
    the reads (rates after UNITCORR), DQ with ZEROSIG still present."""
    nsamp, npix = sci.shape
    with np.errstate(invalid="ignore", over="ignore"):
        s = sci * time if rates else sci.copy()
        e = err * time if rates else err.copy()
    d = dq & np.uint16(0xFFFF ^ ZEROSIG)
    dg = dark_model(time, gain)
    out_dq = np.bitwise_or.reduce(d, axis=0)
    out = RampResult(np.zeros(npix, F32), np.zeros(npix, F32), out_dq, np.zeros(npix, np.int16),
                     np.zeros(npix, F32), np.zeros((nsamp, npix), np.uint16), 0)
    thr = min(F32(thresh), F32(SPIKE_THRESH))
    first_sat = (dq[1] & SATPIXEL) != 0 if (zsig_done and nsamp > 1) else np.zeros(npix, bool)
    todo = ~first_sat
    clean = todo & np.all(d[1:] == 0, axis=0) if nsamp >= 3 else np.zeros(npix, bool)
    clean_idx = np.flatnonzero(clean)
    for lo in range(0, clean_idx.size, CHUNK):
        _fit_clean(clean_idx[lo:lo + CHUNK], s, e, time, dg, thr, gain, out)
    todo[clean_idx] = out.samp[clean_idx] == 0   # a clean pixel the shortcut could not decide
    fs = np.flatnonzero(first_sat)
    out.sci[fs], out.err[fs], out.samp[fs] = sci[0, fs], err[0, fs], 1
    out.time[fs] = F32(sampzero)
    out.dq[fs] = d[0, fs]
    slow = np.flatnonzero(todo)
    out.n_slow = int(slow.size)
    slow_dq = d[:, slow].T.astype(np.int64)
    out.sci[slow], out.err[slow], out.samp[slow], out.time[slow] = fit_pixels(
        s[:, slow].T, e[:, slow].T, slow_dq, time[:, slow].T, dg[:, slow].T, thresh, ign, gain)
    out.flags[:, slow] = slow_dq.T
    if not rates:   # back to counts; the pixels saturated from read 1 keep the zero read's value
        fitted = ~first_sat
        out.sci[fitted] *= out.time[fitted]
        out.err[fitted] *= out.time[fitted]
    _post_process(out, ~first_sat)
    return out


def _fit_clean(idx: np.ndarray, s: np.ndarray, e: np.ndarray, time: np.ndarray, dg: np.ndarray, thr: np.float32,
               gain: float, out: RampResult) -> None:
    """Pixels whose samples are all good: if no residual jump of the equal-weight fit reaches the
    smaller of the CR and spike thresholds, none of calwf3's tests can fire and the answer is one
    optimum-weight fit over every sample (SAMP = N, TIME from the zero read)."""
    xs, ys, es, gs = time[1:, idx], s[1:, idx], e[1:, idx], dg[1:, idx]
    eq = linfit(False, xs, ys, es, gs, gain)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.where(es != 0, (ys - (eq.a + eq.b * xs)) / np.where(es != 0, es, F32(1)), F32(0.0))
    jumps = np.any(np.abs(np.diff(diff, axis=0)) >= thr, axis=0)
    opt = linfit(True, xs, ys, es, gs, gain)
    sig2 = opt.sigb * opt.sigb
    ok = ~jumps & (sig2 != 0)
    good = idx[ok]
    sig2 = sig2[ok]
    wts = (0.0 + 1.0 / sig2.astype(F64)).astype(F32)
    total = F32(0.0) + opt.b[ok] / sig2
    out.sci[good] = total / wts
    out.err[good] = np.sqrt((F32(1.0) / wts).astype(F64)).astype(F32)
    out.samp[good] = time.shape[0]
    out.time[good] = (F32(0.0) + (time[1, good] - time[0, good])) + (time[-1, good] - time[1, good])


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
