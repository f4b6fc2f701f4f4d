"""The sky and what hits the detector: a star field with sky background, and cosmic rays.

Stars carry ST magnitudes per filter; counts follow from the chip's PHOTFLAM at the exposure date
(:mod:`pipeline.simulate.photometry`), so photometry on calibrated data can be checked against the
catalogue. The PSF is a pixel-integrated two-Gaussian core plus halo (separable, so rendering a
stamp is an outer product of two 1-D error-function differences).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.table import Table
from astropy.wcs import WCS
from scipy.special import erf

from pipeline.simulate.photometry import FILTERS, count_rate

#: PSF: (fraction, sigma in pixels) of the core and the halo.
PSF = ((0.85, 0.75), (0.15, 2.6))
#: Stars per square arcsecond down to STMAG 26 (a sparse high-latitude field).
STAR_DENSITY = 0.12
FAINT, BRIGHT_LIMIT = 26.0, 17.0


@dataclass(frozen=True)
class StarField:
    """Catalogue of stars around a target: positions and an ST magnitude per filter."""

    ra: np.ndarray
    dec: np.ndarray
    mags: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.ra)

    def table(self) -> Table:
        t = Table({"ID": np.arange(1, len(self) + 1), "RA": self.ra, "DEC": self.dec})
        for name, mags in sorted(self.mags.items()):
            t[f"MAG_{name}"] = mags
        return t


def make_star_field(rng: np.random.Generator, instrument: str, ra0: float, dec0: float,
                    half_width_arcsec: float, n_bright: int = 3) -> StarField:
    """Uniform stars in a square around (ra0, dec0) with number counts rising to the faint end.

    ``n_bright`` stars of 16.5-17.5 mag are put within 8 arcsec of the centre, so every exposure
    (subarrays included) has saturated, bleeding stars.
    """
    area = (2 * half_width_arcsec) ** 2
    n = max(int(rng.poisson(STAR_DENSITY * area)), 5)
    # N(<m) ∝ 10**(0.3 m) between BRIGHT_LIMIT and FAINT
    u = rng.uniform(size=n)
    lo = 10 ** (0.3 * (BRIGHT_LIMIT - FAINT))
    mag = FAINT + np.log10(lo + (1 - lo) * u) / 0.3
    dx = rng.uniform(-half_width_arcsec, half_width_arcsec, n)
    dy = rng.uniform(-half_width_arcsec, half_width_arcsec, n)
    bright_r = rng.uniform(1.0, 8.0, n_bright)
    bright_t = rng.uniform(0, 2 * np.pi, n_bright)
    dx = np.concatenate([dx, bright_r * np.cos(bright_t)])
    dy = np.concatenate([dy, bright_r * np.sin(bright_t)])
    mag = np.concatenate([mag, rng.uniform(16.5, 17.5, n_bright)])
    dec = dec0 + dy / 3600.0
    ra = ra0 + dx / 3600.0 / np.cos(np.radians(dec0))
    colour = rng.normal(0.6, 0.3, len(mag))  # F606W - F814W
    mags = {}
    for name in FILTERS[instrument.lower()]:
        mags[name] = mag if name == "F606W" else mag - colour
    return StarField(ra, dec, mags)


def _pixel_profile(centre: np.ndarray, offsets: np.ndarray, sigma: float) -> np.ndarray:
    """Fraction of a unit 1-D Gaussian falling in pixels ``floor(centre)+offsets`` (N, K)."""
    edges = np.floor(centre + 0.5)[:, None] + offsets[None, :] - centre[:, None]
    scale = 1.0 / (np.sqrt(2.0) * sigma)
    return 0.5 * (erf((edges + 0.5) * scale) - erf((edges - 0.5) * scale))


def render_stars(shape: tuple[int, int], x: np.ndarray, y: np.ndarray, rate: np.ndarray,
                 radius: int = 14) -> np.ndarray:
    """Add point sources (e-/s) at 0-based pixel positions into a new float64 image."""
    ny, nx = shape
    image = np.zeros(ny * nx)
    inside = (x > -radius) & (x < nx + radius) & (y > -radius) & (y < ny + radius)
    x, y, rate = x[inside], y[inside], rate[inside]
    if not len(x):
        return image.reshape(shape)
    offsets = np.arange(-radius, radius + 1)
    cols = np.floor(x + 0.5)[:, None] + offsets[None, :]
    rows = np.floor(y + 0.5)[:, None] + offsets[None, :]
    stamp = np.zeros((len(x), len(offsets), len(offsets)))
    for fraction, sigma in PSF:
        profile_y, profile_x = _pixel_profile(y, offsets, sigma), _pixel_profile(x, offsets, sigma)
        stamp += fraction * profile_y[:, :, None] * profile_x[:, None, :]
    stamp *= rate[:, None, None]
    rr = np.broadcast_to(rows[:, :, None], stamp.shape)
    cc = np.broadcast_to(cols[:, None, :], stamp.shape)
    ok = (rr >= 0) & (rr < ny) & (cc >= 0) & (cc < nx)
    flat_index = (rr[ok] * nx + cc[ok]).astype(np.int64)
    image += np.bincount(flat_index, weights=stamp[ok], minlength=ny * nx)
    return image.reshape(shape)


def scene_rate(stars: StarField, wcs: WCS, shape: tuple[int, int], instrument: str, filter_name: str,
               chip: int, mjd: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sky plus stars in e-/s on a chip's trimmed pixels; also the stars' 0-based pixel positions."""
    x, y = wcs.wcs_world2pix(stars.ra, stars.dec, 0)
    rate = np.array([count_rate(m, instrument, filter_name, chip, mjd) for m in stars.mags[filter_name]])
    image = render_stars(shape, x, y, rate)
    image += FILTERS[instrument.lower()][filter_name].sky_rate
    return image, x, y


@dataclass(frozen=True)
class CosmicRays:
    deposit: np.ndarray  # e- per pixel
    mask: np.ndarray


#: Cosmic-ray events per pixel per second (about 1.5% of pixels hit in 1000 s, ~4 pixels each).
CR_RATE = 3.8e-6


def cosmic_rays(rng: np.random.Generator, shape: tuple[int, int], exptime: float) -> CosmicRays:
    """Straight tracks of 1-8 pixels at random angles, log-normal total charge (median ~1500 e-)."""
    ny, nx = shape
    n = int(rng.poisson(CR_RATE * ny * nx * exptime))
    length = rng.integers(1, 9, n)
    angle = rng.uniform(0, np.pi, n)
    charge = rng.lognormal(np.log(1500.0), 0.7, n)
    x0, y0 = rng.uniform(0, nx, n), rng.uniform(0, ny, n)
    steps = np.arange(8)
    along = steps[None, :] < length[:, None]
    xs = np.floor(x0[:, None] + np.cos(angle)[:, None] * steps[None, :]).astype(np.int64)
    ys = np.floor(y0[:, None] + np.sin(angle)[:, None] * steps[None, :]).astype(np.int64)
    per_pixel = np.broadcast_to((charge / length)[:, None], along.shape)
    ok = along & (xs >= 0) & (xs < nx) & (ys >= 0) & (ys < ny)
    deposit = np.bincount(ys[ok] * nx + xs[ok], weights=per_pixel[ok], minlength=ny * nx).reshape(shape)
    return CosmicRays(deposit.astype(np.float32), deposit > 0)
