"""Simulated WFC3/IR MULTIACCUM exposures: raw ramps in the archive layout plus their truth.

Per read: the bias pedestal (the NLINFILE super-zero) with a per-read drift, the charge
accumulated since the reset (Poisson, sky + stars through the flat, dark current), the detector
non-linearity of the NLINFILE coefficients, saturation at the full well, cosmic-ray jumps and
snowballs, read noise, 16-bit quantisation. The reference border sees bias only. The truth is the
count rate (e-/s) a perfect calibration recovers, the read of each injected jump and of saturation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.core.fsutil import atomic_write_fits
from pipeline.simulate.irheaders import Visit, primary_header, raw_hdulist, tangent_wcs
from pipeline.simulate.irmodel import (
    BORDER,
    CCDGAIN,
    FULL_SUBTYPE,
    FULL_WELL_DN,
    READNOISE,
    SUBARRAYS,
    IRMaps,
    mean_gain,
    nonlinear_response,
    sample_times,
)
from pipeline.simulate.irrefs import frame_for

SAMPZERO_OFFSET = 0.020535


@dataclass(frozen=True)
class IRExposure:
    """What to observe."""

    rootname: str
    samp_seq: str = "SPARS25"
    nsamp: int = 8
    aperture: str = "IR"             # IR or IRSUB64/128/256/512
    filter: str = "F160W"
    expstart: float = 56000.25
    sky: float = 1.0                 # e-/s
    nstars: int = 60
    cr_rate: float = 2e-5            # hits per pixel per second
    snowballs: int = 2
    seed: int = 1
    visit: Visit = field(default_factory=Visit)
    scene_seed: int | None = None    # members of one association share their stars (shifted by visit.shift)

    @property
    def subtype(self) -> str:
        return SUBARRAYS[self.aperture][0] if self.aperture in SUBARRAYS else FULL_SUBTYPE


@dataclass
class IRTruth:
    """Truth inside the light-sensitive region: count rate (e-/s), first jump read and first
    read whose signal exceeds the NLINFILE NODE (0 = none), plus each jump's size in e-."""

    rate: np.ndarray
    cr_read: np.ndarray
    sat_read: np.ndarray
    cr_size: np.ndarray

    def to_hdulist(self, rootname: str) -> fits.HDUList:
        """``<root>_truth.fits``: RATE, CRREAD, SATREAD, CRSIZE images."""
        th = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(self.rate, name="RATE"),
                           fits.ImageHDU(self.cr_read, name="CRREAD"), fits.ImageHDU(self.sat_read, name="SATREAD"),
                           fits.ImageHDU(self.cr_size, name="CRSIZE")])
        th[0].header["ROOTNAME"] = rootname.lower()
        return th


def _stars(rng: np.random.Generator, shape: tuple[int, int], n: int,
           shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    ny, nx = shape
    img = np.zeros(shape, np.float64)
    yy, xx = np.mgrid[0:ny, 0:nx]
    for _ in range(n):
        x0, y0 = rng.uniform(0, nx) + shift[0], rng.uniform(0, ny) + shift[1]
        flux = 10 ** rng.uniform(1.5, 5.3)          # e-/s; the brightest saturate mid-ramp
        sig = 1.2
        r = 6
        ys = slice(max(int(y0) - r, 0), min(int(y0) + r + 1, ny))
        xs = slice(max(int(x0) - r, 0), min(int(x0) + r + 1, nx))
        g = np.exp(-((xx[ys, xs] - x0) ** 2 + (yy[ys, xs] - y0) ** 2) / (2 * sig * sig))
        img[ys, xs] += flux * g / (2 * np.pi * sig * sig)
    return img


def _hits(rng: np.random.Generator, shape: tuple[int, int], times: list[float], rate: float,
          snowballs: int) -> tuple[np.ndarray, np.ndarray]:
    """(first hit read per pixel, e- deposited before each read (N, ny, nx)); snowballs are disks."""
    n = len(times)
    deposits = np.zeros((n, *shape), np.float32)
    for k in range(1, n):
        dt = times[k] - times[k - 1]
        hit = rng.random(shape) < rate * dt
        deposits[k][hit] = rng.lognormal(np.log(1500.0), 0.6, int(hit.sum()))
    for _ in range(snowballs):
        k = int(rng.integers(2, n)) if n > 2 else 1
        y0, x0 = rng.integers(3, shape[0] - 3), rng.integers(3, shape[1] - 3)
        yy, xx = np.ogrid[0:shape[0], 0:shape[1]]
        disk = (yy - y0) ** 2 + (xx - x0) ** 2 <= 4
        deposits[k][disk] += 25000.0
    hit_any = deposits > 0
    first = np.where(hit_any.any(axis=0), hit_any.argmax(axis=0), 0)
    return first, deposits


def simulate_ramp(maps: IRMaps, exp: IRExposure) -> tuple[fits.HDUList, IRTruth]:
    """The raw MULTIACCUM HDUList (EXTVER 1 = last read) and the truth of one exposure."""
    rng = np.random.default_rng(exp.seed)
    frame = frame_for(exp.subtype)
    times = sample_times(exp.samp_seq, exp.nsamp)
    sampzero = (times[1] if len(times) > 1 else 2.932) - SAMPZERO_OFFSET
    n_raw = frame.size
    inner = (slice(BORDER, n_raw - BORDER), slice(BORDER, n_raw - BORDER))
    shape_in = (n_raw - 2 * BORDER, n_raw - 2 * BORDER)
    g = mean_gain()
    star_rng = rng if exp.scene_seed is None else np.random.default_rng(exp.scene_seed)
    rate = exp.sky + _stars(star_rng, shape_in, exp.nstars if frame.size > 200 else max(exp.nstars // 8, 2),
                            exp.visit.shift)
    flat, dark = frame.cut(maps.flat)[inner], frame.cut(maps.dark)[inner]
    lam = rate * flat + dark                     # e-/s collected
    coef = np.stack([frame.cut(c)[inner] for c in maps.coef])
    node = frame.cut(maps.node)[inner]
    bias = frame.cut(maps.bias)
    first_cr, deposits = _hits(rng, shape_in, times, exp.cr_rate, exp.snowballs)
    rn_read = np.float64(np.mean(READNOISE)) / np.sqrt(2.0) / g
    electrons = rng.poisson(lam * sampzero).astype(np.float64)
    sat_read = np.zeros(shape_in, np.int16)
    reads = []
    for k, t in enumerate(times):
        if k > 0:
            electrons += rng.poisson(lam * (t - times[k - 1])) + deposits[k]
        true_dn = electrons / g
        observed = np.minimum(nonlinear_response(true_dn, coef), FULL_WELL_DN)
        sat_read[(sat_read == 0) & (observed > node)] = k
        raw = bias.astype(np.float64) + rng.normal(0.0, 3.0)
        raw += rng.normal(0.0, rn_read, raw.shape)
        raw[inner] += observed
        reads.append(np.clip(np.rint(raw), 0, 65535).astype(np.uint16))
    cr_size = np.take_along_axis(deposits, first_cr[None].astype(np.int64), axis=0)[0]
    truth = IRTruth(rate=rate.astype(np.float32), cr_read=first_cr.astype(np.int16), sat_read=sat_read,
                    cr_size=cr_size.astype(np.float32))
    primary = primary_header(exp.rootname.lower(), exp.visit, filt=exp.filter, aperture=exp.aperture,
                             subtype=exp.subtype, samp_seq=exp.samp_seq, nsamp=len(times), sampzero=sampzero,
                             ccdgain=CCDGAIN, expstart=exp.expstart, exptime=times[-1])
    return raw_hdulist(primary, reads, times, frame.ltv, tangent_wcs(exp.visit, n_raw)), truth


def write_exposure(maps: IRMaps, exp: IRExposure, outdir: Path, refs: dict[str, str], *,
                   prefix: str = "iref$") -> tuple[Path, Path]:
    """Write ``<root>_raw.fits`` (reference keywords filled from ``refs``) and ``<root>_truth.fits``."""
    hdul, truth = simulate_ramp(maps, exp)
    p = hdul[0].header
    for key in ("CCDTAB", "OSCNTAB", "BPIXTAB", "CRREJTAB", "IMPHTTAB", "NLINFILE"):
        p[key] = prefix + refs[key]
    p["DARKFILE"] = prefix + refs[f"DARKFILE:{exp.samp_seq}:{exp.subtype}"]
    p["PFLTFILE"] = prefix + refs[f"PFLTFILE:{exp.filter}"]
    p["DFLTFILE"], p["LFLTFILE"] = "N/A", "N/A"
    raw = atomic_write_fits(hdul, outdir / f"{exp.rootname.lower()}_raw.fits")
    return raw, atomic_write_fits(truth.to_hdulist(exp.rootname), outdir / f"{exp.rootname.lower()}_truth.fits")
