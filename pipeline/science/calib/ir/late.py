"""The WF3IR steps after the initial errors: NLINCORR, DARKCORR, PHOTCORR, UNITCORR, CRCORR, FLATCORR."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.io import fits

from pipeline.core.errors import MissingReference
from pipeline.science.calib.context import COMPLETE, PERFORM
from pipeline.science.calib.imageio import OPEN_KW, frame_of
from pipeline.science.calib.ir.early import SATPIXEL
from pipeline.science.calib.ir.fitsamps import DATAREJECT, HIGH_CURVATURE, SPIKE
from pipeline.science.calib.ir.nonlinear import correct_read
from pipeline.science.calib.ir.rampfit import fit_ramps
from pipeline.science.calib.ir.reftables import (
    RefPlanes,
    corner_offset,
    cut_out,
    read_dark_info,
    read_extension,
    read_irramp_row,
)
from pipeline.science.calib.ir.state import F32, F64, IRRun, IRStep
from pipeline.science.calib.steps.phot import PHOTFNU_K, f32, to_obsmode
from pipeline.science.calib.tables import read_imphttab

#: Dark DQ bits left out of MEANDARK (``wf3ir/stats.c``).
MEANDARK_SKIP = 4 | 8 | 16 | 32 | 128 | 256 | 512
#: A dark imset serves a read whose time since the zero read is within this (s).
DARK_TOLERANCE = 0.01


class NlinCorr(IRStep):
    """``SCI = s * (1 + sum_k c_k s^k)`` on ``s = read + zsig`` (then zsig removed again), where
    not already saturated and ``s <= NODE``; above NODE the read is flagged 256, and saturation
    propagates to every later read."""

    switch = "NLINCORR"

    def run(self, run: IRRun) -> None:
        ramp, nl = run.ramp, run.nlin()
        rr = run.det.region
        use_zsig = run.switch_on("ZSIGCORR") and run.zsig is not None
        coef, node, nldq = nl.coef[(slice(None), *rr)], nl.node[rr], nl.dq[rr]
        zsig = run.zsig[rr] if use_zsig and run.zsig is not None else None
        zsig_dq = run.zsig_dq[rr] if use_zsig and run.zsig_dq is not None else None
        nsat = 0
        for k in range(ramp.nsamp):
            nsat += correct_read(ramp.sci[k][rr], ramp.dq[k][rr], zsig if k > 0 else None, zsig_dq if k > 0 else None,
                                 coef, node, nldq)
            if k + 1 < ramp.nsamp:
                ramp.dq[k + 1] |= ramp.dq[k] & np.uint16(SATPIXEL)
        run.ctx.log(f"NLINCORR: {nsat} read-pixels above the saturation NODE")


def interpolate_dark(run: IRRun, dark, t: float) -> RefPlanes:  # type: ignore[no-untyped-def]
    """SAMP_SEQ = NONE (from the calwf3 source): linear interpolation between the last shorter and
    first longer dark imset, or extrapolation of the nearest one by ``t / t1``."""
    shape = run.ramp.shape
    shorter = [i for i, e in enumerate(dark.expos) if e < t]
    longer = [i for i, e in enumerate(dark.expos) if e > t]
    if shorter and longer:
        i1, i2 = shorter[-1], longer[0]
        d1, d2 = dark.imset(i1 + 1, shape), dark.imset(i2 + 1, shape)
        f = F32((t - dark.expos[i1]) / (dark.expos[i2] - dark.expos[i1]))
        dsci = d2.sci - d1.sci
        derr = np.sqrt(d1.err * d1.err + d2.err * d2.err, dtype=F32) * f
        return RefPlanes(d1.sci + dsci * f, np.sqrt(d1.err * d1.err + derr * derr, dtype=F32), d1.dq | d2.dq)
    i = (shorter or longer)[-1 if shorter else 0]
    d = dark.imset(i + 1, shape)
    k = F32(t / dark.expos[i]) if dark.expos[i] else F32(0.0)
    return RefPlanes(d.sci * k, d.err * k, d.dq)


class DarkCorr(IRStep):
    """The dark imset whose exposure time matches each read's time since the zero read, in DN,
    subtracted inside R (errors in quadrature, DQ OR-ed); MEANDARK per read."""

    switch = "DARKCORR"

    def run(self, run: IRRun) -> None:
        ramp = run.ramp
        path = run.ctx.reference_path("DARKFILE")
        assert path is not None
        seq = str(ramp.primary.get("SAMP_SEQ", "")).strip()
        dark = read_dark_info(path, samp_seq=seq, subtype=str(ramp.primary.get("SUBTYPE", "")).strip())
        rr = run.det.region
        with dark.opened():
            for k in range(ramp.nsamp):
                t = ramp.exptime[k]
                match = next((i for i, e in enumerate(dark.expos) if abs(e - t) <= DARK_TOLERANCE), None)
                if match is not None:
                    d = dark.imset(match + 1, ramp.shape)
                elif seq.upper() == "NONE" and dark.expos:
                    d = interpolate_dark(run, dark, t)
                else:
                    raise MissingReference(f"DARKFILE {path.name}: no imset with EXPOS = {t:.3f} s (SAMP_SEQ {seq})",
                                           keyword="DARKFILE", path=path)
                sci, err, dq = ramp.sci[k][rr], ramp.err[k][rr], ramp.dq[k][rr]
                dsci, derr = d.sci[rr], d.err[rr]
                sci -= dsci
                err[...] = np.sqrt(err * err + derr * derr, dtype=F32)
                dq |= d.dq[rr]
                good = (d.dq[rr] & MEANDARK_SKIP) == 0
                n = int(good.sum())
                ramp.keywords[k]["MEANDARK"] = float(F32(np.sum(dsci, where=good, dtype=F64) / n)) if n else 0.0
        run.ctx.log(f"DARKCORR: {path.name} ({len(dark.expos)} imsets) subtracted from {ramp.nsamp} reads")


def ir_photmode(filt: str, expstart: float) -> str:
    """``WFC3 IR <FILTER> MJD#<EXPSTART>``; a CLEAR filter is left out."""
    parts = ["WFC3", "IR"]
    if not filt.upper().startswith("CLEAR"):
        parts.append(filt)
    parts.append(f"MJD#{expstart:0.4f}")
    return " ".join(parts)


class PhotCorr(IRStep):
    """PHOTMODE (always) and the IMPHTTAB keywords, all in the primary header; pixels unchanged."""

    switch = "PHOTCORR"

    def enabled(self, run: IRRun) -> bool:
        return True

    def run(self, run: IRRun) -> None:
        ctx = run.ctx
        photmode = ir_photmode(ctx.key("FILTER", str), ctx.key("EXPSTART", float))
        ctx.primary_updates["PHOTMODE"] = photmode
        if not ctx.perform("PHOTCORR"):   # COMPLETE is not repeated (verified with calwf3.e)
            return
        path = ctx.reference_path("IMPHTTAB")
        assert path is not None
        vals = read_imphttab(path, to_obsmode(photmode))
        flam, plam = vals.values["PHOTFLAM"], vals.values["PHOTPLAM"]
        ctx.primary_updates.update(PHOTFLAM=f32(flam), PHOTZPT=f32(vals.photzpt), PHOTPLAM=f32(plam),
                                   PHOTBW=f32(vals.values["PHOTBW"]), PHOTFNU=f32(PHOTFNU_K * flam * plam * plam))
        ctx.log(f"PHOTCORR: PHOTMODE '{photmode}', PHOTFLAM = {f32(flam):.6g}")


class UnitCorr(IRStep):
    """Counts to count rates inside R: the zero read by ``1/sampzero``, the others by their TIME
    (0 where TIME is 0)."""

    switch = "UNITCORR"

    def run(self, run: IRRun) -> None:
        ramp = run.ramp
        if ramp.rates:
            run.ctx.log("UNITCORR: data already in count rates")
            return
        rr = run.det.region
        t0 = F32(1.0 / ramp.sampzero)
        ramp.sci[0][rr] *= t0
        ramp.err[0][rr] *= t0
        for k in range(1, ramp.nsamp):
            t = ramp.time[k][rr]
            zero = t == 0
            with np.errstate(divide="ignore", invalid="ignore"):
                for arr in (ramp.sci[k][rr], ramp.err[k][rr]):
                    arr /= np.where(zero, F32(1), t)
                    arr[zero] = 0
        ramp.rates = True
        for kw in ramp.keywords:
            kw["BUNIT"] = "COUNTS/S"


@dataclass
class CrImage:
    """The single-group result of CRCORR (a copy of the last read where not fitted)."""

    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    samp: np.ndarray
    time: np.ndarray


class CrCorr(IRStep):
    """Up-the-ramp fit of every pixel in R (:mod:`pipeline.science.calib.ir.rampfit`); flags go back into
    the reads' DQ (8192 from the jump on, 4 for spikes, 32 for too many jumps)."""

    switch = "CRCORR"

    def run(self, run: IRRun) -> None:
        ramp, det = run.ramp, run.det
        path = run.ctx.reference_path("CRREJTAB")
        assert path is not None
        par = read_irramp_row(path, nsamp=ramp.nsamp, exptime=float(F32(ramp.exptime[-1])))
        rr = det.region
        region = (slice(None), *rr)
        res = fit_ramps(ramp.sci[region], ramp.err[region], ramp.dq[region], ramp.time[region], rates=ramp.rates,
                        zsig_done=run.ctx.switches.get("ZSIGCORR") in (PERFORM, COMPLETE),
                        sampzero=ramp.sampzero, thresh=par.thresh, ign=par.badinpdq, gain=run.det.mean_gain)
        last = ramp.nsamp - 1
        cr = CrImage(ramp.sci[last].copy(), ramp.err[last].copy(), ramp.dq[last].copy(), ramp.samp[last].copy(),
                     ramp.time[last].copy())
        cr.sci[rr], cr.err[rr], cr.dq[rr], cr.samp[rr], cr.time[rr] = res.sci, res.err, res.dq, res.samp, res.time
        f = res.flags   # 8192 stays, 1024 (spike) -> 4, 16384 (too many jumps) -> 32
        ramp.dq[region] |= (f & DATAREJECT) | ((f & SPIKE) >> 8) | ((f & HIGH_CURVATURE) >> 9)
        run.cr = cr
        jumps = np.count_nonzero(res.flags[-1] & (DATAREJECT | HIGH_CURVATURE))   # jump flags run to the last read
        run.ctx.log(f"CRCORR: CRREJTAB row {par.row}, threshold {par.thresh:g} sigma, BADINPDQ {par.badinpdq}; "
                    f"{jumps} pixels with a cosmic-ray jump")


# ------------------------------------------------------------------------------------------ FLATCORR

FLAT_TYPES = {"PFLTFILE": "PIXEL-TO-PIXEL FLAT", "DFLTFILE": "DELTA FLAT", "LFLTFILE": "LARGE SCALE FLAT"}


def combined_flat(run: IRRun) -> RefPlanes:
    """P x D x L, cut at the science corner (``getFlats``/``amul``); at least one flat is named."""
    ramp = run.ramp
    total: RefPlanes | None = None
    for kw in FLAT_TYPES:
        if not run.ctx.has_value(kw):
            continue
        path = run.ctx.reference_path(kw)
        assert path is not None
        with fits.open(path, **OPEN_KW) as hdul:
            sci, hdr = read_extension(hdul, "SCI", 1, np.float32, kw, path)
            err, _ = read_extension(hdul, "ERR", 1, np.float32, kw, path, sci.shape)
            dq, _ = read_extension(hdul, "DQ", 1, np.uint16, kw, path, sci.shape)
        if frame_of(hdr).bin != (1, 1):
            raise MissingReference(f"{kw} {path.name}: binned flats (unbin2d_ir) are not supported by the built-in "
                                   "engine", keyword=kw, path=path)
        off = corner_offset(ramp.headers[0].sci, hdr)
        flat = RefPlanes(*(np.ascontiguousarray(cut_out(a, off, ramp.shape, kw, path)) for a in (sci, err, dq)))
        if total is None:
            total = flat
        else:
            pe, de = total.sci * flat.err, flat.sci * total.err
            total = RefPlanes(total.sci * flat.sci, np.sqrt(pe * pe + de * de, dtype=F32), total.dq | flat.dq)
    if total is None:
        raise MissingReference("FLATCORR = PERFORM but PFLTFILE, DFLTFILE and LFLTFILE are all N/A",
                               keyword="PFLTFILE")
    return total


def divide_flat(sci: np.ndarray, err: np.ndarray, dq: np.ndarray, flat: RefPlanes, rr: tuple[slice, slice]) -> None:
    """``adiv_noref``: inside R, ``SCI/F`` and the error of a quotient; SCI = ERR = 0 where F = 0."""
    f, fe = flat.sci[rr], flat.err[rr]
    s, e = sci[rr], err[rr]
    zero = f == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        f2 = f * f
        new_err = np.sqrt(e * e / f2 + s * s * fe * fe / (f2 * f2), dtype=F32)
        new_sci = s / f
    s[...] = np.where(zero, F32(0.0), new_sci)
    e[...] = np.where(zero, F32(0.0), new_err)
    dq[rr] |= flat.dq[rr]


class FlatCorr(IRStep):
    """Divide every read and the CR image by the flat inside R, then multiply the whole arrays by
    the mean gain: the products are electrons (per second)."""

    switch = "FLATCORR"

    def run(self, run: IRRun) -> None:
        ramp = run.ramp
        flat = combined_flat(run)
        rr = run.det.region
        g = F32(run.det.mean_gain)
        images = [(ramp.sci[k], ramp.err[k], ramp.dq[k]) for k in range(ramp.nsamp)]
        if run.cr is not None:
            images.append((run.cr.sci, run.cr.err, run.cr.dq))
        for sci, err, dq in images:
            divide_flat(sci, err, dq, flat, rr)
            sci *= g
            err *= g
        unit = "ELECTRONS/S" if ramp.rates else "ELECTRONS"
        for kw in ramp.keywords:
            kw["BUNIT"] = unit
        run.ctx.log(f"FLATCORR: flat applied, gain {float(g):.5g} e-/DN")
