"""ObsCore values of a catalogued product: calibration level, wavelength range, field of view, times.

The catalogue holds what the headers say (instrument, detector, filters, EXPSTART, EXPTIME); ObsCore
wants physical ranges. Wavelength ranges are nominal, from the filter name (``F606W``: 606 nm, wide:
±12.5 %; WFC3/IR and NICMOS three-digit names are tens of nm), good for selecting, not for
photometry. Fields of view are the detectors' nominal sizes.
"""

from __future__ import annotations

import datetime as dt
import re

#: Archived file kind → (calib_level, dataproduct_type); other kinds (pods, trailers, previews) are not products.
PRODUCTS: dict[str, tuple[int, str]] = {
    "raw": (1, "image"), "flt": (2, "image"), "flc": (2, "image"), "crj": (2, "image"), "crc": (2, "image"),
    "ima": (2, "image"), "drz": (3, "image"), "drc": (3, "image"),
    "rawtag": (1, "spectrum"), "rawtag_a": (1, "spectrum"), "rawtag_b": (1, "spectrum"),
    "x1d": (2, "spectrum"), "x1dsum": (3, "spectrum"),
}
#: Nominal field of view (diameter, degrees) per instrument/detector.
FOV = {("WFC3", "UVIS"): 162 / 3600, ("WFC3", "IR"): 136 / 3600, ("ACS", "WFC"): 202 / 3600,
       ("ACS", "HRC"): 29 / 3600, ("ACS", "SBC"): 35 / 3600, ("WFPC2", None): 150 / 3600,
       ("NICMOS", None): 51 / 3600, ("STIS", None): 52 / 3600, ("COS", None): 2.5 / 3600}
DEFAULT_FOV = 0.05
_WIDTH = {"W": 0.25, "M": 0.10, "N": 0.02, "X": 0.35}
#: Grisms and prisms of the imaging cameras (metres).
_DISPERSERS = {"G102": (0.80e-6, 1.15e-6), "G141": (1.075e-6, 1.70e-6), "G280": (0.19e-6, 0.50e-6),
               "G800L": (0.55e-6, 1.00e-6), "PR200L": (0.17e-6, 0.50e-6), "PR110L": (0.115e-6, 0.18e-6)}
_FILTER_RE = re.compile(r"^F(\d{3,4})(LP|W|M|N|X)$")
_MJD0 = dt.datetime(1858, 11, 17)


def fov(instrument: str | None, detector: str | None) -> float:
    inst = (instrument or "").upper()
    return FOV.get((inst, (detector or "").upper()), FOV.get((inst, None), DEFAULT_FOV))


def _one_band(name: str, infrared: bool) -> tuple[float, float] | None:
    name = name.strip().upper().split("/")[0]
    if name in _DISPERSERS:
        return _DISPERSERS[name]
    m = _FILTER_RE.fullmatch(name)
    if m is None:
        return None
    digits, kind = m.groups()
    centre = int(digits) * (10 if infrared and len(digits) == 3 else 1) * 1e-9
    if kind == "LP":
        return centre, (1.7e-6 if infrared else 1.1e-6)
    half = _WIDTH[kind] / 2
    return centre * (1 - half), centre * (1 + half)


def band(filters: str | None, instrument: str | None, detector: str | None) -> tuple[float, float] | None:
    """(em_min, em_max) in metres: the overlap of the elements in the beam, None when unknown."""
    if not filters:
        return None
    infrared = (detector or "").upper() == "IR" or (instrument or "").upper() == "NICMOS"
    ranges = [r for r in (_one_band(f, infrared) for f in filters.split(";")) if r is not None]
    if not ranges:
        return None
    lo, hi = max(r[0] for r in ranges), min(r[1] for r in ranges)
    return (lo, hi) if lo < hi else ranges[0]


def mjd(date_obs: str | None) -> float | None:
    if not date_obs:
        return None
    try:
        when = dt.datetime.fromisoformat(date_obs)
    except ValueError:
        return None
    return (when.replace(tzinfo=None) - _MJD0).total_seconds() / 86400


def times(expstart: float | None, exptime: float | None, date_obs: str | None) -> tuple[float | None, float | None]:
    """(t_min, t_max) as MJD."""
    start = expstart if expstart is not None else mjd(date_obs)
    if start is None:
        return None, None
    return start, start + (exptime or 0.0) / 86400


def access_format(name: str) -> str:
    lower = name.lower()
    if lower.endswith((".fits", ".fit", ".fits.gz")):
        return "application/fits"
    if lower.endswith((".jpg", ".jpeg")):
        return "image/jpeg"
    if lower.endswith(".png"):
        return "image/png"
    return "application/octet-stream"
