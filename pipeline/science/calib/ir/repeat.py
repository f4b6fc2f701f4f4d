"""RPTCORR for WFC3/IR: the members' ``_flt`` of a REPEAT association combined into ``_crj``.

calwf3 3.7.3 (``calwf3/procir.c``) calibrates each member with WF3IR (its RPTCORR stays PERFORM),
then runs WF3REJ — the UVIS cosmic-ray rejection of :mod:`pipeline.science.calib.crrej` — on the
``_flt`` files, with the IR differences of ``wf3rej``:

* the inputs are count rates (BUNIT ``ELECTRONS/S``): each is multiplied by its EXPTIME, and the
  product is in ``ELECTRONS`` (the ``/S`` cut off the SCI and ERR BUNIT);
* the amplifiers are four quadrants split at half the image size (``rej_check.c getampxy``), with
  ``get_nsegn``'s IR order: rows below ``ampy`` read by B (left) and C (right), the others by A and D;
  read noise READNSEx/ATODGNx (DN) and gain ATODGNx from the first member's primary header;
* the ``_crj`` is one imset SCI/ERR/DQ (no SAMP/TIME) and RPTCORR becomes COMPLETE.

Verified bit for bit against calwf3.e on a simulated two-member IRSUB64 REPEAT association.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from pipeline.core.errors import BadInput
from pipeline.science.calib.context import COMPLETE, PERFORM, CalContext
from pipeline.science.calib.crrej import (
    ChipNoise,
    Member,
    combine,
    exposure_flag,
    exposure_time_bounds,
    log_parameters,
)
from pipeline.science.calib.imageio import Exposure, Imset, read_exposure
from pipeline.science.calib.ir.engine import LogSink, calibrate_ir
from pipeline.science.calib.products import write_product
from pipeline.science.calib.tables import read_crrejtab


def f32(x: float) -> float:
    return float(np.float32(x))


def ir_rej_noise(primary: Mapping[str, object], shape: tuple[int, int]) -> ChipNoise:
    """Quadrant read noise (DN^2) and gain as WF3REJ sets them up for IR."""
    gain = {a: f32(float(primary.get(f"ATODGN{a}", 0.0))) for a in "ABCD"}  # type: ignore[arg-type]
    if not any(g > 0 for g in gain.values()):
        raise BadInput("all ATODGN values are 0; RPTCORR needs the gains WF3IR writes", keyword="ATODGNA")
    noise2 = {}
    for a in "ABCD":
        rn = np.float32(float(primary.get(f"READNSE{a}", 0.0)))  # type: ignore[arg-type]
        dn = np.float32(rn / np.float32(gain[a])) if gain[a] != 0 else np.float32(0.0)
        noise2[a] = float(np.float32(dn * dn))
    ny, nx = shape
    return ChipNoise(noise2=(noise2["A"], noise2["D"]), gain=(gain["A"], gain["D"]), ampx=nx // 2, ampy=ny // 2,
                     low=((noise2["B"], noise2["C"]), (gain["B"], gain["C"])))


def sum_repeats(flts: list[Path], outdir: Path, product: str, *, site: object | None = None,
                environ: Mapping[str, str] | None = None, log: LogSink | None = None) -> Path:
    """WF3REJ on the members' ``_flt``: write ``<product>_crj.fits`` and return its path."""
    exposures = [read_exposure(p) for p in flts]
    first = exposures[0]
    shapes = {e.imsets[0].sci.shape for e in exposures}
    if len(shapes) != 1:
        raise BadInput(f"REPEAT members differ in size: {sorted(shapes)}", path=first.path)
    ctx = CalContext(path=first.path, primary=first.primary, detector="IR", site=site,
                     environ=dict(os.environ if environ is None else environ), log_sink=log)
    efacs = [float(e.primary.get("EXPTIME", 0.0)) for e in exposures]
    exptot = float(np.cumsum(np.asarray(efacs, np.float32), dtype=np.float32)[-1])
    crrejtab = ctx.reference_path("CRREJTAB")
    assert crrejtab is not None
    par = read_crrejtab(crrejtab, nimages=len(exposures),
                        mean_exptime=float(np.float32(exptot) / np.float32(len(exposures))))
    log_parameters(ctx, par, len(exposures))
    members = [Member(e.rootname, e.imsets[0], efac,
                      countrate="/S" in str(e.imsets[0].sci_header.get("BUNIT", "")).upper())
               for e, efac in zip(exposures, efacs, strict=True)]
    res = combine(members, par, ir_rej_noise(first.primary, first.imsets[0].sci.shape))
    im = first.imsets[0]
    sci_h, err_h, dq_h = im.sci_header.copy(), im.err_header.copy(), im.dq_header.copy()
    sci_h["NCOMBINE"] = len(exposures)
    for h in (sci_h, err_h, dq_h):
        h["EXPNAME"] = product
    if members[0].countrate:
        for h in (sci_h, err_h):
            unit = str(h.get("BUNIT", "")).strip()
            h["BUNIT"] = unit[:-2] if unit.upper().endswith("/S") else unit
    crj = Exposure(path=first.path, primary=first.primary.copy(),
                   imsets=[Imset(1, res.sci, res.err, res.dq, sci_h, err_h, dq_h)])
    expstart, expend = exposure_time_bounds(exposures)
    texpt = exptot if exptot != 0 else float(len(exposures))
    updates = {"ROOTNAME": product.upper(), "TEXPTIME": f32(exptot), "EXPTIME": f32(exptot),
               "SKYSUM": max(f32(sum(np.float32(s) for s in res.sky)), 0.0), "EXPSTART": expstart, "EXPEND": expend,
               "REJ_RATE": f32(res.nrej / texpt), "EXPFLAG": exposure_flag(exposures), **par.history(),
               "MEANEXP": f32(exptot / len(exposures)), "ASN_MTYP": "PROD-RPT"}
    switches = {"RPTCORR": COMPLETE} if str(first.primary.get("RPTCORR", "")).strip().upper() == PERFORM else {}
    ctx.log(f"RPTCORR: {len(exposures)} images summed into {product}_crj.fits; {res.nrej} pixels rejected")
    return write_product(crj, outdir / f"{product}_crj.fits", switches=switches, primary_updates=updates)


def sums(primary: Mapping[str, object], n_members: int) -> bool:
    """Whether calwf3 sums an IR association: RPTCORR = PERFORM and at least two members."""
    return n_members >= 2 and str(primary.get("RPTCORR", "")).strip().upper() == PERFORM


def calibrate_repeat(raws: list[Path], outdir: Path, product: str, **kw: object) -> list[Path]:
    """A REPEAT association of IR ramps: each member's ``_ima``/``_flt``, then the ``_crj`` when
    RPTCORR is PERFORM and there are >= 2 members (a single member gets RPTCORR=OMIT, as calwf3 does)."""
    from astropy.io import fits

    repeat = sums(fits.getheader(raws[0], 0), len(raws))
    flts = [calibrate_ir(r, outdir, repeat=repeat, **kw) for r in raws]  # type: ignore[arg-type]
    if not repeat:
        return flts
    return [sum_repeats(flts, outdir, product, **kw), *flts]  # type: ignore[arg-type]
