"""ACS/SBC (MAMA) with the built-in engine: calacs's ProcessMAMA, i.e. ACS2D alone (Part A of the notes).

Order per imset: DQICORR (BPIXTAB only), GLINCORR/LFLGCORR (before ERR exists), BUNIT set to
ELECTRONS (gain 1: the counts are unchanged), ERR = max(sqrt(v), 1), DARKCORR with DARKTIME = 0
(the dark's DQ is OR-ed, nothing is subtracted: calacs never reads DARKTIME for SBC), FLATCORR,
PHOTMODE/PHOTCORR, statistics. CRCORR, SHADCORR and FLSHCORR are forced off.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from astropy.io import fits

from pipeline.core.errors import MissingReference, Unsupported
from pipeline.core.fsutil import atomic_path, copy_atomic
from pipeline.science.calib.chip import Chip
from pipeline.science.calib.context import OMIT, PERFORM, SKIPPED, CalContext, reference_is_dummy
from pipeline.science.calib.geometry import Overscan
from pipeline.science.calib.imageio import Exposure
from pipeline.science.calib.steps.flat import FLATS, FlatCorr
from pipeline.science.calib.steps.mama import MAMA_PARAMS, MamaDqi, NonLinearity, init_mama_err
from pipeline.science.calib.steps.phot import PhotCorr
from pipeline.science.calib.steps.stats import finish_imset
from pipeline.science.calib.steps.subtract import DarkCorr

SWITCHES = ("DQICORR", "GLINCORR", "LFLGCORR", "DARKCORR", "FLSHCORR", "FLATCORR", "SHADCORR", "PHOTCORR",
            "CRCORR", "RPTCORR", "EXPSCORR", "DRIZCORR")
TWOD_SWITCHES = ("DQICORR", "GLINCORR", "LFLGCORR", "DARKCORR", "FLATCORR", "PHOTCORR")
#: A raw-header PERFORM in any of these makes calacs's ``SciFlags`` run ACS2D on a MAMA exposure.
BASIC_2D = ("DQICORR", "GLINCORR", "LFLGCORR", "DARKCORR", "FLSHCORR", "FLATCORR", "SHADCORR", "PHOTCORR")


def wants_2d(primary: Mapping[str, object]) -> bool:
    """Whether calacs's ``ProcessMAMA`` runs ACS2D at all (``sci_basic_2d``)."""
    return any(str(primary.get(s, "")).strip().upper() == PERFORM for s in BASIC_2D)


def copy_unprocessed(raw: Path, out: Path) -> Path:
    """``ProcessMAMA`` with no ACS2D switch at PERFORM: "No processing performed on image.", the raw
    is copied byte for byte to the ``_flt`` (for ACSSUM) with only FILENAME updated; calacs exits 0."""
    with atomic_path(out) as tmp:
        copy_atomic(raw, tmp)
        with fits.open(tmp, mode="update") as hdul:
            hdul[0].header["FILENAME"] = out.name
    return out


#: The reference table each table-driven ACS2D step needs (``Get2dFlags``: DUMMY turns it off).
STEP_TABLES = {"DQICORR": "BPIXTAB", "GLINCORR": "MLINTAB", "LFLGCORR": "MLINTAB", "PHOTCORR": "IMPHTTAB"}


class NothingToDo(Exception):
    """calacs's NOTHING_TO_DO: an ACS2D switch is PERFORM but every step's reference has PEDIGREE =
    DUMMY; ``Get2dFlags`` counts no step, calacs writes no product ("CALACS did NOT process") and
    exits 0."""


class SbcFlags:
    """No exposure-level decision beyond the switches."""


def validate(ctx: CalContext) -> SbcFlags:
    """Keywords, switches and references as ``getACSKeys``/``Get2dFlags`` check them for a MAMA."""
    ctx.read_switches(SWITCHES)
    ctx.refuse_both_cr_switches()
    for kw, kind in (("ROOTNAME", str), ("EXPTIME", float), ("EXPSTART", float), ("EXPEND", float),
                     ("SUBARRAY", bool)):
        ctx.key(kw, kind)
    if ctx.perform("CRCORR"):
        ctx.warn("CRCORR will be omitted because detector is MAMA")
        ctx.switches["CRCORR"] = OMIT
    for switch in ("SHADCORR", "FLSHCORR"):
        if ctx.switches[switch] == PERFORM:
            ctx.switches[switch] = OMIT
    if ctx.perform("DQICORR"):
        ctx.reference_path("BPIXTAB")  # must be a real file for a MAMA
    if ctx.perform("GLINCORR") or ctx.perform("LFLGCORR"):
        ctx.reference_path("MLINTAB")
    if ctx.perform("DARKCORR"):
        ctx.reference_path("DARKFILE")
        if reference_is_dummy(ctx, "DARKFILE"):
            ctx.warn("DARKFILE has PEDIGREE = DUMMY; DARKCORR skipped")
            ctx.done("DARKCORR", SKIPPED)
    if ctx.perform("FLATCORR"):
        for kw in FLATS:
            if kw not in ctx.primary:
                raise MissingReference(f"required keyword {kw} is missing (FLATCORR = PERFORM)", path=ctx.path,
                                       keyword=kw)
        named = [kw for kw in FLATS if ctx.has_value(kw)]
        if not named:
            raise MissingReference("FLATCORR = PERFORM but PFLTFILE, DFLTFILE and LFLTFILE are all N/A",
                                   path=ctx.path, keyword="PFLTFILE")
        if "LFLTFILE" in named:
            raise Unsupported("LFLTFILE is not N/A: calacs cannot apply an ACS L-flat (it crashes); set it to N/A",
                              path=ctx.path, keyword="LFLTFILE")
        if all(reference_is_dummy(ctx, kw) for kw in named):
            ctx.warn("every flat has PEDIGREE = DUMMY; FLATCORR skipped")
            ctx.done("FLATCORR", SKIPPED)
    if ctx.perform("PHOTCORR"):
        ctx.reference_path("IMPHTTAB")
    for switch, table in STEP_TABLES.items():  # GetTabRef: a DUMMY table turns its step off
        if ctx.perform(switch) and reference_is_dummy(ctx, table):
            ctx.warn(f"{table} has PEDIGREE = DUMMY; {switch} skipped")
            ctx.done(switch, SKIPPED)
    if not any(ctx.perform(s) for s in TWOD_SWITCHES):
        ctx.warn("No calibration switch was set to PERFORM, or all reference files had PEDIGREE = DUMMY.")
        raise NothingToDo(f"{ctx.path.name}: every ACS2D step is off or has a DUMMY reference: calacs "
                          "writes no product (\"CALACS did NOT process\") and exits 0")
    return SbcFlags()


def ccd(ctx: CalContext, exposure: Exposure, flags: SbcFlags) -> Exposure:
    """A MAMA has no ACSCCD: the raw goes straight to ACS2D."""
    ctx.log("MAMA detector: no ACSCCD processing")
    return exposure


def make_chip(ctx: CalContext, exposure: Exposure, index: int) -> Chip:
    imset = exposure.imsets[index]
    return Chip(imset=imset, ccd=MAMA_PARAMS, oscn=Overscan.none(), ampx=0, ampy=0,
                subarray=ctx.key("SUBARRAY", bool),
                sdqflags=int(imset.sci_header.get("SDQFLAGS", 65535)) & 0xFFFF,
                ncombine=max(int(imset.sci_header.get("NCOMBINE", 1)), 1))


def twod(ctx: CalContext, exposure: Exposure, flags: SbcFlags) -> list[Chip]:
    """ACS2D for each imset of a MAMA exposure."""
    chips = []
    for index in range(len(exposure.imsets)):
        chip = make_chip(ctx, exposure, index)
        for step in (MamaDqi(), NonLinearity()):
            if step.enabled(ctx):
                step.run(ctx, chip)
        for kw in (chip.sci_keywords, chip.err_keywords):
            kw["BUNIT"] = "ELECTRONS"  # gain 1: counts relabelled, as calacs does
        init_mama_err(ctx, chip)
        if ctx.perform("DARKCORR"):
            ctx.log("Darktime from header 0.000000: the SBC dark subtracts nothing, only its DQ is used")
            DarkCorr(electrons=True, darktime=0.0).run(ctx, chip)
        if ctx.perform("FLATCORR"):
            FlatCorr(to_electrons=False).run(ctx, chip)
        phot = PhotCorr(uvis=False, camera="SBC")
        chip.sci_keywords["PHOTMODE"] = phot.photmode(ctx, chip)
        if phot.enabled(ctx):
            phot.run(ctx, chip)
        chips.append(finish_imset(chip))
    for switch in (*TWOD_SWITCHES, "EXPSCORR"):
        ctx.done(switch)
    return chips

