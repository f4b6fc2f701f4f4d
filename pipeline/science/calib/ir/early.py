"""The WF3IR steps up to the initial errors: DQICORR, ZSIGCORR, BLEVCORR, ZOFFCORR, NOISCORR.

They work in raw DN; the order matters (the zero-read signal is measured on raw DN before the
reference-pixel level is removed, and the zero read is kept aside before ZSIGCORR changes it).
"""

from __future__ import annotations

import numpy as np

from pipeline.science.calib.ir.state import F32, IRRun, IRStep, ZeroRead, noise_dn, quadrant_slices
from pipeline.science.calib.resistmean import resistmean
from pipeline.science.calib.steps.dqi import _or_runs
from pipeline.science.calib.tables import read_bpixtab

ZEROSIG = 2048
SATPIXEL = 256
#: ``zsigcorr.c``: the zero-read signal counts when it exceeds this many sigma.
ZTHRESH = 4.0
#: BLEVCORR rejects reference pixels beyond this many sigma.
BLEV_SIGREJ = 3.0


class DqiCorr(IRStep):
    """BPIXTAB runs OR-ed into the DQ of every read, in raw coordinates (reference border included);
    runs whose first pixel lies off the array are skipped. No saturation test here."""

    switch = "DQICORR"

    def enabled(self, run: IRRun) -> bool:   # COMPLETE is not repeated (verified with calwf3.e)
        return run.ctx.perform("DQICORR") and run.ctx.has_value("BPIXTAB")

    def run(self, run: IRRun) -> None:
        path = run.ctx.reference_path("BPIXTAB")
        assert path is not None
        ramp = run.ramp
        hdr = ramp.headers[0].sci
        runs = read_bpixtab(path, chip=int(hdr.get("CCDCHIP", 1)), ccdamp="ABCD",
                            ccdgain=float(ramp.primary.get("CCDGAIN", 2.5)))
        ltv = (float(hdr.get("LTV1", 0.0)) + float(hdr.get("LTM1_1", 1.0)) - 1.0,
               float(hdr.get("LTV2", 0.0)) + float(hdr.get("LTM2_2", 1.0)) - 1.0)
        x0 = np.trunc(runs.x0 + ltv[0]).astype(np.int64)
        y0 = np.trunc(runs.y0 + ltv[1]).astype(np.int64)
        ny, nx = ramp.shape
        start_inside = (x0 >= 0) & (x0 < nx) & (y0 >= 0) & (y0 < ny)
        mask = np.zeros(ramp.shape, np.uint16)
        kept = type(runs)(runs.sizaxis, x0[start_inside], y0[start_inside], runs.length[start_inside],
                          runs.axis[start_inside], runs.value[start_inside])
        _or_runs(mask, kept.x0, kept.y0, kept)
        ramp.dq |= mask
        run.ctx.log(f"DQICORR: {int(start_inside.sum())} BPIXTAB runs OR-ed into {ramp.nsamp} reads")


class ZsigCorr(IRStep):
    """Signal already in the zero read, from raw DN against the NLINFILE super-zero (ZSCI, bias
    included); kept where it exceeds 4 sigma, flagged ZEROSIG, saturation in reads 0 and 1 found."""

    switch = "ZSIGCORR"

    def run(self, run: IRRun) -> None:
        ramp, det = run.ramp, run.det
        nl = run.nlin()
        rr = det.region
        zero = ramp.sci[0]
        zsig = np.zeros(ramp.shape, F32)
        zdq = np.zeros(ramp.shape, np.uint16)
        zs = zero[rr] - nl.zsci[rr]
        err = np.zeros_like(zs)
        r0, c0 = det.rows.start, det.cols.start
        for amp, (rows, cols) in quadrant_slices(det, run.ltv):
            sub = (slice(rows.start - r0, rows.stop - r0), slice(cols.start - c0, cols.stop - c0))
            err[sub] = noise_dn(zs[sub], det.atodgain[amp], det.readnoise[amp])
        zerr = nl.zerr[rr]
        n = np.sqrt(err * err + zerr * zerr, dtype=F32)
        signal = zs.astype(np.float64) >= ZTHRESH * n.astype(np.float64)
        zs = np.where(signal, zs, F32(0.0))
        node = nl.node[rr]
        sat0 = zs > node
        sat1 = ~sat0 & ((ramp.sci[1][rr] - nl.zsci[rr]) > node) if ramp.nsamp > 1 else np.zeros_like(sat0)
        d0 = ramp.dq[0][rr]
        d0 |= np.where(signal, ZEROSIG, 0).astype(np.uint16)
        d0 |= np.where(sat0, SATPIXEL | ZEROSIG, 0).astype(np.uint16)
        if ramp.nsamp > 1:
            ramp.dq[1][rr] |= np.where(sat0 | sat1, SATPIXEL, 0).astype(np.uint16)
        zdq[rr] = np.where(signal, ZEROSIG, 0) | np.where(sat0 | sat1, SATPIXEL | ZEROSIG, 0)
        zsig[rr] = zs
        zero[rr] += zs
        run.zsig, run.zsig_dq = zsig, zdq
        run.ctx.log(f"ZSIGCORR: {int(signal.sum())} pixels with zero-read signal, {int(sat0.sum())} saturated in "
                    f"the zero read, {int(sat1.sum())} in the first read")


def reference_level(sci: np.ndarray, run: IRRun) -> float:
    """The resistant mean of the BIASSECTA/B reference columns over the science rows."""
    det = run.det
    rows = det.rows
    blocks = [sci[rows, a:b + 1] for a, b in det.biassect if b >= a >= 0]
    if not blocks:
        return 0.0
    return resistmean(np.concatenate([b.ravel() for b in blocks]), BLEV_SIGREJ)[0]


class BlevCorr(IRStep):
    """One resistant mean of the reference columns per read (and for the saved zero read),
    subtracted from the whole array; MEANBLEV in each read's SCI header."""

    switch = "BLEVCORR"

    def run(self, run: IRRun) -> None:
        ramp = run.ramp
        for k in range(ramp.nsamp):
            m = F32(reference_level(ramp.sci[k], run))
            ramp.sci[k] -= m
            ramp.keywords[k]["MEANBLEV"] = float(m)
        if run.zoff is not None:
            run.zoff.sci -= F32(reference_level(run.zoff.sci, run))
        run.ctx.log(f"BLEVCORR: reference level {ramp.keywords[-1]['MEANBLEV']:.3f} DN in the last read")


class ZoffCorr(IRStep):
    """Subtract the (reference-corrected) zero read from every read, whole array; TIME and the
    exposure times become times since the zero read."""

    switch = "ZOFFCORR"

    def run(self, run: IRRun) -> None:
        ramp, zoff = run.ramp, run.zoff
        assert zoff is not None
        ramp.sci -= zoff.sci
        ramp.dq |= zoff.dq
        ramp.time -= zoff.time
        ramp.exptime = [t - zoff.samptime for t in ramp.exptime]
        run.ctx.log("ZOFFCORR: zero read subtracted")


class NoisCorr(IRStep):
    """Initial ERR (DN) from read noise and Poisson noise per amplifier quadrant, inside R only,
    for the reads whose ERR is still all zero (the first read that has errors stops the step)."""

    def run(self, run: IRRun) -> None:
        ramp, det = run.ramp, run.det
        rr = det.region
        quads = quadrant_slices(det, run.ltv)
        for k in range(ramp.nsamp):
            if np.any(ramp.err[k][rr]):
                run.ctx.log(f"NOISCORR: read {k} already has errors; skipped from there on")
                return
            for amp, sl in quads:
                ramp.err[k][sl] = noise_dn(ramp.sci[k][sl], det.atodgain[amp], det.readnoise[amp])


def keep_zero_read(run: IRRun) -> None:
    """Save the raw zero read (with the DQICORR flags) before ZSIGCORR adds its signal."""
    ramp = run.ramp
    run.zoff = ZeroRead(ramp.sci[0].copy(), ramp.dq[0].copy(), ramp.time[0].copy(), ramp.exptime[0])
