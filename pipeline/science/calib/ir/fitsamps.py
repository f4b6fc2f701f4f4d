"""calwf3's per-pixel reject-and-refit (``fitsamps``, ``linfit`` of ``cridcalc.c``) compiled with numba.

Why compiled: calwf3 runs every pixel through a loop of equal-weight fits, spike/jump/first-read
tests and a final optimum-weight fit per interval; in Python that loop (even for the ~1 % of pixels
a vectorised shortcut could not decide) was most of CRCORR. Here every pixel takes calwf3's loop,
in one pass over the science region that also does the rates/counts conversion and the flags'
post-processing. The arithmetic is calwf3's, float32 where the C code is float and float64 where it
is double, written out with explicit casts so numba (no fast-math: no reassociation, no fused
multiply-adds) rounds exactly as the C code does. The helpers are inlined into the one compiled
entry point (``_image``), which numba caches on disk. Without numba the same functions run as plain
Python on numpy scalars (slow, same results).

Quirks kept: interval buffers are zeroed per pixel but reused between iterations, so the spike test
reads the stale element after an interval's end; the residuals array is shared by every interval.
"""

from __future__ import annotations

import numpy as np

from pipeline.science.calib.jit import jit, numba, prange

F32 = np.float32
F64 = np.float64
MAX_CRS = 4
SPIKE_THRESH = 6.0
SATPIXEL, ZEROSIG, DATAREJECT, SPIKE, HIGH_CURVATURE = 256, 2048, 8192, 1024, 16384
UNSTABLE = 32
#: WFC3 SMOV CDS read noise (e-) and mean dark (e-/s) hard-wired in ``cridcalc.c``.
CDS_READNOISE = 21.0
LINEAR_DARK = 0.036
#: (signal-to-noise limit, weighting exponent) of the optimum weights (Fixsen et al.); 0.4 is a float.
POWERS = ((100.0, 10.0), (50.0, 6.0), (20.0, 3.0), (10.0, 1.0), (5.0, float(F32(0.4))))
_P_LIMITS = np.array([limit for limit, _ in POWERS], F64)   # the table as arrays for numba
_P_VALUES = np.array([p for _, p in POWERS], F64)


def weight_table(nsamp, gain):  # type: ignore[no-untyped-def]
    """table[j, n, k]: calwf3's weight of sample k in an n-sample interval, ``|((|k - h| / h) ** p)|``
    rounded to float times 1/rdns^2, for the exponent p = 0 (j = 0, equal weights) or the j-th of
    :data:`POWERS`. The same expression linfit evaluates, computed once instead of in every fit."""
    g = np.float32(gain)
    rdns = np.float32(CDS_READNOISE / np.float64(g))
    invr2 = np.float32(1.0 / np.float64(rdns * rdns))
    table = np.zeros((_P_VALUES.size + 1, nsamp + 1, nsamp), np.float32)
    for j in range(_P_VALUES.size + 1):
        power = 0.0 if j == 0 else _P_VALUES[j - 1]
        for n in range(2, nsamp + 1):
            h = (n - 1) / 2.0
            for k in range(n):
                table[j, n, k] = np.float32(abs((abs(k - h) / h) ** power)) * invr2
    return table


def linfit(optimum, x, y, sig, dg, n, gain, weights, out):  # type: ignore[no-untyped-def]
    """``linfit``: a Numerical-Recipes straight-line fit ``y = a + b x`` of the first ``n`` >= 2
    samples, equal or Fixsen optimum weights (``weights`` from :func:`weight_table`); ``sigb``
    includes the read-noise fit term and the dark and source Poisson terms (final division chain
    in double). (a, b, sigb) into ``out``."""
    g = np.float32(gain)
    j = 0
    if optimum:
        snr = np.float32(0.0)
        if sig[n - 1] > 0:
            snr = np.float32((y[n - 1] - y[0]) / sig[n - 1])
        for i in range(_P_LIMITS.size):
            if snr > _P_LIMITS[i]:
                j = i + 1
                break
    wts = weights[j, n]
    s = np.float32(0.0)
    sx = np.float32(0.0)
    sy = np.float32(0.0)
    sxx = np.float32(0.0)
    sxy = np.float32(0.0)
    for k in range(n):
        if sig[k] != 0:
            wt = wts[k]
            xk = x[k]
            yk = y[k]
            s = s + wt
            sy = sy + yk * wt
            sx = sx + xk * wt
            sxx = sxx + xk * xk * wt
            sxy = sxy + xk * yk * wt
    if not s > 0:
        out[0] = np.float32(0.0)
        out[1] = np.float32(0.0)
        out[2] = np.float32(1e9)
        return
    dx = x[n - 1] - x[0]
    dy = y[n - 1] - y[0]
    ddg = dg[n - 1] - dg[0]
    denom = s * sxx - sx * sx
    if np.float64(denom) < 1e-6:
        denom = np.float32(1e-6)
    if n == 2:
        b = dy / dx
        a = y[0] - b * x[0]
        fu = np.float32(0.0)
        t0 = sig[0] / x[0]
        t1 = sig[1] / x[1]
        sigb = np.float32(np.sqrt(np.float64(t0 * t0 + t1 * t1)))
    else:
        b = (s * sxy - sx * sy) / denom
        a = (sxx * sy - sx * sxy) / denom
        fu = np.float32(np.sqrt(np.float64(s / denom)))
        sigb = fu
    t = g * fu * dx
    terms = t * t + g * ddg + g * dy
    if terms > 0:
        sigb = np.float32((np.sqrt(np.float64(terms)) / np.float64(dx)) / np.float64(g))
    out[0] = a
    out[1] = b
    out[2] = sigb


def _rej_spikes(tdq, diff, n, ign):  # type: ignore[no-untyped-def]
    """A sample far above both neighbours' residuals (-1: none); the neighbour after the last
    sample is the interval buffer's stale element, as in calwf3."""
    bad = ign | DATAREJECT | SPIKE
    max_diff = np.float32(0.0)
    found = -1
    for k in range(2, n):
        quiet = (tdq[k - 1] & bad) == 0 and (tdq[k] & bad) == 0 and (tdq[k + 1] & bad) == 0
        if (quiet and diff[k - 1] - diff[k - 2] > SPIKE_THRESH and diff[k - 1] - diff[k] > SPIKE_THRESH
                and diff[k - 2] < 0 and diff[k] < 0 and abs(diff[k - 1]) > max_diff):
            max_diff = diff[k - 1]
            found = k - 1
    return found


def _rej_crs(tdq, diff, n, thresh, ign):  # type: ignore[no-untyped-def]
    """The largest jump (either sign) in the residuals above the threshold (-1: none)."""
    bad = ign | DATAREJECT
    prev = np.float32(0.0)
    max_diff = np.float32(0.0)
    index = -1
    for k in range(1, n):
        if (tdq[k - 1] & bad) == 0:
            prev = diff[k - 1]
        if (tdq[k] & bad) == 0:
            current = np.float32(abs(diff[k] - prev))
            if current > thresh:
                if current > max_diff:
                    max_diff = current
                    index = k
                prev = diff[k]
    return index if max_diff != 0 else -1


def _build(pass2, sci, err, time, dg, dq, ign, bsci, berr, btime, bdg, bdq, blook, count):  # type: ignore[no-untyped-def]
    """Split the samples into intervals at flagged jumps; the last interval's index (-1: no samples)."""
    interval = 0
    sample = 0
    for k in range(1, sci.size):
        d = dq[k]
        if pass2:
            take = (d & (ign | DATAREJECT)) == 0
            jump = (d & DATAREJECT) != 0
        else:
            take = d == 0
            jump = d == DATAREJECT
        if jump and not take:
            count[interval] = sample
            interval += 1
            sample = 0
        if take or jump:
            bsci[interval, sample] = sci[k]
            berr[interval, sample] = err[k]
            btime[interval, sample] = time[k]
            bdg[interval, sample] = dg[k]
            bdq[interval, sample] = dq[k]
            blook[interval, sample] = k
            sample += 1
    if sample < 1:
        return -1
    if bdq[interval, sample - 1] == DATAREJECT:
        interval -= 1
    else:
        count[interval] = sample
    return interval


def _pixel(sci, err, dq, time, dg, thresh, ign, gain, weights, result, bf, bi, count, work):  # type: ignore[no-untyped-def]
    """One pixel's ramp (index 0 = zero read, never a sample) -> result (sci, err, samp, time);
    ``dq`` is updated in place with 8192 (jump), 1024 (spike) and 16384 (too many jumps).
    ``bf``/``bi``/``count``/``work`` are calwf3's per-pixel buffers, zeroed here."""
    thr = np.float32(thresh)
    bf[:] = 0
    bi[:] = 0
    count[:] = 0
    work[:] = 0
    bsci, berr, btime, bdg = bf[0], bf[1], bf[2], bf[3]
    bdq, blook = bi[0], bi[1]
    diff, a, b, sigb, fit = work[0], work[1], work[2], work[3], work[4]
    crs = 0
    found_error = False
    interval = -1
    for pass2 in (False, True):
        if pass2:
            crs = 0
        nrej = 1
        while nrej > 0 and not found_error:
            nrej = 0
            interval = _build(pass2, sci, err, time, dg, dq, ign, bsci, berr, btime, bdg, bdq, blook, count)
            if interval < 0:
                break
            idx = 0
            while idx <= interval and nrej == 0 and not found_error:
                n = count[idx]
                if n > 1:
                    ts, te, tt = bsci[idx], berr[idx], btime[idx]
                    linfit(False, tt, ts, te, bdg[idx], n, gain, weights, fit)
                    a[idx] = fit[0]
                    b[idx] = fit[1]
                    for k in range(n):
                        good = (bdq[idx, k] & ign) == 0 if pass2 else bdq[idx, k] == 0
                        if te[k] != 0 and good:
                            diff[k] = np.float32(np.float32(ts[k] - np.float32(a[idx] + np.float32(b[idx] * tt[k])))
                                                 / te[k])
                        else:
                            diff[k] = np.float32(0.0)
                    rej = _rej_spikes(bdq[idx], diff, n, ign)
                    if rej >= 0:
                        dq[blook[idx, rej]] |= SPIKE
                        nrej = 1
                    else:
                        rej = _rej_crs(bdq[idx], diff, n, thr, ign)
                        if rej >= 0:
                            nrej = 1
                            k = blook[idx, rej]
                            dq[k] |= DATAREJECT
                            crs += 1
                            if crs >= MAX_CRS:
                                found_error = True
                                dq[k] = (dq[k] - DATAREJECT) | HIGH_CURVATURE
                        elif (bdq[idx, 0] & (ign | DATAREJECT | SPIKE)) == 0 and \
                                (bdq[idx, 1] & (ign | DATAREJECT | SPIKE)) == 0 and \
                                np.float32(abs(diff[0] - diff[1])) > thr:
                            dq[blook[idx, 0]] |= SPIKE
                            nrej = 1
                elif n == 1:
                    lone_cr = (bdq[idx, 0] & DATAREJECT) != 0 if pass2 else bdq[idx, 0] == DATAREJECT
                    if (lone_cr and btime[idx, 0] != 0) if pass2 else not lone_cr:
                        b[idx] = np.float32(bsci[idx, 0] / btime[idx, 0])
                        sigb[idx] = np.float32(berr[idx, 0] / btime[idx, 0])
                idx += 1
        if interval >= 0:
            break
    if interval < 0:
        result[0] = np.float32(0.0)
        result[1] = np.float32(1e5)
        result[2] = np.float32(0.0)
        result[3] = np.float32(0.0)
        return
    int_time = np.float32(0.0)
    sumwts = np.float32(0.0)
    total = np.float32(0.0)
    if not found_error:
        for idx in range(interval + 1):
            n = count[idx]
            if n > 1:
                if idx == 0:
                    k = blook[idx, 0]
                    int_time = np.float32(int_time + np.float32(time[k] - time[k - 1]))
                tt = btime[idx]
                linfit(True, tt, bsci[idx], berr[idx], bdg[idx], n, gain, weights, fit)
                a[idx] = fit[0]
                b[idx] = fit[1]
                sigb[idx] = fit[2]
                int_time = np.float32(int_time + np.float32(tt[n - 1] - tt[0]))
                sig2 = np.float32(sigb[idx] * sigb[idx])
                if sig2 != 0:
                    sumwts = np.float32(np.float64(sumwts) + 1.0 / np.float64(sig2))
                    total = np.float32(total + np.float32(b[idx] / sig2))
            elif n == 1 and (bdq[idx, 0] & DATAREJECT) == 0:
                if btime[idx, 0] != 0:
                    b[idx] = np.float32(bsci[idx, 0] / btime[idx, 0])
                    sigb[idx] = np.float32(berr[idx, 0] / btime[idx, 0])
                k = blook[idx, 0]
                int_time = np.float32(int_time + np.float32(time[k] - time[k - 1]))
                sig2 = np.float32(sigb[idx] * sigb[idx])
                if sig2 != 0:
                    sumwts = np.float32(sumwts + np.float32(np.float32(1.0) / sig2))
                    total = np.float32(total + np.float32(b[idx] / sig2))
    if not found_error and sumwts > 0:
        samp = 0
        for idx in range(interval + 1):
            samp += count[idx] + 1 if idx == 0 else count[idx] - 1
        result[0] = np.float32(total / sumwts)
        result[1] = np.float32(np.sqrt(np.float64(np.float32(np.float32(1.0) / sumwts))))
        result[2] = np.float32(samp)
        result[3] = int_time
        return
    _first_to_last(sci, err, dq, time, ign, result)


def _first_to_last(sci, err, dq, time, ign, result):  # type: ignore[no-untyped-def]
    """No usable fit: the slope between the first and last good samples; ERR is the difference
    of their errors, and the first sample counts twice in SAMP (calwf3's behaviour)."""
    first = 0
    last = 0
    ngood = 0
    for k in range(1, sci.size):
        if (dq[k] & ign) == 0:
            first = k
            last = k
            ngood += 1
            break
    for k in range(first, sci.size):
        if dq[k] == 0:
            last = k
            ngood += 1
    if last == first:
        result[:] = np.float32(0.0)
        return
    dt = np.float32(time[last] - time[first])
    result[0] = np.float32(np.float32(sci[last] - sci[first]) / dt)
    result[1] = np.float32(np.float32(err[last] - err[first]) / dt)
    result[2] = np.float32(ngood)
    result[3] = dt


def _post_process(pdq, odq):  # type: ignore[no-untyped-def]
    """A fitted pixel's flags and output DQ: partial saturation leaves the output DQ; a jump flags
    every later sample; too many jumps flag every sample 16384 (HIGH_CURVATURE) and, when the last
    sample has it, the output 32 (UNSTABLE) and not 8192. Returns the output DQ."""
    nsamp = pdq.size
    odq -= odq & SATPIXEL
    curved = False
    for k in range(nsamp - 1):
        pdq[k + 1] |= pdq[k] & DATAREJECT
        curved = curved or (pdq[k] & HIGH_CURVATURE) != 0
    if curved:
        for k in range(nsamp):
            pdq[k] = (pdq[k] | HIGH_CURVATURE) & (0xFFFF ^ DATAREJECT)
    if pdq[nsamp - 1] & HIGH_CURVATURE:
        odq = (odq | UNSTABLE) & (0xFFFF ^ DATAREJECT)
    return odq


def _row(y, sci, err, dq, time, in_rates, out_counts, zsig_done, sampzero, thresh, ign, gain, weights, dark,
         osci, oerr, odq, osamp, otime, flags):  # type: ignore[no-untyped-def]
    """Row ``y`` of :func:`_image`, with its own scratch (rows go to different threads)."""
    nsamp, _, nx = sci.shape
    rows = max(MAX_CRS + 1, nsamp)   # calwf3: MAX_CRS + 1; more only if the input DQ already holds 8192s
    bf = np.zeros((4, rows, nsamp), np.float32)
    bi = np.zeros((2, rows, nsamp), np.int64)
    count = np.zeros(rows, np.int64)
    work = np.zeros((5, nsamp + 1), np.float32)
    psci = np.zeros(nsamp, np.float32)
    perr = np.zeros(nsamp, np.float32)
    ptime = np.zeros(nsamp, np.float32)
    pdg = np.zeros(nsamp, np.float32)
    pdq = np.zeros(nsamp, np.int64)
    result = np.zeros(4, np.float32)
    for x in range(nx):
        d_all = 0
        for k in range(nsamp):
            pdq[k] = dq[k, y, x] & (0xFFFF ^ ZEROSIG)
            d_all |= pdq[k]
            flags[k, y, x] = 0
        if zsig_done and nsamp > 1 and (dq[1, y, x] & SATPIXEL) != 0:
            osci[y, x] = sci[0, y, x]
            oerr[y, x] = err[0, y, x]
            osamp[y, x] = 1
            otime[y, x] = np.float32(sampzero)
            odq[y, x] = pdq[0]
            continue
        for k in range(nsamp):
            t = time[k, y, x]
            ptime[k] = t
            psci[k] = sci[k, y, x] * t if in_rates else sci[k, y, x]
            perr[k] = err[k, y, x] * t if in_rates else err[k, y, x]
            pdg[k] = t * dark + np.float32(0.0)
        _pixel(psci, perr, pdq, ptime, pdg, thresh, ign, gain, weights, result, bf, bi, count, work)
        osci[y, x] = result[0] * result[3] if out_counts else result[0]
        oerr[y, x] = result[1] * result[3] if out_counts else result[1]
        osamp[y, x] = np.int16(result[2])
        otime[y, x] = result[3]
        odq[y, x] = _post_process(pdq, d_all)
        for k in range(nsamp):
            flags[k, y, x] = pdq[k]


def _image(sci, err, dq, time, in_rates, out_counts, zsig_done, sampzero, thresh, ign, gain,
           osci, oerr, odq, osamp, otime, flags):  # type: ignore[no-untyped-def]
    """Every pixel of (N, Y, X) ramps into the (Y, X) outputs and the (N, Y, X) flags, the rows spread
    over numba's threads (pixels are independent). A pixel saturated from read 1 (ZSIGCORR done)
    keeps the zero read; the others are fitted in DN (rates times TIME when ``in_rates``) and given
    back as rates or, with ``out_counts``, counts."""
    nsamp, ny = sci.shape[:2]
    weights = weight_table(nsamp, gain)
    dark = np.float32(LINEAR_DARK / np.float64(np.float32(gain)))   # EstimateDarkandGlow, amp glow 0
    for y in prange(ny):
        _row(y, sci, err, dq, time, in_rates, out_counts, zsig_done, sampzero, thresh, ign, gain, weights, dark,
             osci, oerr, odq, osamp, otime, flags)


if numba is not None:
    weight_table = jit(weight_table)
    linfit = jit(linfit, inline="always")
    _rej_spikes = jit(_rej_spikes, inline="always")
    _rej_crs = jit(_rej_crs, inline="always")
    _build = jit(_build, inline="always")
    _first_to_last = jit(_first_to_last, inline="always")
    _pixel = jit(_pixel, inline="always")
    _post_process = jit(_post_process, inline="always")
    _row = jit(_row)
    _image = jit(_image, parallel=True)


def fit_image(sci: np.ndarray, err: np.ndarray, dq: np.ndarray, time: np.ndarray, *, in_rates: bool,
              out_counts: bool, zsig_done: bool, sampzero: float, thresh: float, ign: int,
              gain: float) -> tuple[np.ndarray, ...]:
    """CRCORR of (N, Y, X) ramps in time order (index 0 = zero read; views are fine), DQ with
    ZEROSIG still present. Returns SCI, ERR, DQ, SAMP, TIME (Y, X) and the per-read flags (N, Y, X)."""
    shape = sci.shape[1:]
    out = (np.empty(shape, F32), np.empty(shape, F32), np.empty(shape, np.uint16), np.empty(shape, np.int16),
           np.empty(shape, F32), np.empty(sci.shape, np.uint16))
    _image(sci, err, dq, time, bool(in_rates), bool(out_counts), bool(zsig_done), float(sampzero), float(thresh),
           int(ign), float(gain), *out)
    return out
