"""CRCORR: the up-the-ramp fit with cosmic-ray and spike rejection (``cridcalc.c``).

Per pixel: intervals between flagged cosmic-ray jumps are fitted with equal weights, tested for
spikes, then jumps, then a bad first sample, iterating until nothing new is rejected; the final
slopes come from optimum-weighted fits combined by inverse variance. Pixels whose samples are all
good and whose first fit shows no jump large enough to trigger any test take one vectorised
optimum fit; the rest go through :func:`fitsamps`, a per-pixel port with calwf3's buffers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.science.calib.ir.linfit import dark_model, linfit, linfit_one

F32 = np.float32
F64 = np.float64
MAX_CRS = 4
#: Pixels per block of the vectorised shortcut (bounds its temporaries to a few tens of MB).
CHUNK = 65536
SPIKE_THRESH = 6.0
SATPIXEL, ZEROSIG, DATAREJECT, SPIKE, HIGH_CURVATURE = 256, 2048, 8192, 1024, 16384
DETECTORPROB, UNSTABLE = 4, 32


@dataclass
class PixelFit:
    sci: np.float32
    err: np.float32
    samp: int
    time: np.float32


def _rej_spikes(tdq: list[int], diff: list[np.float32], n: int, ign: int) -> int | None:
    """A sample far above both neighbours' residuals; the neighbour after the last sample is the
    interval buffer's stale element, as in calwf3."""
    bad = ign | DATAREJECT | SPIKE
    max_diff, found = F32(0.0), None
    for k in range(2, n):
        quiet = (tdq[k - 1] & bad) == 0 and (tdq[k] & bad) == 0 and (tdq[k + 1] & bad) == 0
        if (quiet and diff[k - 1] - diff[k - 2] > SPIKE_THRESH and diff[k - 1] - diff[k] > SPIKE_THRESH
                and diff[k - 2] < 0 and diff[k] < 0 and abs(diff[k - 1]) > max_diff):
            max_diff, found = diff[k - 1], k - 1
    return found


def _rej_crs(tdq: list[int], diff: list[np.float32], n: int, thresh: np.float32, ign: int) -> int | None:
    """The largest jump (either sign) in the residuals above the threshold."""
    bad = ign | DATAREJECT
    prev, max_diff, index = F32(0.0), F32(0.0), None
    for k in range(1, n):
        if (tdq[k - 1] & bad) == 0:
            prev = diff[k - 1]
        if (tdq[k] & bad) == 0:
            current = F32(abs(diff[k] - prev))
            if current > thresh:
                if current > max_diff:
                    max_diff, index = current, k
                prev = diff[k]
    return index if max_diff != 0 else None


def _rej_first(tdq: list[int], diff: list[np.float32], thresh: np.float32, ign: int) -> bool:
    bad = ign | DATAREJECT | SPIKE
    return (tdq[0] & bad) == 0 and (tdq[1] & bad) == 0 and F32(abs(diff[0] - diff[1])) > thresh


class _Buffers:
    """calwf3's per-pixel interval buffers (``tsci[interval][sample]`` ...), zeroed per pixel and
    reused between iterations, so an element past an interval's end holds an older value."""

    def __init__(self, nsamp: int) -> None:
        rows = MAX_CRS + 1   # calwf3's size: at most MAX_CRS - 1 jumps stay flagged, so <= MAX_CRS intervals
        self.sci = [[F32(0.0)] * nsamp for _ in range(rows)]
        self.err = [[F32(0.0)] * nsamp for _ in range(rows)]
        self.time = [[F32(0.0)] * nsamp for _ in range(rows)]
        self.dg = [[F32(0.0)] * nsamp for _ in range(rows)]
        self.dq = [[0] * nsamp for _ in range(rows)]
        self.lookup = [[0] * nsamp for _ in range(rows)]
        self.count = [0] * rows

    def put(self, i: int, s: int, k: int, sci, err, time, dg, dq) -> None:  # type: ignore[no-untyped-def]
        self.sci[i][s], self.err[i][s], self.time[i][s] = sci[k], err[k], time[k]
        self.dg[i][s], self.dq[i][s], self.lookup[i][s] = dg[k], dq[k], k


def fitsamps(sci: list[np.float32], err: list[np.float32], dq: list[int], time: list[np.float32],
             dg: list[np.float32], thresh: float, ign: int, gain: float) -> PixelFit:
    """One pixel's ramp (index 0 = zero read, never a sample); ``dq`` is updated in place with
    8192 (jump), 1024 (spike) and 16384 (too many jumps) as calwf3 flags the samples."""
    nsamp = len(sci)
    thr = F32(thresh)
    buf = _Buffers(nsamp)
    diff = [F32(0.0)] * nsamp
    a = [F32(0.0)] * (nsamp + 1)
    b = [F32(0.0)] * (nsamp + 1)
    sigb = [F32(0.0)] * (nsamp + 1)
    state = {"crs": 0, "found_error": False, "no_samples": False, "interval": 0}

    def build(pass2: bool) -> bool:
        interval = sample = 0
        for k in range(1, nsamp):
            d = dq[k]
            take = (d & (ign | DATAREJECT)) == 0 if pass2 else d == 0
            jump = (d & DATAREJECT) != 0 if pass2 else d == DATAREJECT
            if take:
                buf.put(interval, sample, k, sci, err, time, dg, dq)
                sample += 1
            elif jump:
                buf.count[interval] = sample
                interval += 1
                sample = 0
                buf.put(interval, sample, k, sci, err, time, dg, dq)
                sample += 1
        if sample < 1:
            return False
        if buf.dq[interval][sample - 1] == DATAREJECT:
            interval -= 1
        else:
            buf.count[interval] = sample
        state["interval"] = interval
        return True

    def iterate(pass2: bool) -> None:
        nrej = 1
        while nrej > 0:
            nrej = 0
            if not build(pass2):
                state["no_samples"] = True
                return
            idx = 0
            while idx <= state["interval"] and nrej == 0:
                n = buf.count[idx]
                if n > 1:
                    ts, te, tt = buf.sci[idx][:n], buf.err[idx][:n], buf.time[idx][:n]
                    a[idx], b[idx], _ = linfit_one(False, tt, ts, te, buf.dg[idx][:n], gain)
                    for k in range(n):
                        good = (buf.dq[idx][k] & ign) == 0 if pass2 else buf.dq[idx][k] == 0
                        if te[k] != 0 and good:
                            diff[k] = F32(F32(ts[k] - F32(a[idx] + F32(b[idx] * tt[k]))) / te[k])
                        else:
                            diff[k] = F32(0.0)
                    rej = _rej_spikes(buf.dq[idx], diff, n, ign)
                    if rej is not None:
                        dq[buf.lookup[idx][rej]] |= SPIKE
                        nrej = 1
                    else:
                        rej = _rej_crs(buf.dq[idx], diff, n, thr, ign)
                        if rej is not None:
                            nrej = 1
                            k = buf.lookup[idx][rej]
                            dq[k] |= DATAREJECT
                            state["crs"] += 1
                            if state["crs"] >= MAX_CRS:
                                state["found_error"] = True
                                dq[k] = (dq[k] - DATAREJECT) | HIGH_CURVATURE
                                return
                        elif _rej_first(buf.dq[idx], diff, thr, ign):
                            dq[buf.lookup[idx][0]] |= SPIKE
                            nrej = 1
                elif n == 1:
                    lone_cr = (buf.dq[idx][0] & DATAREJECT) != 0 if pass2 else buf.dq[idx][0] == DATAREJECT
                    if (lone_cr and buf.time[idx][0] != 0) if pass2 else not lone_cr:
                        b[idx] = F32(buf.sci[idx][0] / buf.time[idx][0])
                        sigb[idx] = F32(buf.err[idx][0] / buf.time[idx][0])
                idx += 1

    iterate(False)
    if state["no_samples"]:
        state["no_samples"] = False
        state["crs"] = 0
        iterate(True)
    if state["no_samples"]:
        return PixelFit(F32(0.0), F32(1e5), 0, F32(0.0))
    int_time, sumwts, total = F32(0.0), F32(0.0), F32(0.0)
    if not state["found_error"]:
        for idx in range(state["interval"] + 1):
            n = buf.count[idx]
            if n > 1:
                if idx == 0:
                    k = buf.lookup[idx][0]
                    int_time = F32(int_time + F32(time[k] - time[k - 1]))
                tt = buf.time[idx][:n]
                a[idx], b[idx], sigb[idx] = linfit_one(True, tt, buf.sci[idx][:n], buf.err[idx][:n],
                                                       buf.dg[idx][:n], gain)
                int_time = F32(int_time + F32(tt[n - 1] - tt[0]))
                sig2 = F32(sigb[idx] * sigb[idx])
                if sig2 != 0:
                    sumwts = F32(F64(sumwts) + 1.0 / F64(sig2))
                    total = F32(total + F32(b[idx] / sig2))
            elif n == 1 and (buf.dq[idx][0] & DATAREJECT) == 0:
                if buf.time[idx][0] != 0:
                    b[idx] = F32(buf.sci[idx][0] / buf.time[idx][0])
                    sigb[idx] = F32(buf.err[idx][0] / buf.time[idx][0])
                k = buf.lookup[idx][0]
                int_time = F32(int_time + F32(time[k] - time[k - 1]))
                sig2 = F32(sigb[idx] * sigb[idx])
                if sig2 != 0:
                    sumwts = F32(sumwts + F32(F32(1.0) / sig2))
                    total = F32(total + F32(b[idx] / sig2))
    if not state["found_error"] and sumwts > 0:
        samp = sum(buf.count[idx] + 1 if idx == 0 else buf.count[idx] - 1 for idx in range(state["interval"] + 1))
        return PixelFit(F32(total / sumwts), F32(np.sqrt(F64(F32(F32(1.0) / sumwts)))), samp, int_time)
    return _first_to_last(sci, err, dq, time, ign)


def _first_to_last(sci: list[np.float32], err: list[np.float32], dq: list[int], time: list[np.float32],
                   ign: int) -> PixelFit:
    """No usable fit: the slope between the first and last good samples; ERR is the difference
    of their errors, and the first sample counts twice in SAMP (calwf3's behaviour)."""
    nsamp = len(sci)
    first = last = ngood = 0
    for k in range(1, nsamp):
        if (dq[k] & ign) == 0:
            first = last = k
            ngood += 1
            break
    for k in range(first, nsamp):
        if dq[k] == 0:
            last = k
            ngood += 1
    if last == first:
        return PixelFit(F32(0.0), F32(0.0), 0, F32(0.0))
    dt = F32(time[last] - time[first])
    return PixelFit(F32(F32(sci[last] - sci[first]) / dt), F32(F32(err[last] - err[first]) / dt), ngood, dt)


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
    columns = [np.ascontiguousarray(a[:, slow].T) for a in (s, e, time, dg)]
    dq_rows = d[:, slow].T.tolist()
    for j, p in enumerate(slow):
        col_dq = dq_rows[j]
        res = fitsamps(list(columns[0][j]), list(columns[1][j]), col_dq, list(columns[2][j]), list(columns[3][j]),
                       thresh, ign, gain)
        out.sci[p], out.err[p], out.samp[p], out.time[p] = res.sci, res.err, res.samp, res.time
        out.flags[:, p] = col_dq
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
