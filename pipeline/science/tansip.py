"""The gnomonic (TAN) projection with SIP distortion, from a FITS header: where an HST image's pixels
lie on the sky, for laying out chips in a preview.

``astropy.wcs`` does this and much more, but importing it pulls in ``astropy.coordinates``,
``astropy.units`` and ``astropy.table`` (~0.2 s of every PVW node, more than its whole layout needs).
HST's calibrated images carry a TAN projection with SIP polynomials (the NPOL and D2IM lookup tables
live in separate reference files, which a header alone does not give ``astropy.wcs`` either). The
projection is the gnomonic one of the FITS WCS papers with the zenithal default ``LONPOLE`` of 180
degrees (Calabretta & Greisen 2002), written in the forms that stay accurate near the tangent point;
SIP as Shupe et al. 2005. ``tests/test_tansip.py`` holds them to ``astropy.wcs``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Fixed-point passes for the inverse SIP polynomial (each gains digits geometrically for HST's
#: distortions of at most a few per cent); it stops earlier once a pass moves no point by 1e-10 pixel.
INVERSE_PASSES = 50


@dataclass(frozen=True)
class TanSip:
    """A celestial TAN(-SIP) WCS: pixel (0-based) <-> (RA, Dec) in degrees."""

    crpix: tuple[float, float]
    crval: tuple[float, float]
    cd: np.ndarray
    #: SIP coefficients by (p, q): u-terms (A) and v-terms (B).
    a: dict[tuple[int, int], float] = field(default_factory=dict)
    b: dict[tuple[int, int], float] = field(default_factory=dict)

    @classmethod
    def from_header(cls, header: Mapping[str, Any]) -> TanSip | None:
        """The header's WCS, or None when it is not a usable RA/Dec TAN projection."""
        ctype = (str(header.get("CTYPE1", "")).upper(), str(header.get("CTYPE2", "")).upper())
        if not (ctype[0].startswith("RA---TAN") and ctype[1].startswith("DEC--TAN")):
            return None
        try:
            crpix = (float(header["CRPIX1"]), float(header["CRPIX2"]))
            crval = (float(header["CRVAL1"]), float(header["CRVAL2"]))
            cd = _cd(header)
        except (KeyError, TypeError, ValueError):
            return None
        if not (np.all(np.isfinite(cd)) and cd[0, 0] * cd[1, 1] - cd[0, 1] * cd[1, 0] != 0
                and all(map(math.isfinite, crpix + crval))):
            return None
        sip = ctype[0].endswith("-SIP") and ctype[1].endswith("-SIP")
        return cls(crpix, crval, cd, _sip(header, "A") if sip else {}, _sip(header, "B") if sip else {})

    def pix2world(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(RA, Dec) in degrees of 0-based pixel positions."""
        u = np.asarray(x, dtype=np.float64) + 1.0 - self.crpix[0]
        v = np.asarray(y, dtype=np.float64) + 1.0 - self.crpix[1]
        up, vp = u + _poly(self.a, u, v), v + _poly(self.b, u, v)
        xi = np.radians(self.cd[0, 0] * up + self.cd[0, 1] * vp)
        eta = np.radians(self.cd[1, 0] * up + self.cd[1, 1] * vp)
        a0, d0 = map(math.radians, self.crval)
        across = math.cos(d0) - eta * math.sin(d0)   # the gnomonic inverse in its well-conditioned form
        ra = a0 + np.arctan2(xi, across)
        dec = np.arctan2(math.sin(d0) + eta * math.cos(d0), np.hypot(xi, across))
        return np.degrees(ra) % 360.0, np.degrees(dec)

    def world2pix(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """0-based pixel positions of (RA, Dec) in degrees (NaN on the far side of the sphere)."""
        da = np.radians(np.asarray(ra, dtype=np.float64)) - math.radians(self.crval[0])
        d = np.radians(np.asarray(dec, dtype=np.float64))
        d0 = math.radians(self.crval[1])
        near = math.sin(d0) * np.sin(d) + math.cos(d0) * np.cos(d) * np.cos(da)
        near = np.where(near > 0, near, np.nan)
        xi = np.degrees(np.cos(d) * np.sin(da) / near)
        eta = np.degrees((math.cos(d0) * np.sin(d) - math.sin(d0) * np.cos(d) * np.cos(da)) / near)
        shape = np.shape(xi)
        up, vp = np.linalg.solve(self.cd, np.vstack([np.ravel(xi), np.ravel(eta)]))
        u, v = up.copy(), vp.copy()
        for _ in range(INVERSE_PASSES if self.a or self.b else 0):
            nu, nv = up - _poly(self.a, u, v), vp - _poly(self.b, u, v)
            moved = np.nanmax(np.abs(np.concatenate([nu - u, nv - v]))) if u.size else 0.0
            u, v = nu, nv
            if not moved > 1e-10:
                break
        return (u + self.crpix[0] - 1.0).reshape(shape), (v + self.crpix[1] - 1.0).reshape(shape)


def _cd(header: Mapping[str, Any]) -> np.ndarray:
    """The CD matrix: CDi_j, else PCi_j scaled by CDELTi (PC defaulting to the identity)."""
    if any(f"CD{i}_{j}" in header for i in (1, 2) for j in (1, 2)):
        return np.array([[float(header.get(f"CD{i}_{j}", 0.0)) for j in (1, 2)] for i in (1, 2)])
    pc = np.array([[float(header.get(f"PC{i}_{j}", 1.0 if i == j else 0.0)) for j in (1, 2)] for i in (1, 2)])
    cdelt = np.array([float(header["CDELT1"]), float(header["CDELT2"])])
    return pc * cdelt[:, None]


def _sip(header: Mapping[str, Any], which: str) -> dict[tuple[int, int], float]:
    order = int(header.get(f"{which}_ORDER", 0) or 0)
    return {(p, q): float(header[f"{which}_{p}_{q}"]) for p in range(order + 1) for q in range(order + 1 - p)
            if f"{which}_{p}_{q}" in header}


def _poly(coefficients: dict[tuple[int, int], float], u: np.ndarray, v: np.ndarray) -> np.ndarray | float:
    total: np.ndarray | float = 0.0
    for (p, q), c in coefficients.items():
        total = total + c * u**p * v**q
    return total
