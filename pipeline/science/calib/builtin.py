"""The built-in engine's driver: one exposure (raw -> flt) and CR-SPLIT stacks (raws -> flts + crj).

The work is split the way calwf3/calacs split it, so the CA stage can run it in pieces:

* :func:`ccd_phase`  raw -> ``_blv_tmp`` (trimmed, switches of the CCD steps COMPLETE);
* :func:`crrej_phase` ``_blv_tmp`` stack -> ``_crj_tmp`` plus the members' CR masks;
* :func:`twod_phase` ``_blv_tmp``/``_crj_tmp`` -> ``_flt``/``_crj``.

Between phases everything the next one needs travels in the intermediate's primary header
(switches, ATODGNx/READNSEx), exactly as with calwf3's temporary files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.asntable import ASN_KINDS
from pipeline.core.errors import BadInput, Unsupported
from pipeline.science.calib import acs, acssum, sbc, scratch, uvis
from pipeline.science.calib.context import COMPLETE, PERFORM, CalContext
from pipeline.science.calib.crrej import (
    Member,
    chip_noise,
    combine,
    exposure_flag,
    exposure_time_bounds,
    log_parameters,
)
from pipeline.science.calib.hrc import single_amp_slots
from pipeline.science.calib.imageio import Exposure, Imset, read_exposure, read_primary
from pipeline.science.calib.ir import is_ir
from pipeline.science.calib.perchip import map_chips, threads
from pipeline.science.calib.products import write_product
from pipeline.science.calib.tables import read_ccdtab, read_crrejtab

LogSink = Callable[[str, str], None]


@dataclass(frozen=True)
class Detector:
    """What differs between the supported detectors."""

    name: str
    module: object
    electrons_after_ccd: bool   # ACS converts to e- in ACSCCD; WFC3 stays in DN until FLATCORR
    iref: str


UVIS = Detector("WFC3/UVIS", uvis, False, "iref")
WFC = Detector("ACS/WFC", acs, True, "jref")
HRC = Detector("ACS/HRC", acs, True, "jref")
SBC = Detector("ACS/SBC", sbc, True, "jref")
DETECTORS = {("WFC3", "UVIS"): UVIS, ("ACS", "WFC"): WFC, ("ACS", "HRC"): HRC, ("ACS", "SBC"): SBC}


def detector_of(primary: Mapping[str, object], path: Path) -> Detector:
    inst = str(primary.get("INSTRUME", "")).strip().upper()
    det = str(primary.get("DETECTOR", "")).strip().upper()
    if (inst, det) in DETECTORS:
        return DETECTORS[(inst, det)]
    if not inst or not det:
        raise BadInput("INSTRUME/DETECTOR missing from the primary header", path=path, keyword="DETECTOR")
    raise Unsupported(f"{inst}/{det} is not supported by the built-in engine (it handles WFC3/UVIS and "
                      "IR, ACS/WFC, HRC and SBC); use the hstcal engine where calwf3/calacs are installed", path=path,
                      keyword="DETECTOR")


def new_context(exposure: Exposure, *, site: object | None, environ: Mapping[str, str] | None,
                log: LogSink | None) -> CalContext:
    det = str(exposure.primary.get("DETECTOR", "")).strip().upper()
    return CalContext(path=exposure.path, primary=exposure.primary, detector=det, site=site,
                      environ=dict(os.environ if environ is None else environ), log_sink=log)


def _carry(ctx: CalContext, exposure: Exposure) -> Exposure:
    """Put the switches and computed primary keywords into the exposure for the next phase."""
    hdr = exposure.primary.copy()
    for name, value in ctx.switches.items():
        if name in hdr or value != "OMIT":
            hdr[name] = value
    hdr.update(ctx.primary_updates)
    return Exposure(path=exposure.path, primary=hdr, imsets=exposure.imsets)


def ccd_phase(raw: Path | Exposure, *, site: object | None = None, environ: Mapping[str, str] | None = None,
              log: LogSink | None = None) -> Exposure:
    """raw (a file, or the CTE branch's ``rac`` exposure) -> trimmed ``_blv_tmp`` exposure (in memory)."""
    exposure = raw if isinstance(raw, Exposure) else read_exposure(raw, threads(environ))
    det = detector_of(exposure.primary, exposure.path)
    ctx = new_context(exposure, site=site, environ=environ, log=log)
    flags = det.module.validate(ctx)  # type: ignore[attr-defined]
    ctx.log(f"{exposure.rootname}: {det.name} basic CCD reduction (built-in engine)")
    blv = det.module.ccd(ctx, exposure, flags)  # type: ignore[attr-defined]
    return _carry(ctx, blv)


def twod_phase(blv: Exposure, out: Path, *, site: object | None = None,
               environ: Mapping[str, str] | None = None, log: LogSink | None = None,
               extra_primary: Mapping[str, object] | None = None) -> Path:
    """``_blv_tmp``/``_crj_tmp`` -> ``_flt``/``_crj`` file."""
    det = detector_of(blv.primary, blv.path)
    ctx = new_context(blv, site=site, environ=environ, log=log)
    flags = det.module.validate(ctx)  # type: ignore[attr-defined]
    det.module.twod(ctx, blv, flags)  # type: ignore[attr-defined]
    scratch.release()   # the temporaries' memory back before the product's pages are written
    ctx.primary_updates.update(extra_primary or {})
    write_product(blv, out, switches=ctx.switches, primary_updates=ctx.primary_updates, workers=threads(environ))
    ctx.log(f"wrote {out.name}")
    return out


def calibrate_exposure(raw: Path, outdir: Path, **kw: object) -> Path:
    primary = read_primary(raw)
    if is_ir(primary):   # MULTIACCUM ramps: the WF3IR chain writes _ima and _flt
        from pipeline.science.calib.ir import engine as ir_engine  # imported for IR only

        return ir_engine.calibrate_ir(raw, outdir, **kw)  # type: ignore[arg-type]
    if detector_of(primary, raw) is SBC and not sbc.wants_2d(primary):
        log = kw.get("log")
        if callable(log):
            log("warn", f"{raw.name}: no calibration switch is PERFORM: no processing performed on image; "
                        "the raw is copied to the _flt, as calacs does")
        root = str(primary.get("ROOTNAME", raw.name.split("_")[0])).strip().lower()
        return sbc.copy_unprocessed(raw, outdir / f"{root}_flt.fits")
    blv = ccd_phase(raw, **kw)  # type: ignore[arg-type]
    return twod_phase(blv, outdir / f"{blv.rootname}_flt.fits", **kw)  # type: ignore[arg-type]


def cte_phase(raw: Path, *, site: object | None = None, environ: Mapping[str, str] | None = None,
              log: LogSink | None = None) -> Exposure | None:
    """The CTE branch's ``rac`` exposure (PCTECORR = COMPLETE in its header) when the raw asks for
    PCTECORR and the detector has a pixel-based correction here; None otherwise."""
    if str(read_primary(raw).get("PCTECORR", "OMIT")).strip().upper() != PERFORM:
        return None
    exposure = read_exposure(raw)
    det = detector_of(exposure.primary, raw)
    ctx = new_context(exposure, site=site, environ=environ, log=log)
    det.module.validate(ctx)  # type: ignore[attr-defined]
    if det is not UVIS:  # ACS/WFC corrects after ACSCCD (blc_phase); others warned in validate
        return None
    ctx.log(f"{exposure.rootname}: {det.name} pixel-based CTE correction (built-in engine)")
    from pipeline.science.calib.cte import uvis as uvis_cte  # numba and scipy: only when CTE runs
    from pipeline.science.calib.jit import kernel_threads

    with kernel_threads(ctx.environ):
        return _carry(ctx, uvis_cte.run(ctx, exposure))


def blc_phase(blv: Exposure, *, site: object | None = None, environ: Mapping[str, str] | None = None,
              log: LogSink | None = None) -> Exposure | None:
    """ACSCTE: the ``_blc_tmp`` exposure of an ACS/WFC ``_blv_tmp`` when PCTECORR is PERFORM and the
    built-in engine corrects it (calacs runs its CTE step after ACSCCD); None otherwise."""
    if detector_of(blv.primary, blv.path) is not WFC:
        return None
    ctx = new_context(blv, site=site, environ=environ, log=log)
    ctx.read_switches(acs.SWITCHES)
    if not ctx.perform("PCTECORR") or not acs.corrects_cte(ctx):
        return None
    ctx.log(f"{blv.rootname}: {WFC.name} pixel-based CTE correction (built-in engine)")
    from pipeline.science.calib.cte import acs as acs_cte  # numba: only when CTE runs
    from pipeline.science.calib.jit import kernel_threads

    with kernel_threads(ctx.environ):
        return _carry(ctx, acs_cte.run(ctx, blv))


def calibrate_cte(raw: Path, outdir: Path, **kw: object) -> Path | None:
    """raw -> ``_flc`` through the CTE branch (None when the raw asks for no CTE correction).
    WFC3/UVIS corrects the raw before WF3CCD; ACS/WFC corrects the ACSCCD output."""
    rac = cte_phase(raw, **kw)  # type: ignore[arg-type]
    if rac is not None:
        blc: Exposure | None = ccd_phase(rac, **kw)  # type: ignore[arg-type]
    elif str(read_primary(raw).get("PCTECORR", "OMIT")).strip().upper() == PERFORM:
        blc = blc_phase(ccd_phase(raw, **kw), **kw)  # type: ignore[arg-type]
    else:
        blc = None
    if blc is None:
        return None
    return twod_phase(blc, outdir / f"{blc.rootname}_flc.fits", **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- CRCORR


def needs_crcorr(blvs: list[Exposure]) -> bool:
    """calwf3 rejects cosmic rays when CRCORR or RPTCORR is PERFORM and there are >= 2 images."""
    first = blvs[0].primary
    if str(first.get("DETECTOR", "")).strip().upper() == "SBC":
        return False  # MAMA: CRCORR forced off; RPTCORR sums the flts instead (calibrate_stack)
    return len(blvs) >= 2 and any(str(first.get(s, "")).strip().upper() == PERFORM for s in ("CRCORR", "RPTCORR"))


def crrej_phase(blvs: list[Exposure], product: str, *, memtype: str | None = None, site: object | None = None,
                environ: Mapping[str, str] | None = None,
                log: LogSink | None = None) -> tuple[Exposure, list[list[np.ndarray]]]:
    """Combine the members' blv imsets chip by chip; returns the ``_crj_tmp`` exposure and, per
    member, its per-imset CR masks (8192 where rejected). ``memtype``: the product's row type in the
    association table (PROD-CRJ, PROD-RPT), its ``ASN_MTYP`` as calwf3/calacs write it."""
    first = blvs[0]
    det = detector_of(first.primary, first.path)
    ctx = new_context(first, site=site, environ=environ, log=log)
    amps = {str(b.primary.get("CCDAMP", "")).strip().upper() for b in blvs}
    if len(amps) != 1:
        raise BadInput(f"CR-SPLIT members use different CCDAMP values: {sorted(amps)}", path=first.path,
                       keyword="CCDAMP")
    efacs = [float(b.primary.get("EXPTIME", 0.0)) for b in blvs]
    exptot = float(np.cumsum(np.asarray(efacs, np.float32), dtype=np.float32)[-1])
    crrejtab = ctx.reference_path("CRREJTAB")
    assert crrejtab is not None
    par = read_crrejtab(crrejtab, nimages=len(blvs), mean_exptime=float(np.float32(exptot) / np.float32(len(blvs))))
    log_parameters(ctx, par, len(blvs))
    crj = Exposure(path=first.path, primary=first.primary.copy())
    masks: list[list[np.ndarray]] = [[] for _ in blvs]
    nrej_first = 0
    texpt = exptot if exptot != 0 else float(len(blvs))
    skysum_first = 0.0
    stacks = []
    for imset in first.imsets:
        members = []
        for b, efac in zip(blvs, efacs, strict=True):
            im = next((i for i in b.imsets if i.chip == imset.chip), None)
            if im is None:
                raise BadInput(f"member has no imset for CCDCHIP {imset.chip}", path=b.path, keyword="CCDCHIP")
            if im.sci.shape != imset.sci.shape:
                raise BadInput(f"{b.rootname} SCI shape {im.sci.shape} differs from {imset.sci.shape}",
                               path=b.path)
            bunit = str(im.sci_header.get("BUNIT", "")).strip().upper()
            members.append(Member(b.rootname, im, efac, countrate="/S" in bunit))
        stacks.append((members, _rej_noise(ctx, first, imset, electrons=det.electrons_after_ccd)))
    results = map_chips(ctx, lambda stack: combine(stack[0], par, stack[1], acs=det.electrons_after_ccd), stacks)
    for k, (imset, res) in enumerate(zip(first.imsets, results, strict=True)):
        for n, m in enumerate(res.crmasks):
            masks[n].append(m)
        headers = [h.copy() for h in (imset.sci_header, imset.err_header, imset.dq_header)]
        headers[0]["NCOMBINE"] = len(blvs)
        for h in headers:  # UExpname: the product's rootname in every extension
            h["EXPNAME"] = product.lower()
        crj.imsets.append(Imset(imset.extver, res.sci, res.err, res.dq, *headers))
        if k == 0:
            nrej_first, skysum_first = res.nrej, max(float(np.float32(sum(np.float32(s) for s in res.sky))), 0.0)
        ctx.log(f"CRCORR chip {imset.chip}: sky {', '.join(f'{s:.3f}' for s in res.sky)}; "
                f"{res.nrej} pixels rejected")
    expstart, expend = exposure_time_bounds(blvs)
    p = crj.primary
    p.update(ROOTNAME=product.upper(), TEXPTIME=float(np.float32(exptot)), EXPTIME=float(np.float32(exptot)),
             SKYSUM=skysum_first, EXPSTART=expstart, EXPEND=expend,
             REJ_RATE=float(np.float32(nrej_first / texpt)), **par.history(),
             MEANEXP=float(np.float32(exptot / len(blvs))))
    if not det.electrons_after_ccd:  # WF3REJ sums up the members' EXPFLAG; ACSREJ leaves the keyword alone
        p["EXPFLAG"] = exposure_flag(blvs)
    if memtype:  # UMemType: the product's role, not the first member's
        p["ASN_MTYP"] = memtype.upper()
    if det.electrons_after_ccd:  # ACSREJ: cumulative dark time and flash duration of the members
        for key in ("DARKTIME", "FLASHDUR"):
            p[key] = float(np.cumsum(np.asarray([b.primary.get(key, 0.0) for b in blvs], np.float32),
                                     dtype=np.float32)[-1])
    for s in ("CRCORR", "RPTCORR"):
        if str(p.get(s, "")).strip().upper() == PERFORM:
            p[s] = COMPLETE
    if not par.crmask:
        masks = [[np.zeros_like(m) for m in ms] for ms in masks]
    return crj, masks


def _rej_noise(ctx: CalContext, first: Exposure, imset: Imset, *, electrons: bool):  # type: ignore[no-untyped-def]
    ccdtab = ctx.reference_path("CCDTAB")
    assert ccdtab is not None
    p = first.primary
    ccd = read_ccdtab(ccdtab, ccdamp=str(p["CCDAMP"]).strip(), chip=imset.chip, ccdgain=float(p.get("CCDGAIN", 1.0)),
                      binaxis=(int(p.get("BINAXIS1", 1)), int(p.get("BINAXIS2", 1))),
                      ccdofst=[int(p.get(f"CCDOFST{a}", 3)) for a in "ABCD"], dimx=imset.sci.shape[1])
    noise = chip_noise(p, imset.chip, ccd.ampx)
    if electrons:
        # ACS stacks are in electrons: read noise in e- and unit gain
        rn = [float(np.float32(p.get(f"READNSE{a}", 0.0))) for a in "ABCD"]
        from pipeline.science.calib.geometry import slot_values

        left, right = slot_values(tuple(rn), imset.chip)  # type: ignore[arg-type]
        if ctx.detector == "HRC":
            left, right = single_amp_slots(tuple(rn), tuple(float(p.get(f"ATODGN{a}", 0.0)) for a in "ABCD"))  # type: ignore[arg-type]
        noise.noise2 = (float(np.float32(left) ** 2), float(np.float32(right) ** 2))
        noise.gain = (1.0, 1.0)
    return noise


def apply_cr_masks(blv: Exposure, masks: list[np.ndarray]) -> None:
    """CRMASK: 8192 where the member was rejected, earlier 8192 flags cleared.

    ``rej_loop.c`` keeps the mask one bit per pixel and unpacks only whole bytes (``readBitLine``):
    the last ``nx % 8`` columns keep their input DQ and never get the flag.
    """
    for imset, mask in zip(blv.imsets, masks, strict=True):
        cols = slice(0, imset.dq.shape[1] // 8 * 8)
        imset.dq[:, cols] &= np.uint16(~np.uint16(8192) & 0xFFFF)
        imset.dq[:, cols] |= mask[:, cols]


def calibrate_stack(raws: list[Path], outdir: Path, product: str, *, memtype: str | None = None,
                    **kw: object) -> list[Path]:
    """CR-SPLIT/REPEAT association: member flts (with CR masks) and the product's crj; with
    PCTECORR, also the CTE branch's member flcs and crc (calwf3 and calacs run their CR rejection on
    the blc set too); for SBC (calacs's ProcessMAMA) ACS2D per member, then ACSSUM into the
    product's ``_sfl``."""
    primary = read_primary(raws[0])
    if is_ir(primary):  # WFC3/IR REPEAT: each ramp's _flt, then RPTCORR on them
        from pipeline.science.calib.ir.repeat import calibrate_repeat

        return calibrate_repeat(raws, outdir, product, **kw)
    if detector_of(primary, raws[0]) is SBC:
        flts = [calibrate_exposure(r, outdir, **kw) for r in raws]
        return [*flts, *sum_sbc_repeats(flts, outdir, product, log=kw.get("log"))]  # type: ignore[arg-type]
    outputs = finish_stack([ccd_phase(r, **kw) for r in raws], outdir, product,  # type: ignore[arg-type]
                           memtype=memtype, **kw)
    blcs = cte_blcs(raws, **kw)
    if blcs is not None:
        outputs += finish_stack(blcs, outdir, product, cte=True, memtype=memtype, **kw)
    return outputs


def sum_sbc_repeats(flts: list[Path], outdir: Path, product: str, *,
                    log: LogSink | None = None) -> list[Path]:
    """ACSSUM of an SBC REPEAT's member ``_flt`` files into ``<product>_sfl.fits`` (calacs's
    ProcessMAMA); nothing when RPTCORR is not PERFORM or there is one member."""
    if not acssum.wants_sum(flts):
        return []
    return [acssum.sum_repeats(flts, outdir / f"{product}_sfl.fits", ASN_KINDS["REPEAT"][1], log=log)]


def cte_blcs(raws: list[Path], **kw: object) -> list[Exposure] | None:
    """The members' ``blc_tmp`` exposures, or None without PCTECORR. UVIS: the CTE branch, then
    WF3CCD. ACS/WFC: ACSCCD then ACSCTE, a second ACSCCD run apart from the blv one (calacs.c's
    ProcessCCD runs ACSccd twice, so the two ACSREJ runs flag CRs in separate members)."""
    racs = [cte_phase(r, **kw) for r in raws]  # type: ignore[arg-type]
    if all(r is not None for r in racs):
        return [ccd_phase(r, **kw) for r in racs if r is not None]  # type: ignore[arg-type]
    if any(str(read_primary(r).get("PCTECORR", "OMIT")).strip().upper() != PERFORM for r in raws):
        return None
    blcs = [blc_phase(ccd_phase(r, **kw), **kw) for r in raws]  # type: ignore[arg-type]
    return None if any(b is None for b in blcs) else [b for b in blcs if b is not None]


def finish_stack(blvs: list[Exposure], outdir: Path, product: str, *, cte: bool = False,
                 memtype: str | None = None, **kw: object) -> list[Path]:
    """From the members' ``_blv_tmp`` exposures: CR rejection into ``_crj`` (when CRCORR/RPTCORR is
    PERFORM and there are >= 2 members), the CR masks into each member, then each member's ``_flt``.
    ``cte``: the members are the CTE branch's ``_blc_tmp``, the products ``_crc`` and ``_flc``."""
    outputs: list[Path] = []
    stack, single = ("crc", "flc") if cte else ("crj", "flt")
    if needs_crcorr(blvs):
        # calacs's FindAsnRoot knows "_crj_tmp" but not "_crc_tmp": ACSREJ's crc keeps the whole temporary
        # name as ROOTNAME and EXPNAME (calacs 10.5.0); calwf3 strips it
        acs_crc = cte and detector_of(blvs[0].primary, blvs[0].path).electrons_after_ccd
        root = f"{product}_crc_tmp" if acs_crc else product
        crj, masks = crrej_phase(blvs, root, memtype=memtype, **kw)  # type: ignore[arg-type]
        outputs.append(twod_phase(crj, outdir / f"{product}_{stack}.fits", **kw))  # type: ignore[arg-type]
        for blv, m in zip(blvs, masks, strict=True):  # the members' CRCORR/RPTCORR stay PERFORM, as in hstcal
            apply_cr_masks(blv, m)
    for blv in blvs:
        outputs.append(twod_phase(blv, outdir / f"{blv.rootname}_{single}.fits", **kw))  # type: ignore[arg-type]
    return outputs


def save_intermediate(exposure: Exposure, path: Path) -> Path:
    """Write a ``_blv_tmp`` so that another process can finish the work (CA stage)."""
    return write_product(exposure, path, switches={}, primary_updates={})
