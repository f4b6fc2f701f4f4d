"""``linfit`` of ``cridcalc.c``: a Numerical-Recipes straight-line fit with Fixsen optimum weights,
evaluated for many pixels at once (arrays of shape (n, P)) in calwf3's float32 arithmetic."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

F32 = np.float32
F64 = np.float64
#: WFC3 SMOV CDS read noise (e-) and mean dark (e-/s) hard-wired in ``cridcalc.c``.
CDS_READNOISE = 21.0
LINEAR_DARK = 0.036


@dataclass
class Fit:
    a: np.ndarray
    b: np.ndarray
    sigb: np.ndarray


def dark_model(time: np.ndarray, gain: float) -> np.ndarray:
    """``EstimateDarkandGlow``: accumulated dark DN at each sample time (amp glow 0)."""
    return time * F32(LINEAR_DARK / F64(F32(gain))) + F32(0.0)


#: (signal-to-noise limit, weighting exponent) of the optimum weights (Fixsen et al.); 0.4 is a float.
POWERS = ((100, 10.0), (50, 6.0), (20, 3.0), (10, 1.0), (5, float(F32(0.4))))


def _power(snr: np.ndarray) -> np.ndarray:
    """The weighting exponent chosen from the interval's signal-to-noise."""
    return np.select([snr > limit for limit, _ in POWERS], [F64(p) for _, p in POWERS], F64(0.0))


def linfit(optimum: bool, x: np.ndarray, y: np.ndarray, sig: np.ndarray, dg: np.ndarray, gain: float) -> Fit:
    """Fit ``y = a + b x`` along axis 0 (n samples >= 2) for every column; ``sigb`` includes the
    read-noise fit term and the dark and source Poisson terms (final division chain in double)."""
    n, p = x.shape
    g = F32(gain)
    rdns = F32(CDS_READNOISE / F64(g))
    invr2 = F32(1.0 / F64(rdns * rdns))
    if optimum:
        last = sig[n - 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = np.where(last > 0, (y[n - 1] - y[0]) / np.where(last > 0, last, F32(1)), F32(0.0))
        power = _power(snr)
    else:
        power = np.zeros(p, F64)
    h = (n - 1) / 2.0
    s = np.zeros(p, F32)
    sx, sy, sxx, sxy = (np.zeros(p, F32) for _ in range(4))
    for k in range(n):
        use = sig[k] != 0
        wt = np.abs(np.power(F64(abs(k - h) / h), power)).astype(F32) * invr2
        wt = np.where(use, wt, F32(0.0))
        xk, yk = x[k], y[k]
        s = np.where(use, s + wt, s)
        sy = np.where(use, sy + yk * wt, sy)
        sx = np.where(use, sx + xk * wt, sx)
        sxx = np.where(use, sxx + xk * xk * wt, sxx)
        sxy = np.where(use, sxy + xk * yk * wt, sxy)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        dx, dy, ddg = x[n - 1] - x[0], y[n - 1] - y[0], dg[n - 1] - dg[0]
        denom = s * sxx - sx * sx
        denom = np.where(denom.astype(F64) < 1e-6, F32(1e-6), denom)
        if n == 2:
            b = dy / dx
            a = y[0] - b * x[0]
            fu = np.zeros(p, F32)
            t0, t1 = sig[0] / x[0], sig[1] / x[1]
            sigb = np.sqrt((t0 * t0 + t1 * t1).astype(F64)).astype(F32)
        else:
            b = (s * sxy - sx * sy) / denom
            a = (sxx * sy - sx * sxy) / denom
            fu = np.sqrt((s / denom).astype(F64)).astype(F32)
            sigb = fu
        t = g * fu * dx
        terms = t * t + g * ddg + g * dy
        better = ((np.sqrt(terms.astype(F64)) / dx.astype(F64)) / F64(g)).astype(F32)
        sigb = np.where(terms > 0, better, sigb)
    pos = s > 0
    return Fit(a=np.where(pos, a, F32(0.0)), b=np.where(pos, b, F32(0.0)), sigb=np.where(pos, sigb, F32(1e9)))
