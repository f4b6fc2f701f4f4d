"""PHOTMODE, PHOTCORR (``photmode.c``, ``dophot.c``, ``getphttab.c``) and FLUXCORR (``doflux.c``).

Pixel values are not changed by PHOTCORR; it writes the photometry keywords, as float32 the way
hstio's ``PutKeyFlt`` stores them. For WFC3/UVIS the other chip's row is looked up too, so both
``uvis1`` and ``uvis2`` rows must exist; ``PHTFLAM1`` goes to chip 1's SCI header (and chip 2's for
subarrays), ``PHTFLAM2`` to both. The primary header gets the values of imset 1 (chip 2 of a full
frame), because hstio writes the primary header with the first imset only.
"""

from __future__ import annotations

import numpy as np

from pipeline.science.calib.chip import Chip, Step
from pipeline.science.calib.context import SKIPPED, CalContext
from pipeline.science.calib.tables import PhotValues, read_imphttab

PHOTFNU_K = 3.33564e4


def f32(x: float) -> float:
    return float(np.float32(x))


def header_text_value(x: float) -> float:
    """What a keyword written by hstio's ``PutKeyFlt`` reads back as with ``GetKeyDbl``: the value
    rounded to float32, printed ``%#14.7E`` (8 significant digits, not enough for a float32) and
    parsed as a double."""
    return float(f"{f32(x):.7E}")


def uvis_photmode(chip: int, filt: str, expstart: float) -> str:
    """``WFC3 UVIS<chip> <FILTER> MJD#<EXPSTART:.4f>``; a CLEAR* filter is left out."""
    parts = ["WFC3", f"UVIS{chip}"]
    if not filt.upper().startswith("CLEAR"):
        parts.append(filt)
    parts.append(f"MJD#{expstart:0.4f}")
    return " ".join(parts)


def acs_photmode(filter1: str, filter2: str, expstart: float, lrfwave: float | None = None, *,
                 camera: str = "WFC1", coron: bool = False) -> str:
    """``ACS WFC1 <F1> <F2> MJD#...``: WFC1 for both chips (HRC, SBC for the others, then CORON for
    coronagraphic data); CLEAR and N/A dropped; POL filters become POL_UV / POL_V; a ramp filter
    adds ``#<LRFWAVE>``."""
    parts = ["ACS", camera] + (["CORON"] if coron else [])
    for f in (filter1, filter2):
        name = f.strip().upper()
        if not name or name.startswith("CLEAR") or name == "N/A":
            continue
        if name.startswith("POL"):
            name = "POL_UV" if "UV" in name else "POL_V"
        if name.startswith("FR") and lrfwave is not None:
            name = f"{name}#{lrfwave:0.4f}"
        parts.append(name)
    parts.append(f"MJD#{expstart:0.4f}")
    return " ".join(parts)


def to_obsmode(photmode: str) -> str:
    """``Phot2Obs``: blanks become commas, everything lower case."""
    return photmode.replace(" ", ",").lower()


class PhotCorr(Step):
    switch = "PHOTCORR"
    label = "PHOTCORR"

    def __init__(self, *, uvis: bool = True, camera: str = "WFC1") -> None:
        self.uvis = uvis   # calwf3 also writes PHOTFLAM/PHOTZPT to the primary; calacs (dophot.c) does not
        self.camera = camera

    def photmode(self, ctx: CalContext, chip: Chip) -> str:
        expstart = ctx.key("EXPSTART", float)
        if self.uvis:
            return uvis_photmode(chip.number, ctx.key("FILTER", str), expstart)
        lrf = ctx.primary.get("LRFWAVE")
        return acs_photmode(ctx.key("FILTER1", str, ""), ctx.key("FILTER2", str, ""), expstart,
                            float(lrf) if lrf not in (None, "") else None, camera=self.camera,
                            coron=ctx.key("OBSTYPE", str, "").upper().startswith("CORON"))

    def run(self, ctx: CalContext, chip: Chip) -> None:
        path = ctx.reference_path("IMPHTTAB")
        assert path is not None
        photmode = chip.sci_keywords["PHOTMODE"] = self.photmode(ctx, chip)
        obsmode = to_obsmode(photmode)
        vals = read_imphttab(path, obsmode)
        kw = chip.sci_keywords
        kw.update(PHOTFLAM=f32(vals.values["PHOTFLAM"]), PHOTZPT=f32(vals.photzpt),
                  PHOTPLAM=f32(vals.values["PHOTPLAM"]), PHOTBW=f32(vals.values["PHOTBW"]))
        primary = {"PHOTFLAM": kw["PHOTFLAM"], "PHOTZPT": kw["PHOTZPT"]}
        if self.uvis:
            self._uvis_chip_values(ctx, chip, obsmode, vals, primary, path)
        if chip.extver == 1 and self.uvis:
            ctx.primary_updates.update(primary)
        if not self.uvis and kw["PHOTFLAM"] == f32(-9999.0):  # calacs dophot.c
            ctx.warn("PHOTFLAM = -9999 (extrapolation refused); PHOTCORR skipped")
            ctx.done("PHOTCORR", SKIPPED)
        ctx.log(f"chip {chip.number}: PHOTMODE '{photmode}', PHOTFLAM = {kw['PHOTFLAM']:.6g}")

    def _uvis_chip_values(self, ctx: CalContext, chip: Chip, obsmode: str, vals: PhotValues,
                          primary: dict[str, object], path) -> None:  # type: ignore[no-untyped-def]
        kw = chip.sci_keywords
        mine, other = (f"uvis{chip.number}", f"uvis{3 - chip.number}")
        other_vals = read_imphttab(path, obsmode.replace(mine, other, 1))
        plam = vals.values["PHOTPLAM"]
        if chip.number == 1:
            own = ctx.chip1_flam = vals.values.get("PHTFLAM1", 0.0)
            flam1, flam2 = f32(own), f32(other_vals.values.get("PHTFLAM2", 0.0))
            kw.update(PHTFLAM1=flam1, PHTFLAM2=flam2)
        else:
            own = vals.values.get("PHTFLAM2", 0.0)
            chip1_flam = ctx.chip1_flam = other_vals.values.get("PHTFLAM1", 0.0)
            flam2, flam1 = f32(own), f32(chip1_flam)
            kw["PHTFLAM2"] = flam2
            if chip.subarray:
                kw["PHTFLAM1"] = flam1
        kw["PHOTFNU"] = f32(PHOTFNU_K * own * plam * plam)  # double product, stored as float
        primary.update(PHTFLAM1=flam1, PHTFLAM2=flam2)


def flux_ratio(ctx: CalContext, chip2: Chip, chip1: Chip | None) -> tuple[float, float, float]:
    """(ratio, PHTFLAM1, PHTFLAM2) as ``doFlux`` gets them: PHTFLAM2 read back from chip 2's header
    text, PHTFLAM1 from chip 1's header text, or for a subarray the in-memory double
    ``chip1_flam`` (missing keywords default to 1, as ``GetKeyDbl`` with USE_DEFAULT does)."""
    flam2 = header_text_value(chip2.sci_keywords["PHTFLAM2"]) if "PHTFLAM2" in chip2.sci_keywords else 1.0
    if chip1 is None:
        flam1 = ctx.chip1_flam
    else:
        flam1 = header_text_value(chip1.sci_keywords["PHTFLAM1"]) if "PHTFLAM1" in chip1.sci_keywords else 1.0
    return flam2 / flam1, flam1, flam2


class FluxCorr:
    """Scale chip 2 (imset 1) SCI and ERR by PHTFLAM2/PHTFLAM1 so one PHOTFLAM fits both chips.

    Runs on the whole exposure after every imset is done (``doFlux``); a chip-1 subarray needs no
    scaling. Writes PHTRATIO (double) to the primary and the scaled chip's SCI header.
    """

    switch = "FLUXCORR"

    def run(self, ctx: CalContext, chips: list[Chip]) -> Chip | None:
        first = chips[0]
        if first.subarray and first.number != 2:
            ctx.log("FLUXCORR: no flux scaling needed for chip 1")
            return None
        other = chips[1] if len(chips) > 1 else None
        ratio, flam1, flam2 = flux_ratio(ctx, first, other)
        for arr in (first.sci, first.err):  # float(double(pix) * ratio), no full-size temporary
            np.multiply(arr, ratio, out=arr, dtype=np.float64, casting="unsafe")
        first.sci_keywords.update(PHTRATIO=ratio, PHTFLAM1=flam1)
        ctx.primary_updates.update(PHTRATIO=ratio, PHTFLAM1=flam1, PHTFLAM2=flam2)
        ctx.log(f"FLUXCORR: chip {first.number} scaled by PHTRATIO = {ratio:.8g}")
        return first
