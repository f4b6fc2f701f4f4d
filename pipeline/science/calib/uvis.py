"""WFC3/UVIS with the built-in engine: calwf3's WF3CCD and WF32D flows (``procccd.c``).

WF3CCD, per imset, on the untrimmed raw image in DN: CCDTAB and OSCNTAB rows, ERR init, DQICORR,
BLEVCORR, BIASCORR, the full-well saturation image, sink pixels, FLSHCORR, then the overscan trim
(only if BLEVCORR ran). WF32D, per imset, on the trimmed image: DQICORR again, DARKCORR, FLATCORR
(into electrons), SHADCORR, PHOTMODE/PHOTCORR and the statistics; FLUXCORR once both chips are done.
CRCORR (:mod:`pipeline.science.calib.crrej`) sits between the two for CR-SPLIT/REPEAT associations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.io import fits

from pipeline.core.errors import BadInput, MissingReference, Unsupported
from pipeline.science.calib.chip import Chip
from pipeline.science.calib.context import COMPLETE, SKIPPED, CalContext, check_reference, reference_is_dummy
from pipeline.science.calib.geometry import Overscan, find_overscan
from pipeline.science.calib.imageio import Exposure, Imset, frame_of
from pipeline.science.calib.perchip import map_chips
from pipeline.science.calib.steps.blev import WFC3 as BLEV_WFC3
from pipeline.science.calib.steps.blev import BlevCorr
from pipeline.science.calib.steps.dqi import DqiCorr, FullWellSat
from pipeline.science.calib.steps.flat import FLATS, FlatCorr, ShadCorr
from pipeline.science.calib.steps.noise import ErrInit
from pipeline.science.calib.steps.phot import FluxCorr, PhotCorr, uvis_photmode
from pipeline.science.calib.steps.sink import SinkPixels
from pipeline.science.calib.steps.stats import compute_stats, write_keywords
from pipeline.science.calib.steps.subtract import BiasCorr, DarkCorr, FlshCorrUvis
from pipeline.science.calib.steps.trim import trim_overscan
from pipeline.science.calib.tables import pedigree_is_dummy, read_ccdtab, read_oscntab

SWITCHES = ("DQICORR", "ATODCORR", "BLEVCORR", "BIASCORR", "FLSHCORR", "CRCORR", "RPTCORR", "DARKCORR",
            "FLATCORR", "SHADCORR", "PHOTCORR", "FLUXCORR", "PCTECORR", "EXPSCORR", "DRIZCORR")
CCD_SWITCHES = ("DQICORR", "ATODCORR", "BLEVCORR", "BIASCORR", "FLSHCORR")
TWOD_SWITCHES = ("DQICORR", "DARKCORR", "FLATCORR", "SHADCORR", "PHOTCORR")


@dataclass
class UvisFlags:
    """Exposure-level decisions taken before any pixel is touched (``GetFlags``/``checkBias``)."""

    scalar_saturation: bool


def validate(ctx: CalContext) -> UvisFlags:
    """Header keywords, switches and reference files, checked as calwf3 does before WF3CCD.

    Missing or mismatching references raise :class:`MissingReference` naming the keyword; a bad
    header value raises :class:`BadInput` naming the keyword.
    """
    ctx.read_switches(SWITCHES)
    ctx.refuse_both_cr_switches()
    if ctx.perform("FLUXCORR") and not ctx.perform("PHOTCORR"):  # GetCCDSws: a HEADER_PROBLEM in calwf3
        raise BadInput(f"FLUXCORR = PERFORM needs PHOTCORR = PERFORM (it sets PHTFLAM1/2), not "
                       f"{ctx.switches.get('PHOTCORR')}", path=ctx.path, keyword="PHOTCORR")
    for kw, kind in (("ROOTNAME", str), ("FILTER", str), ("EXPTIME", float), ("EXPSTART", float),
                     ("EXPEND", float), ("SUBARRAY", bool), ("CCDAMP", str), ("CCDGAIN", float),
                     ("FLASHSTA", str)):
        ctx.key(kw, kind)
    if ctx.key("EXPTIME", float) < 0:
        raise BadInput(f"EXPTIME = {ctx.key('EXPTIME', float)} is negative", path=ctx.path, keyword="EXPTIME")
    ccdamp = ctx.key("CCDAMP", str)
    if not ccdamp or any(a not in "ABCD" for a in ccdamp):
        raise BadInput(f"CCDAMP = {ccdamp!r} must be letters from A-D", path=ctx.path, keyword="CCDAMP")
    if ctx.perform("ATODCORR"):
        raise Unsupported("ATODCORR = PERFORM: analog-to-digital correction is not implemented by the "
                          "built-in engine (use the hstcal engine)", path=ctx.path, keyword="ATODCORR")
    _check_references(ctx)
    return UvisFlags(scalar_saturation=_scalar_saturation(ctx))


def _require(ctx: CalContext, keyword: str, **checks: object) -> bool:
    """Resolve, check type/detector/...; return False (and warn) if the file is a DUMMY."""
    ctx.reference_path(keyword)
    if reference_is_dummy(ctx, keyword):
        ctx.warn(f"{keyword} has PEDIGREE = DUMMY; the step is skipped")
        return False
    check_reference(ctx, keyword, **checks)  # type: ignore[arg-type]
    return True


def _skip_if_dummy(ctx: CalContext, switch: str, keyword: str, **checks: object) -> None:
    if ctx.perform(switch) and not _require(ctx, keyword, **checks):
        ctx.done(switch, SKIPPED)


def _check_references(ctx: CalContext) -> None:
    path = ctx.reference_path("CCDTAB")
    assert path is not None
    check_reference(ctx, "CCDTAB", filetype="CCD PARAMETERS", table=True)
    if pedigree_is_dummy(fits.getheader(path, 0)):
        raise MissingReference(f"CCDTAB {path.name} is a dummy table", keyword="CCDTAB", path=path)
    if any(ctx.perform(s) for s in CCD_SWITCHES):
        check_reference(ctx, "OSCNTAB", filetype="OVERSCAN", table=True)
    if ctx.perform("DQICORR"):
        if "BPIXTAB" not in ctx.primary:
            raise MissingReference("keyword BPIXTAB is missing (it must exist; N/A is allowed)", keyword="BPIXTAB")
        if ctx.has_value("BPIXTAB"):
            check_reference(ctx, "BPIXTAB", filetype="BAD PIXELS", table=True)
        ctx.reference_path("SNKCFILE")
    _skip_if_dummy(ctx, "BIASCORR", "BIASFILE", filetype="BIAS", detector=False, gain=True)
    _skip_if_dummy(ctx, "FLSHCORR", "FLSHFILE", filetype="POST FLASH", detector=False)
    _skip_if_dummy(ctx, "DARKCORR", "DARKFILE", filetype="DARK")
    if ctx.perform("FLATCORR"):
        for kw in FLATS:
            if kw not in ctx.primary:
                raise MissingReference(f"keyword {kw} is missing (all three flat keywords must exist)", keyword=kw)
        named = [kw for kw in FLATS if ctx.has_value(kw)]
        if not named:
            raise MissingReference("FLATCORR = PERFORM but PFLTFILE, DFLTFILE and LFLTFILE are all N/A",
                                   keyword="PFLTFILE")
        types = {"PFLTFILE": "PIXEL-TO-PIXEL FLAT", "DFLTFILE": "DELTA FLAT", "LFLTFILE": "LARGE SCALE FLAT"}
        for kw in named:
            check_reference(ctx, kw, filetype=types[kw], filters=("FILTER",))
    _skip_if_dummy(ctx, "SHADCORR", "SHADFILE", filetype="SHUTTER SHADING")
    if ctx.perform("PHOTCORR"):
        ctx.reference_path("IMPHTTAB")


def _scalar_saturation(ctx: CalContext) -> bool:
    """calwf3's ``scalar_satflag``: the SATUFILE image path needs BIASCORR and a readable SATUFILE."""
    if not ctx.perform("BIASCORR") or not ctx.has_value("SATUFILE"):
        return True
    try:
        ctx.ref_image("SATUFILE")
    except MissingReference as exc:
        ctx.warn(f"{exc.line()}; a single threshold is used for full-well saturation")
        return True
    return False


# ------------------------------------------------------------------------------------------ chips


def make_chip(ctx: CalContext, imset: Imset, *, raw: bool) -> Chip:
    """Attach the CCDTAB row (and, on the raw image, the OSCNTAB layout) to an imset."""
    hdr = imset.sci_header
    frame = frame_of(hdr)
    binaxis = (int(hdr.get("BINAXIS1", ctx.primary.get("BINAXIS1", 1))),
               int(hdr.get("BINAXIS2", ctx.primary.get("BINAXIS2", 1))))
    ccdamp = ctx.key("CCDAMP", str)
    ccdtab = ctx.reference_path("CCDTAB")
    assert ccdtab is not None
    nx = imset.sci.shape[1]
    ccd = read_ccdtab(ccdtab, ccdamp=ccdamp, chip=imset.chip, ccdgain=ctx.key("CCDGAIN", float),
                      binaxis=binaxis, ccdofst=[ctx.key(f"CCDOFST{a}", int, 3) for a in "ABCD"], dimx=nx)
    subarray = ctx.key("SUBARRAY", bool)
    oscn = Overscan.none()
    if raw and ctx.has_value("OSCNTAB"):
        path = ctx.reference_path("OSCNTAB")
        assert path is not None
        row = read_oscntab(path, ccdamp=ccdamp, chip=imset.chip, binaxis=binaxis)
        assert row is not None  # calwf3 tables: no match is an error, raised by the reader
        oscn = find_overscan(row, nx=nx, subarray=subarray, offsetx=frame.ltv[0])
    ncombine = int(hdr.get("NCOMBINE", 1))
    if ncombine < 1:
        ctx.warn(f"NCOMBINE = {ncombine}, reset to one")
        ncombine = 1
    return Chip(imset=imset, ccd=ccd, oscn=oscn, ampx=ccd.ampx, ampy=ccd.ampy, subarray=subarray,
                sdqflags=int(hdr.get("SDQFLAGS", 65535)) & 0xFFFF, ncombine=ncombine)


def _apply_chip_keywords(chip: Chip) -> None:
    chip.imset.sci_header.update(chip.sci_keywords)
    chip.imset.err_header.update(chip.err_keywords)


def ccd(ctx: CalContext, exposure: Exposure, flags: UvisFlags) -> Exposure:
    """WF3CCD: basic CCD reduction of every imset; returns the (trimmed, if BLEVCORR ran) exposure in DN."""
    steps_before = [ErrInit(), DqiCorr(raw=True, scalar_saturation=flags.scalar_saturation),
                    BlevCorr(BLEV_WFC3), BiasCorr()]
    out = Exposure(path=exposure.path, primary=exposure.primary)
    blev = ctx.perform("BLEVCORR")

    def one(imset: Imset) -> tuple[Chip, Imset]:
        chip = make_chip(ctx, imset, raw=True)
        for step in steps_before:
            if step.enabled(ctx):
                step.run(ctx, chip)
        if ctx.perform("BIASCORR") and blev and not flags.scalar_saturation:
            FullWellSat().run(ctx, chip)
        if ctx.perform("DQICORR"):
            SinkPixels().run(ctx, chip)
        if ctx.perform("FLSHCORR"):
            FlshCorrUvis().run(ctx, chip)
        _apply_chip_keywords(chip)
        return chip, (trim_overscan(chip, serial_virtual=True) if blev else chip.imset)

    for chip, imset in map_chips(ctx, one, exposure.imsets):
        if chip.extver == 1:
            for n, a in enumerate("ABCD"):
                ctx.primary_updates[f"ATODGN{a}"] = float(np.float32(chip.ccd.atodgain[n]))
                ctx.primary_updates[f"READNSE{a}"] = float(np.float32(chip.ccd.readnoise[n]))
        for amp, level in chip.blev.items():
            if f"BIASLEV{amp}" in ctx.primary and level != 0.0:  # existing keywords, non-zero levels only
                ctx.primary_updates[f"BIASLEV{amp}"] = float(np.float32(level))
        out.imsets.append(imset)
    for switch in CCD_SWITCHES:
        ctx.done(switch)
    return out


def twod(ctx: CalContext, exposure: Exposure, flags: UvisFlags) -> list[Chip]:
    """WF32D: basic 2-D reduction of a trimmed exposure (``_blv_tmp`` or ``_crj_tmp``); then FLUXCORR."""
    if ctx.switches.get("BLEVCORR") != COMPLETE and any(ctx.perform(s) for s in TWOD_SWITCHES):
        raise BadInput("overscan region not trimmed: WF32D needs BLEVCORR = COMPLETE", path=ctx.path,
                       keyword="BLEVCORR")
    steps = [ErrInit(), DqiCorr(raw=False, scalar_saturation=flags.scalar_saturation), DarkCorr(),
             FlatCorr(), ShadCorr(), PhotCorr()]
    def one(imset: Imset) -> Chip:
        frame = frame_of(imset.sci_header)
        if frame.ltv[0] > 1 or frame.ltv[1] > 1:
            raise BadInput("overscan region not trimmed (LTV > 1)", path=ctx.path, keyword="LTV1")
        chip = make_chip(ctx, imset, raw=False)
        for step in steps:
            if step.enabled(ctx):
                step.run(ctx, chip)
        if not ctx.perform("PHOTCORR"):
            chip.sci_keywords["PHOTMODE"] = uvis_photmode(chip.number, ctx.key("FILTER", str),
                                                          ctx.key("EXPSTART", float))
        return chip

    chips = map_chips(ctx, one, exposure.imsets)
    # statistics before FLUXCORR: calwf3's doFlux recomputes the scaled chip's, then reads its SCI and
    # ERR headers back from the file (openUpdateImage) before writing them, so the _flt keeps the
    # unscaled chip's GOODMIN ... SNRMEAN (checked against calwf3.e 3.7.3)
    map_chips(ctx, compute_stats, chips)
    if ctx.perform("FLUXCORR"):
        FluxCorr().run(ctx, chips)
    for chip in chips:
        write_keywords(chip)
    for switch in (*TWOD_SWITCHES, "FLUXCORR", "EXPSCORR"):
        ctx.done(switch)
    return chips
