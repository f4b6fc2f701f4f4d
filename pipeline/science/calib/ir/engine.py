"""The WF3IR driver: checks, the step chain in calwf3's order, ``_ima`` and ``_flt``."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.core.errors import BadInput, MissingReference
from pipeline.science.calib.context import COMPLETE, OMIT, SKIPPED, CalContext, check_reference, reference_is_dummy
from pipeline.science.calib.ir.early import BlevCorr, DqiCorr, NoisCorr, ZoffCorr, ZsigCorr, keep_zero_read
from pipeline.science.calib.ir.late import FLAT_TYPES, CrCorr, DarkCorr, FlatCorr, NlinCorr, PhotCorr, UnitCorr
from pipeline.science.calib.ir.output import write_flt, write_ima
from pipeline.science.calib.ir.ramp import Ramp, read_ramp
from pipeline.science.calib.ir.reftables import read_ir_detector
from pipeline.science.calib.ir.state import IRRun, IRStep
from pipeline.science.calib.jit import kernel_threads
from pipeline.science.calib.tables import pedigree_is_dummy

LogSink = Callable[[str, str], None]
#: ``wf3ir/getirsw.c`` (PHOTCORR, not calwf3's PHOTCALC, decides). Only PERFORM runs a step: a
#: COMPLETE DQICORR or PHOTCORR is not repeated (compared with calwf3.e).
SWITCHES = ("DQICORR", "ZSIGCORR", "BLEVCORR", "ZOFFCORR", "NLINCORR", "DARKCORR", "FLATCORR", "UNITCORR",
            "PHOTCORR", "CRCORR", "RPTCORR")
#: Steps in ``DoIR`` order after DQICORR (the zero read is kept aside between them).
CHAIN: tuple[IRStep, ...] = (ZsigCorr(), BlevCorr(), ZoffCorr(), NoisCorr(), NlinCorr(), DarkCorr(), PhotCorr(),
                             UnitCorr(), CrCorr(), FlatCorr())


def _needs(ctx: CalContext, switch: str, keyword: str, filetype: str | None, *, table: bool = False) -> None:
    """Resolve and check the reference of a switch that is on; a DUMMY one turns it SKIPPED."""
    if not ctx.perform(switch):
        return
    ctx.reference_path(keyword)
    if reference_is_dummy(ctx, keyword):
        ctx.warn(f"{keyword} has PEDIGREE = DUMMY; {switch} is skipped")
        ctx.done(switch, SKIPPED)
        return
    check_reference(ctx, keyword, filetype=filetype, table=table)


def validate(ctx: CalContext, *, repeat: bool = False) -> None:
    """Keywords, switches and references as ``GetIRRef``/``getIRFlags`` check them; ``repeat``: a
    member of a REPEAT association of >= 2 exposures keeps RPTCORR for the sum (``procir.c``)."""
    ctx.read_switches(SWITCHES)
    for kw, kind in (("ROOTNAME", str), ("FILTER", str), ("EXPTIME", float), ("EXPSTART", float),
                     ("EXPEND", float), ("SUBARRAY", bool), ("CCDGAIN", float), ("NSAMP", int),
                     ("SAMP_SEQ", str), ("SUBTYPE", str)):
        ctx.key(kw, kind)
    for name in SWITCHES:
        if ctx.switches[name] == COMPLETE:
            ctx.log(f"{name} already COMPLETE: not repeated")
    if ctx.perform("RPTCORR") and not repeat:
        ctx.switches["RPTCORR"] = OMIT    # a single exposure has nothing to combine
    path = ctx.reference_path("CCDTAB")
    assert path is not None
    check_reference(ctx, "CCDTAB", filetype="CCD PARAMETERS", table=True)
    if pedigree_is_dummy(fits.getheader(path, 0)):
        raise MissingReference(f"CCDTAB {path.name} is a dummy table", keyword="CCDTAB", path=path)
    check_reference(ctx, "OSCNTAB", filetype="OVERSCAN", table=True)
    if ctx.perform("DQICORR") and ctx.has_value("BPIXTAB"):
        check_reference(ctx, "BPIXTAB", filetype="BAD PIXELS", table=True)
    for switch in ("ZSIGCORR", "NLINCORR"):
        _needs(ctx, switch, "NLINFILE", "LINEARITY COEFFICIENTS")
    _needs(ctx, "DARKCORR", "DARKFILE", "DARK")
    if ctx.perform("FLATCORR"):
        named = [kw for kw in FLAT_TYPES if ctx.has_value(kw)]
        if not named:
            raise MissingReference("FLATCORR = PERFORM but PFLTFILE, DFLTFILE and LFLTFILE are all N/A",
                                   keyword="PFLTFILE")
        for kw in named:
            check_reference(ctx, kw, filetype=FLAT_TYPES[kw], filters=("FILTER",))
    if ctx.perform("PHOTCORR"):
        ctx.reference_path("IMPHTTAB")
    if ctx.perform("CRCORR"):
        _needs(ctx, "CRCORR", "CRREJTAB", "COSMIC RAY REJECTION", table=True)
        if ctx.switches["CRCORR"] == SKIPPED:
            raise MissingReference("CRREJTAB is a dummy table", keyword="CRREJTAB")


def _start(ramp: Ramp, ctx: CalContext) -> IRRun:
    hdr = ramp.headers[0].sci
    ny, nx = ramp.shape
    ccdtab, oscntab = ctx.reference_path("CCDTAB"), ctx.reference_path("OSCNTAB")
    assert ccdtab is not None and oscntab is not None
    det = read_ir_detector(ccdtab, oscntab, ccdgain=ctx.key("CCDGAIN", float), chip=int(hdr.get("CCDCHIP", 1)),
                           nx=nx, ny=ny)
    for n, a in enumerate("ABCD"):
        ctx.primary_updates[f"ATODGN{a}"] = float(np.float32(det.atodgain[n]))
        ctx.primary_updates[f"READNSE{a}"] = float(np.float32(det.readnoise[n]))
    return IRRun(ctx=ctx, ramp=ramp, det=det)


def process(raw: Path, *, site: object | None = None, environ: Mapping[str, str] | None = None,
            log: LogSink | None = None, repeat: bool = False) -> IRRun:
    """Run the chain on a raw ramp in memory (``repeat``: see :func:`validate`)."""
    ramp = read_ramp(raw)
    if int(ramp.primary.get("NSAMP", 0)) != ramp.nsamp:
        raise BadInput("NSAMP does not match the imsets read", path=raw, keyword="NSAMP")
    ctx = CalContext(path=raw, primary=ramp.primary, detector="IR", site=site,
                     environ=dict(os.environ if environ is None else environ), log_sink=log)
    validate(ctx, repeat=repeat)
    ctx.log(f"{ramp.rootname}: WFC3/IR MULTIACCUM, {ramp.nsamp} reads, {ctx.key('SAMP_SEQ', str)} "
            "(built-in engine)")
    run = _start(ramp, ctx)
    dqi = DqiCorr()
    if dqi.enabled(run):
        dqi.run(run)
    keep_zero_read(run)
    with kernel_threads(ctx.environ):
        for step in CHAIN:
            if step.enabled(run):
                step.run(run)
    for name in SWITCHES:
        if not (repeat and name == "RPTCORR"):  # calwf3 leaves a REPEAT member's RPTCORR at PERFORM
            ctx.done(name)
    return run


def calibrate_ir(raw: Path, outdir: Path, *, site: object | None = None, environ: Mapping[str, str] | None = None,
                 log: LogSink | None = None, repeat: bool = False) -> Path:
    """raw -> ``_ima`` and ``_flt`` in ``outdir``; returns the ``_flt`` path."""
    run = process(raw, site=site, environ=environ, log=log, repeat=repeat)
    ramp, det, ctx = run.ramp, run.det, run.ctx
    root = ramp.rootname
    ima = write_ima(ramp, det, outdir / f"{root}_ima.fits", switches=ctx.switches, updates=ctx.primary_updates)
    ctx.log(f"wrote {ima.name}")
    last = ramp.nsamp - 1
    if run.cr is not None:
        arrays = (run.cr.sci, run.cr.err, run.cr.dq, run.cr.samp, run.cr.time)
    else:
        arrays = (ramp.sci[last], ramp.err[last], ramp.dq[last], ramp.samp[last], ramp.time[last])
    flt = write_flt(ramp, det, arrays, outdir / f"{root}_flt.fits", switches=ctx.switches,
                    updates=ctx.primary_updates)
    ctx.log(f"wrote {flt.name}")
    return flt
