"""The ACS/HRC coronagraphic spot flat (calacs ``doflat.c``, ``dospot.c``, ``getspottab.c``).

When CFLTFILE and SPOTTAB are both named (not N/A, not PEDIGREE DUMMY), calacs shifts the spot
flat (imset 1 of CFLTFILE, whatever the chip) by SPOTTAB's (SHIFTX, SHIFTY) for the observation
date and multiplies it into each P/D flat line before dividing (``multlines``). Faithful details:

* The SPOTTAB row is the one whose DATE (``dd/mm/yy`` at 12:00, year 2000+yy) is nearest DATE-OBS
  (``yyyy-mm-dd`` at 00:00); both parsers hand the 1-based month to ``mktime`` as ``tm_mon``, so
  both dates are one month late (normalised: a December date falls in January). Ties go to the
  first row.
* ``shiftSpot``: output (i, j) is the bilinear value at (i - dx, j - dy) in float32, ERR its
  square root; positions outside [0, n) give SCI = ERR = 1. Its right neighbour at the last
  column is the first pixel of the next row (calacs indexes the flat array past the row end);
  past the last row calacs reads outside the array: zeros here (a weight of zero unless the
  shift moves the spot up or right by a fraction of a pixel there).
* ``multlines``: ``F = P*S``; ``FE = sqrt((P*SE)^2 + (S*PE)^2)``; DQ OR-ed (the spot's DQ is 0).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.core.errors import BadInput, MissingReference
from pipeline.science.calib.chip import Chip
from pipeline.science.calib.context import CalContext, reference_is_dummy
from pipeline.science.calib.imageio import find_line
from pipeline.science.calib.steps.refimage import RefBlock
from pipeline.science.calib.tables import open_table, require_columns

_EPOCH = dt.date(1970, 1, 1)


def mktime_seconds(year: int, tm_mon: int, mday: int, hour: int) -> int:
    """``mktime`` (UTC) of a ``struct tm`` with these fields, normalising an out-of-range month/day."""
    year += tm_mon // 12
    first = dt.date(year, tm_mon % 12 + 1, 1)
    return ((first - _EPOCH).days + mday - 1) * 86400 + hour * 3600


def _fields(text: str, what: str, path: Path | None, keyword: str) -> list[int]:
    parts = [p for p in text.replace("/", " ").replace("-", " ").split() if p]
    try:
        return [int(p) for p in parts[:3]]
    except ValueError:
        raise BadInput(f"{what} {text!r} is not a date", path=path, keyword=keyword) from None


def obs_seconds(dateobs: str) -> int:
    """``parseObsDate``: DATE-OBS 'yyyy-mm-dd' with the month passed unshifted as ``tm_mon``."""
    y, m, d = _fields(dateobs, "DATE-OBS", None, "DATE-OBS")
    return mktime_seconds(y, m, d, 0)


def table_seconds(date: str, path: Path) -> int:
    """``parseTabDate``: 'dd/mm/yy' at 12:00, year 2000 + yy, month unshifted."""
    d, m, y = _fields(date, "SPOTTAB DATE", path, "SPOTTAB")
    return mktime_seconds(2000 + y, m, d, 12)


def spot_shift(path: Path, dateobs: str) -> tuple[np.float32, np.float32]:
    """(SHIFTX, SHIFTY) of the SPOTTAB row nearest the observation date (``GetSpotTab``)."""
    with open_table(path, "SPOTTAB") as (_, _hdr, data):
        if data is None or len(data) == 0:
            raise MissingReference(f"SPOTTAB {path.name}: empty table", keyword="SPOTTAB", path=path)
        cols = require_columns(data, ("DATE", "SHIFTX", "SHIFTY"), "SPOTTAB", path)
        when = obs_seconds(dateobs)
        best, best_delta = len(data) - 1, 9999999999
        for i in range(len(data)):
            delta = abs(when - table_seconds(str(data[cols["DATE"]][i]).strip(), path))
            if delta < best_delta:
                best, best_delta = i, delta
        return np.float32(data[cols["SHIFTX"]][best]), np.float32(data[cols["SHIFTY"]][best])


def shift_spot(spot: np.ndarray, dx: np.float32, dy: np.float32) -> tuple[np.ndarray, np.ndarray]:
    """``shiftSpot``/``binterp`` in float32: the shifted spot flat and its ERR."""
    ny, nx = spot.shape
    f32 = np.float32
    xo = (-dx) + np.arange(nx, dtype=f32)                       # xout + i
    yo = (np.arange(ny, dtype=f32) - dy).astype(f32)            # j - dy
    gx, gy = np.meshgrid(xo, yo)
    inside = (gx >= 0) & (gx < nx) & (gy >= 0) & (gy < ny)
    ix = np.where(inside, gx, 0).astype(np.int64)
    iy = np.where(inside, gy, 0).astype(np.int64)
    sx = (np.where(inside, gx, 0) - ix.astype(f32)).astype(f32)
    sy = (np.where(inside, gy, 0) - iy.astype(f32)).astype(f32)
    tx, ty = (f32(1) - sx).astype(f32), (f32(1) - sy).astype(f32)
    flat = np.concatenate([np.asarray(spot, f32).ravel(), np.zeros(nx + 2, f32)])  # past the end: zeros
    base = iy * nx + ix
    p, h21, h12, h22 = flat[base], flat[base + 1], flat[base + nx], flat[base + nx + 1]
    value = ((((tx * ty) * p + (sx * ty) * h21) + (sy * tx) * h12) + (sx * sy) * h22).astype(f32)
    sci = np.where(inside, value, f32(1)).astype(f32)
    with np.errstate(invalid="ignore"):
        err = np.where(inside, np.sqrt(value.astype(np.float64)).astype(f32), f32(1)).astype(f32)
    return sci, err


class SpotFlat:
    """The shifted spot flat of one exposure, cut to the science array like the flat it multiplies."""

    def __init__(self, sci: np.ndarray, err: np.ndarray, name: str) -> None:
        self.sci, self.err, self.name = sci, err, name

    def apply(self, chip: Chip, flat_header: fits.Header, flat_nx: int, block: RefBlock) -> RefBlock:
        """``multlines`` of the flat lines under the science array with the spot lines there."""
        ny, nx = chip.sci.shape
        place = find_line(chip.imset.sci_header, nx, flat_header, flat_nx)
        s = self.sci[place.y0:place.y0 + ny, place.x0:place.x0 + nx]
        se = self.err[place.y0:place.y0 + ny, place.x0:place.x0 + nx]
        if s.shape != block.sci.shape:
            raise MissingReference(f"CFLTFILE {self.name}: spot flat {self.sci.shape[::-1]} does not cover the "
                                   f"science array", keyword="CFLTFILE")
        a, ae = np.asarray(block.sci, np.float32), np.asarray(block.scaled_err(), np.float32)
        a_db = a * se
        b_da = s * ae
        err = np.sqrt((a_db * a_db + b_da * b_da).astype(np.float64)).astype(np.float32)
        return RefBlock((a * s).astype(np.float32), err, block.dq)


def coronagraph_spot(ctx: CalContext) -> SpotFlat | None:
    """The spot flat when calacs's ``cfltcorr`` is PERFORM (CFLTFILE and SPOTTAB named, not dummy)."""
    if "CFLTFILE" not in ctx.primary:
        return None
    cflt = ctx.reference_path("CFLTFILE", optional=True)
    spottab = ctx.reference_path("SPOTTAB", optional=True)
    if cflt is None or spottab is None or reference_is_dummy(ctx, "CFLTFILE"):
        return None
    with fits.open(cflt, memmap=False) as hdul:
        sci = next((h for h in hdul[1:] if h.header.get("EXTNAME", "SCI") == "SCI" and h.header.get("EXTVER", 1) == 1),
                   None)
        if sci is None or sci.data is None:
            raise MissingReference(f"CFLTFILE {cflt.name}: no SCI,1 image", keyword="CFLTFILE", path=cflt)
        data = np.asarray(sci.data, np.float32)
    dx, dy = spot_shift(spottab, str(ctx.primary.get("DATE-OBS", "")))
    ctx.log(f"SPOTTAB:  Using spot shift of: {float(dx):0.2g}  {float(dy):0.2g}")
    return SpotFlat(*shift_spot(data, dx, dy), cflt.name)
