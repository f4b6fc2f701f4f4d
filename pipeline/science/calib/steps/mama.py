"""The MAMA (ACS/SBC) steps of ACS2D (calacs 10.5, ``dodqi.c``, ``dononlin.c``, ``donoise.c``).

Each reproduces calacs's arithmetic, including what a reader would call bugs but the archive's
products carry: the no-row placeholder flag at pixel (1,1), the three Newton steps of the global
non-linearity solved before the ERR array exists, and ``abs((int) v)`` for negative counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.errors import BadInput, MissingReference
from pipeline.science.calib.chip import Chip, Step
from pipeline.science.calib.context import SKIPPED, CalContext
from pipeline.science.calib.imageio import frame_of
from pipeline.science.calib.steps.dqi import SATPIXEL, apply_bpixtab
from pipeline.science.calib.tables import CCDParams, open_table, read_bpixtab, require_columns

#: ``get_nsegn`` defaults for a MAMA: unit gain on every amp, no read noise, no bias.
MAMA_PARAMS = CCDParams(row=0, ccdamp="", chip=1, atodgain=(1.0, 1.0, 1.0, 1.0), readnoise=(0.0, 0.0, 0.0, 0.0),
                        ccdbias=(0.0, 0.0, 0.0, 0.0), mean_gain=1.0, ampx=0, ampy=0, saturate=0.0)
NEWTON_STEPS = 3
#: DQ bit calacs sets at pixel (1,1) when no BPIXTAB row applies.
PLACEHOLDER_FLAG = 64


class MamaDqi(Step):
    """BPIXTAB only (no A-to-D or saturation test for a MAMA); rows match on CCDAMP ``N/A``,
    CCDGAIN -999 or 1 and CCDCHIP -999 or 1. No matching row: DQ |= 64 at 0-based (LTM1_1, LTM2_2)."""

    switch = "DQICORR"
    label = "DQICORR"

    def run(self, ctx: CalContext, chip: Chip) -> None:
        path = ctx.reference_path("BPIXTAB")
        assert path is not None
        runs = read_bpixtab(path, chip=chip.number, ccdamp="", ccdgain=1.0)
        if runs.x0.size:
            apply_bpixtab(chip, runs, shift=False)
            ctx.log(f"DQICORR: {runs.x0.size} BPIXTAB rows applied")
            return
        ltm = frame_of(chip.imset.sci_header).ltm
        x, y = int(ltm[0]), int(ltm[1])
        if 0 <= y < chip.dq.shape[0] and 0 <= x < chip.dq.shape[1]:
            chip.dq[y, x] |= np.uint16(PLACEHOLDER_FLAG)
        ctx.warn(f"no rows from BPIXTAB {path.name} applied to DQ array; placeholder flag set at pixel (1,1)")


@dataclass(frozen=True)
class MlinRow:
    """The MLINTAB row of a detector: count-rate limits (counts/s), dead time (s), flag radius (pixels)."""

    global_limit: float
    local_limit: float
    tau: float
    expand: np.float32
    dummy: bool


def read_mlintab(path: Path, detector: str) -> MlinRow:
    """The first row whose DETECTOR matches (``getlintab.c``); none is a table error."""
    with open_table(path, "MLINTAB") as (_, _thdr, data):
        if data is None:
            raise MissingReference(f"MLINTAB {path.name}: empty table", keyword="MLINTAB", path=path)
        cols = require_columns(data, ("DETECTOR", "GLOBAL_LIMIT", "LOCAL_LIMIT", "TAU", "EXPAND"), "MLINTAB", path)
        for i in range(len(data)):
            if str(data[cols["DETECTOR"]][i]).strip().upper() != detector.upper():
                continue
            pedigree = str(data[cols["PEDIGREE"]][i]).strip().upper() if "PEDIGREE" in cols else ""
            return MlinRow(float(data[cols["GLOBAL_LIMIT"]][i]), float(data[cols["LOCAL_LIMIT"]][i]),
                           float(data[cols["TAU"]][i]), np.float32(data[cols["EXPAND"]][i]),
                           pedigree.startswith("DUMMY"))
    raise MissingReference(f"MLINTAB {path.name}: no row for DETECTOR {detector}", keyword="MLINTAB", path=path)


def global_linearity_ratio(globrate: float, tau: float) -> float:
    """Solve ``y = x exp(-tau x)`` for the true rate x by exactly three Newton steps from x = y;
    returns ``x/y`` (1 for y <= 0), in double as calacs does."""
    y = float(globrate)
    if y <= 0:
        return 1.0
    x = y
    for _ in range(NEWTON_STEPS):
        e = float(np.exp(-tau * x))
        x = x + (y - x * e) / ((1.0 - tau * x) * e)
    return x / y


def disc_offsets(expand: np.float32) -> list[tuple[int, int]]:
    """Offsets flagged around a local non-linearity centre: half-width ``(int)(EXPAND+0.5)``,
    kept where ``float(di^2+dj^2) <= EXPAND*EXPAND`` (float)."""
    ie = int(np.float32(expand) + np.float32(0.5))
    r2 = np.float32(expand) * np.float32(expand)
    return [(di, dj) for dj in range(-ie, ie + 1) for di in range(-ie, ie + 1)
            if np.float32(di * di + dj * dj) <= r2]


def flag_local(sci: np.ndarray, dq: np.ndarray, limit: float, expand: np.float32) -> int:
    """DQ |= 256 in the disc around every pixel with SCI > limit (SCI promoted to double); returns
    the number of centres."""
    centres = sci.astype(np.float64) > limit
    ncentre = int(np.count_nonzero(centres))
    if ncentre == 0:
        return 0
    ny, nx = sci.shape
    hit = np.zeros(sci.shape, bool)
    for di, dj in disc_offsets(expand):
        src = centres[max(-dj, 0):ny - max(dj, 0), max(-di, 0):nx - max(di, 0)]
        hit[max(dj, 0):ny - max(-dj, 0), max(di, 0):nx - max(-di, 0)] |= src
    np.bitwise_or(dq, np.uint16(SATPIXEL), out=dq, where=hit)
    return ncentre


class NonLinearity(Step):
    """GLINCORR and LFLGCORR in one routine (``dononlin.c``), run if either is PERFORM.

    GLOBLIM says whether GLOBRATE exceeded the table's global limit; if it did, no correction is
    made even with GLINCORR = PERFORM. The local flags use the globally corrected SCI either way.
    """

    label = "GLINCORR/LFLGCORR"

    def enabled(self, ctx: CalContext) -> bool:
        return ctx.perform("GLINCORR") or ctx.perform("LFLGCORR")

    def run(self, ctx: CalContext, chip: Chip) -> None:
        path = ctx.reference_path("MLINTAB")
        assert path is not None
        row = read_mlintab(path, ctx.detector)
        if row.dummy:
            ctx.warn(f"MLINTAB {path.name}: PEDIGREE = DUMMY; GLINCORR and LFLGCORR skipped")
            ctx.done("GLINCORR", SKIPPED)
            ctx.done("LFLGCORR", SKIPPED)
            return
        globrate = globrate_of(ctx, chip)
        exceeded = globrate > row.global_limit
        chip.sci_keywords["GLOBLIM"] = "EXCEEDED" if exceeded else "NOT-EXCEEDED"
        if exceeded:
            ctx.warn(f"GLOBRATE {globrate:g} exceeds the global limit {row.global_limit:g}: "
                     "no linearity correction made")
        elif ctx.perform("GLINCORR"):
            ratio = np.float32(global_linearity_ratio(globrate, row.tau))
            np.multiply(chip.sci, ratio, out=chip.sci)
            np.multiply(chip.err, ratio, out=chip.err)
            ctx.log(f"GLINCORR: GLOBRATE {globrate:g} counts/s, factor {ratio:.8g}")
        if ctx.perform("LFLGCORR"):
            limit = row.local_limit * ctx.key("EXPTIME", float)
            n = flag_local(chip.sci, chip.dq, limit, row.expand)
            ctx.log(f"LFLGCORR: {n} pixels above the local limit {limit:g} counts, flagged within "
                    f"{float(row.expand):g} pixels")
        ctx.done("GLINCORR")
        ctx.done("LFLGCORR")


def globrate_of(ctx: CalContext, chip: Chip) -> float:
    """GLOBRATE from the SCI header: required for a MAMA, no default."""
    value = chip.imset.sci_header.get("GLOBRATE")
    if value is None:
        raise BadInput("required keyword GLOBRATE is missing from the SCI header", path=ctx.path,
                       keyword="GLOBRATE")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise BadInput(f"keyword GLOBRATE = {value!r} is not a number", path=ctx.path, keyword="GLOBRATE") from None


def init_mama_err(ctx: CalContext, chip: Chip) -> None:
    """ERR = max(sqrt(v), 1), v = SCI with negatives replaced by ``abs((int) v)``; only if ERR is
    all zero. The square root is a double one stored as float."""
    if np.any(chip.err):
        return
    v = chip.sci.astype(np.float64)
    neg = v < 0
    nneg = int(np.count_nonzero(neg))
    v[neg] = np.abs(np.trunc(v[neg]))
    chip.err[...] = np.maximum(np.sqrt(v), 1.0)
    if nneg:
        ctx.warn(f"{nneg} negative values found; their ERR uses abs((int) value)")
