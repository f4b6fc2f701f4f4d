"""CRCORR: cosmic-ray rejection of a CR-SPLIT/REPEAT stack (``wf3rej``; ``acsrej`` with ``acs=True``).

Runs on the trimmed ``_blv_tmp`` images of the members, before DARK/FLAT, and produces the
``_crj`` imsets: ``SCI = ave * TEXPTIME + SKYSUM``, ``ERR = sqrt(Σ_good var)/Σ_good efac * TEXPTIME``,
DQ the OR of the inputs with 8192 where every input was rejected. With CRMASK the rejected
pixels get 8192 in each member's DQ too.

calwf3 does this with scrolling line buffers, and several of its results depend on that:

* each member's mask starts as its input DQ; a pixel with a bad bit (``BADINPDQ``) becomes
  EXCLUDE unless an earlier line already marked it SPILL (2), which overwrote the DQ value;
* a pixel is summed only if ``mask & (EXCLUDE|HIT|SPILL|2) == 0``, so input DQ bits 2, 4 and 8
  always keep a pixel out of the sum, whatever BADINPDQ says;
* the SPILL test of a line not yet processed compares against the *pixel value* that filled the
  threshold buffer (the raw value for the first ``width+1`` lines, the sky-subtracted, exposure-
  scaled value after), not a threshold;
* in the output DQ, bits 2 and 8192 of the inputs are removed before the OR.

All of that is reproduced. The loop over lines is kept (vectorised along the row) because SPILL
marks made on later lines change how those lines are treated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from pipeline.core.errors import BadInput, Unsupported
from pipeline.science.calib.context import CalContext
from pipeline.science.calib.geometry import slot_values
from pipeline.science.calib.imageio import Exposure, Imset
from pipeline.science.calib.tables import CRRejParams

OK, SPILL, EXCLUDE, HIT = 0, 2, 4, 8
MASKDQ = EXCLUDE | HIT | SPILL
DATAREJECT = 8192
MINVAL, MIN_BINS, MAX_BINS = -15000, 1000, 10000
INT_MAX = 2147483647


@dataclass
class Member:
    """One input image of one chip: its pixels and what the rejection needs to know about it."""

    name: str
    imset: Imset
    efac: float
    countrate: bool = False


@dataclass
class ChipNoise:
    """Per-amp-slot noise (DN^2, or e-^2) and gain, and the column where the right amp starts.

    WFC3/IR (``get_nsegn``'s IR branch) has four quadrants: rows below ``ampy`` use ``low``
    (noise2, gain) for amps B and C instead of A and D.
    """

    noise2: tuple[float, float]
    gain: tuple[float, float]
    ampx: int
    ampy: int = 0
    low: tuple[tuple[float, float], tuple[float, float]] | None = None

    def blocks(self, ny: int, nx: int) -> list[tuple[int, slice, slice, float, float]]:
        """(slot, rows, columns, noise2, gain) of each amplifier's part of the image."""
        out = []
        for slot, cols in _halves(nx, self.ampx):
            if self.low is None:
                out.append((slot, slice(0, ny), cols, self.noise2[slot], self.gain[slot]))
            else:
                out.append((slot, slice(0, self.ampy), cols, self.low[0][slot], self.low[1][slot]))
                out.append((slot, slice(self.ampy, ny), cols, self.noise2[slot], self.gain[slot]))
        return out

    def line_blocks(self, line: int, nx: int) -> list[tuple[slice, float, float]]:
        """(columns, noise2, gain) of the amplifiers one image line reads."""
        return [(cols, n2, g) for _, rows, cols, n2, g in self.blocks(line + 1, nx) if rows.start <= line < rows.stop]


@dataclass
class RejResult:
    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    sky: list[float]
    nrej: int
    crmasks: list[np.ndarray] = field(default_factory=list)


def f32(x: float) -> np.float32:
    return np.float32(x)


# ------------------------------------------------------------------------------------------- sky


def cr_mode(hist: np.ndarray, hwidth: float, hmin: float) -> float:
    """``cr_mode``: histogram peak refined by a parabola through its neighbours.

    C evaluates ``hmin + 0.5 * hwidth`` and the parabola's ``bpeak + 0.5 + 0.5 * (dh1 - dh2) / denom``
    in double (the constants are doubles) and rounds once to the float it returns; NumPy 2 would do
    ``0.5 * float32`` in float32, so those terms are computed on Python floats here."""
    nbins = hist.size
    hw, hm = f32(hwidth), f32(hmin)

    def at(bins: float) -> float:  # hmin + bins * hwidth in double, then the float C returns
        return float(f32(float(hm) + bins * float(hw)))

    if nbins == 1:
        return at(0.5)
    if nbins == 2:
        if hist[0] > hist[1]:
            return at(0.5)
        if hist[1] > hist[0]:
            return at(1.5)
        return float(f32(hm + hw))
    bpeak = int(np.argmax(hist))
    if bpeak == 0:
        return at(0.5)
    if bpeak == nbins - 1:
        return at(nbins - 0.5)
    dh1 = f32(hist[bpeak] - hist[bpeak - 1])
    dh2 = f32(hist[bpeak] - hist[bpeak + 1])
    denom = f32(dh1 + dh2)
    if abs(denom) < 1e-20:
        return at(bpeak + 0.5)
    mode = f32(bpeak + 0.5 + 0.5 * float(f32(dh1 - dh2)) / float(denom))
    return float(f32(hm + mode * hw))


def sky_levels(members: list[Member], skysub: str, badinpdq: int) -> list[float]:
    """``rej_sky``: none, or the histogram mode of each image (bin range from the first image)."""
    if skysub == "none":
        return [0.0] * len(members)
    if skysub != "mode":
        raise Unsupported(f"CRREJTAB SKYSUB = {skysub!r}: only 'none' and 'mode' are supported by the "
                          "built-in engine", keyword="CRREJTAB")
    first = members[0]
    a = _counts(first)
    good = (first.imset.dq & np.uint16(badinpdq)) == 0
    vals = a[good]
    data_min = float(vals.min()) if vals.size else float(INT_MAX)
    total = np.cumsum(vals, dtype=np.float32)[-1] if vals.size else np.float32(0)  # C float accumulation
    npt = max(vals.size, 1)
    lo = MINVAL if data_min < MINVAL else math.trunc(data_min)
    mean = math.trunc(float(f32(f32(total / f32(npt)) + f32(1)))) if total > 0 else 1  # C: float + 1
    hi = 2 * mean - lo
    nbins = hi - lo + 1
    if nbins < MIN_BINS:
        nbins, hwidth = MIN_BINS, float(f32(MIN_BINS) / f32(MIN_BINS))
    elif nbins > MAX_BINS:
        hwidth, nbins = float(f32(nbins) / f32(MAX_BINS)), MAX_BINS
    else:
        hwidth = 1.0
    skies = []
    for m in members:
        a = _counts(m)
        v = a[m.imset.dq == 0]
        pos = (v - f32(lo)) / f32(hwidth)
        pos = pos[np.abs(pos) < INT_MAX]
        h = np.trunc(pos).astype(np.int64)
        h = h[(h >= 0) & (h < nbins)]
        skies.append(cr_mode(np.bincount(h, minlength=nbins), hwidth, float(lo)))
    return skies


def _counts(m: Member) -> np.ndarray:
    return m.imset.sci * f32(m.efac) if m.countrate else m.imset.sci


# ------------------------------------------------------------------------------------ initial guess


def _halves(nx: int, ampx: int) -> tuple[tuple[int, slice], tuple[int, slice]]:
    return (0, slice(0, ampx)), (1, slice(ampx, nx))


def initial_guess(members: list[Member], sky: list[float], par: CRRejParams,
                  noise: ChipNoise) -> tuple[np.ndarray, np.ndarray]:
    """``rej_init``: median or minimum of the scaled stack, and its variance."""
    ny, nx = members[0].imset.sci.shape
    scale = f32(f32(par.scalense) / 100.0)
    dqpat = np.uint16(par.badinpdq)
    exp2 = [f32(f32(m.efac) * f32(m.efac)) for m in members]
    ave = np.zeros((ny, nx), np.float32)
    var = np.zeros((ny, nx), np.float32)
    if par.initgues[:3] == "med":
        stack = np.full((len(members), ny, nx), np.inf, np.float32)
        for n, m in enumerate(members):
            if m.efac > 0:
                val = (_counts(m) - f32(sky[n])) / f32(m.efac)
                good = (m.imset.dq & dqpat) == 0
                stack[n][good] = val[good]
        order = np.argsort(stack, axis=0, kind="stable")
        srt = np.take_along_axis(stack, order, axis=0)
        npts = np.isfinite(stack).sum(axis=0)
        e2 = np.asarray(exp2, np.float32)[order]
        hi = np.clip(npts // 2, 0, len(members) - 1)
        lo = np.clip(npts // 2 - 1, 0, len(members) - 1)
        pick = lambda a, k: np.take_along_axis(a, k[None], axis=0)[0]  # noqa: E731
        even = (npts % 2) == 0
        med = np.where(even, ((pick(srt, lo) + pick(srt, hi)) / 2.0).astype(np.float32), pick(srt, hi))
        expn = np.where(even, ((pick(e2, lo) + pick(e2, hi)) / 2.0).astype(np.float32), pick(e2, hi))
        med = np.where(npts == 0, f32(0), med)
        # a pixel with no good input keeps the previous pixel's exposure factor (calwf3 never resets it)
        flat = expn.ravel().copy()
        has = (npts.ravel() > 0)
        idx = np.where(has, np.arange(flat.size), -1)
        np.maximum.accumulate(idx, out=idx)
        flat = np.where(idx >= 0, flat[np.maximum(idx, 0)], f32(0))
        exp2n = np.where(flat > 0, flat, f32(1)).reshape(ny, nx).astype(np.float32)
        ave[:] = med
        for _, rows, cols, n2, g in noise.blocks(ny, nx):
            raw0 = med[rows, cols]
            var[rows, cols] = (f32(n2) + raw0 / f32(g) + (scale * raw0) ** 2) / exp2n[rows, cols]
        return ave, var
    for n, m in enumerate(members):
        raw = _counts(m)
        efac = f32(m.efac)
        skyv = f32(sky[n])
        raw0 = np.maximum(raw, f32(0))
        signal0 = np.maximum(raw - skyv, f32(0))
        val = (raw - skyv) / efac if efac > 0 else np.zeros_like(raw)
        good = (m.imset.dq & dqpat) == 0
        for slot, rows, cols, n2, g in noise.blocks(ny, nx):
            v, a, e = val[rows, cols], ave[rows, cols], var[rows, cols]
            err = (f32(n2) + raw0[rows, cols] / f32(g)
                   + (scale * signal0[rows, cols]) ** 2) / exp2[n] if efac > 0 else np.zeros_like(v)
            lower = np.ones_like(v, bool) if n == 0 else v < a
            if slot == 0:  # left amp: a lower value from a bad input zeroes the guess
                usable = good[rows, cols] & (efac > 0)
                a[...] = np.where(lower, np.where(usable, v, f32(0)), a)
                e[...] = np.where(lower, np.where(usable, err, f32(0)), e)
            else:          # right amp: only a good lower value replaces it (any value for n == 0)
                take = lower if n == 0 else lower & good[rows, cols]
                a[...] = np.where(take, v, a)
                e[...] = np.where(take, err, e)
    return ave, var


# ------------------------------------------------------------------------------------------- loop


def _dilate(h: np.ndarray, reach: int) -> np.ndarray:
    """Positions within ``reach`` columns of a True in ``h``."""
    out = h.copy()
    for d in range(1, reach + 1):
        out[d:] |= h[:-d]
        out[:-d] |= h[d:]
    return out


def _reach(rej2: float, dy: int) -> int:
    """Largest dx with dx^2 + dy^2 <= radius^2 (-1 when the row is out of reach)."""
    dx = -1
    while float((dx + 1) ** 2 + dy * dy) <= rej2:
        dx += 1
    return dx


def reject(members: list[Member], par: CRRejParams, noise: ChipNoise, sky: list[float],
           ave: np.ndarray, avevar: np.ndarray, *, acs: bool = False) -> RejResult:
    """``rej_loop``: iterate the sigmas, mark HIT/SPILL, rebuild the average; the last pass keeps
    the variance and the DQ bookkeeping.

    ``acs``: calacs's ``acsrej_loop`` (since 2016): thresholds from each input's ERR,
    ``sig^2 (ERR^2 + (s max(ave efac, 0))^2) / efac^2`` (SPILL without the SCALENSE term), every
    buffered line's threshold computed properly, and the output error propagated from the inputs'
    ERR: ``(Σ efac / Σ_good efac) sqrt(Σ_good ERR^2)``.
    """
    ny, nx = ave.shape
    width = math.ceil(par.radius)
    rej2 = float(f32(par.radius) * f32(par.radius))
    psig2 = float(f32(par.thresh) * f32(par.thresh)) if par.thresh > 0 else -1.0
    scale = f32(f32(par.scalense) / 100.0)
    dqpat = np.int16(np.uint16(par.badinpdq).view(np.int16))
    crflag = np.int16(DATAREJECT)
    niter = len(par.sigmas)
    pics = []
    for n, m in enumerate(members):
        pics.append(((_counts(m) - f32(sky[n])) / f32(m.efac)).astype(np.float32) if m.efac > 0
                    else np.zeros((ny, nx), np.float32))
    exptot = np.cumsum(np.asarray([m.efac for m in members], np.float32), dtype=np.float32)[-1]
    dq_out = np.full((ny, nx), DATAREJECT, np.int16)
    dq2 = np.zeros((ny, nx), np.int16)
    crmasks = [np.zeros((ny, nx), np.uint16) for _ in members]
    nrej = 0
    for it, sigma in enumerate(par.sigmas):
        last = it == niter - 1
        sig2 = f32(f32(sigma) * f32(sigma))
        total = np.zeros((ny, nx), np.float32)
        efacsum = np.zeros((ny, nx), np.float32)
        sumvar = np.zeros((ny, nx), np.float32)
        err2 = np.zeros((ny, nx), np.float32)
        nrej = 0
        for n, m in enumerate(members):
            efac = f32(m.efac)
            if not efac > 0:
                continue
            skyv, exp2n = f32(sky[n]), f32(efac * efac)
            pic = pics[n]
            d2 = (pic - ave) ** 2
            if acs:
                e2 = m.imset.err * m.imset.err
                pixsky = np.maximum(ave * efac, f32(0))
                thresh = sig2 * (e2 + (scale * pixsky) ** 2) / exp2n
                spth = sig2 * e2 / exp2n
            elif par.initgues[:3] == "min" and it == 0:
                thresh = sig2 * avevar
                spth = thresh
            else:
                thresh = np.empty((ny, nx), np.float32)
                spth = np.empty((ny, nx), np.float32)
                dum = ave * efac + skyv
                val = np.maximum(dum, f32(0))
                pixsky = np.maximum(dum - skyv, f32(0))
                for _, rows, cols, n2, g in noise.blocks(ny, nx):
                    base = f32(n2) + val[rows, cols] / f32(g)
                    thresh[rows, cols] = sig2 * (base + (scale * pixsky[rows, cols]) ** 2) / exp2n
                    spth[rows, cols] = sig2 * base / exp2n
            # the threshold buffer of a line not yet processed still holds pixel values
            fill = spth if acs else pic.copy()
            if not acs:
                fill[:width + 1] = m.imset.sci[:width + 1]
            spill_center = d2 > f32(psig2) * spth
            spill_future = d2 > f32(psig2) * fill
            cand_all = d2 > thresh
            mask = m.imset.dq.view(np.int16).copy()
            for line in range(ny):
                row = mask[line]
                bufdq = row.copy()
                row[((bufdq & dqpat) != 0) & (bufdq != SPILL)] = EXCLUDE
                cand = cand_all[line]
                hits = cand & (row != EXCLUDE)
                if width > 0 and hits.any():
                    hits = _exclude_chain(hits, cand & (row == EXCLUDE) & spill_center[line], rej2)
                    row[hits] = HIT
                    for dy in range(0, width + 1):
                        tgt_line = line + dy
                        reach = _reach(rej2, dy)
                        if tgt_line >= ny or reach < 0:
                            continue
                        test = spill_center[line] if dy == 0 else spill_future[tgt_line]
                        tgt = _dilate(hits, reach) & test & (mask[tgt_line] != HIT)
                        mask[tgt_line][tgt] = SPILL
                elif hits.any():
                    row[hits] = HIT
                ok = (row & MASKDQ) == 0
                total[line][ok] += pic[line][ok] * efac
                efacsum[line][ok] += efac
                if acs:
                    err2[line][ok] += m.imset.err[line][ok] * m.imset.err[line][ok]
                if last:
                    dum = pic[line] * efac + skyv
                    v = np.maximum(dum, f32(0))
                    for cols, n2, g in noise.line_blocks(line, nx):
                        okc = ok[cols]
                        sv = sumvar[line, cols]
                        sv[okc] += f32(n2) + v[cols][okc] / f32(g)
                    b = (bufdq | dq2[line]) & ~crflag & ~np.int16(SPILL)
                    sval = b | dq_out[line]
                    rej = (row == HIT) | (row == SPILL)
                    b[rej] |= crflag
                    nrej += int(rej.sum())
                    sval[~rej] &= ~crflag
                    dq2[line] = b
                    dq_out[line] = sval
                    crmasks[n][line] = (b & crflag).view(np.uint16)
        have = efacsum > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            ave = np.where(have, total / efacsum, ave if not last else f32(0)).astype(np.float32)
            if last and acs:
                ratio = (exptot / np.where(have, efacsum, f32(1))).astype(np.float32)
                avevar = np.where(have, (ratio * np.sqrt(err2.astype(np.float64))).astype(np.float32),
                                  f32(0)).astype(np.float32)
            elif last:
                avevar = np.where(have, (np.sqrt(sumvar.astype(np.float64)) / efacsum).astype(np.float32),
                                  f32(0)).astype(np.float32)
    return RejResult(ave, avevar, dq_out.view(np.uint16), list(sky), nrej, crmasks)


def _exclude_chain(hits: np.ndarray, excl_cand: np.ndarray, rej2: float) -> np.ndarray:
    """EXCLUDE pixels that are CR candidates become HITs when an earlier (lower column) hit in the
    same row spilled onto them before their turn; such a hit can in turn reach the next one."""
    if not excl_cand.any():
        return hits
    reach = _reach(rej2, 0)
    hits = hits.copy()
    while True:
        right = np.zeros_like(hits)
        for d in range(1, reach + 1):
            right[d:] |= hits[:-d]
        new = excl_cand & right & ~hits
        if not new.any():
            return hits
        hits |= new


# ---------------------------------------------------------------------------------------- driver


def combine(members: list[Member], par: CRRejParams, noise: ChipNoise, *, acs: bool = False) -> RejResult:
    """The whole rejection for one chip: sky, initial guess, iterations, output scaling.

    ``acs``: calacs's ACSREJ (see :func:`reject`); its minimum guess zeroes a pixel whenever a
    lower value comes from a bad input (calwf3 does that only left of AMPX), its ERR is already in
    electrons, and pixel (0,0) of the ERR is set to -1 ("so that an image array is produced").
    """
    efacs = [m.efac for m in members]
    exptot = float(np.cumsum(np.asarray(efacs, np.float32), dtype=np.float32)[-1])
    if exptot == 0.0:
        for m in members:
            m.efac = 1.0
        texpt = float(len(members))
    else:
        texpt = exptot
    non_zero = sum(1 for m in members if m.efac > 0)
    sky = sky_levels(members, par.skysub, par.badinpdq)
    first = next(m for m in members if m.efac > 0)
    if non_zero > 1:
        guess_noise = replace(noise, ampx=members[0].imset.sci.shape[1]) if acs else noise
        ave, var = initial_guess(members, sky, par, guess_noise)
        res = reject(members, par, noise, sky, ave, var, acs=acs)
    else:
        res = RejResult(first.imset.sci.copy(), first.imset.err.copy(), first.imset.dq.copy(), sky, 0,
                        [np.zeros_like(first.imset.dq) for _ in members])
    skysum = float(np.cumsum(np.asarray(sky, np.float32), dtype=np.float32)[-1])
    skysum = max(skysum, 0.0)
    res.sci = (res.sci * f32(texpt) + f32(skysum)).astype(np.float32)
    if acs:
        res.err = res.err.astype(np.float32)
        res.err[0, 0] = f32(-1.0)
    else:
        res.err = (res.err * f32(texpt)).astype(np.float32)
    res.sky = sky
    return res


def chip_noise(primary: dict | object, chip: int, ampx: int) -> ChipNoise:  # type: ignore[type-arg]
    """Read noise (converted to DN: READNSE/ATODGN) and gain of the chip's two amp slots, from the
    primary ``READNSEx``/``ATODGNx`` that WF3CCD wrote."""
    def get(k: str) -> float:
        return float(np.float32(primary.get(k, 0.0)))  # type: ignore[attr-defined]

    gains = tuple(get(f"ATODGN{a}") for a in "ABCD")
    rons = tuple(get(f"READNSE{a}") for a in "ABCD")
    if not any(g > 0 for g in gains):
        raise BadInput("all ATODGN values are 0; CRCORR needs the gains WF3CCD writes", keyword="ATODGNA")
    noise_dn = tuple(float(f32(r) / f32(g)) if g != 0 else 0.0 for r, g in zip(rons, gains, strict=True))
    n2 = tuple(float(f32(v) * f32(v)) for v in slot_values(noise_dn, chip))  # type: ignore[arg-type]
    return ChipNoise(noise2=n2, gain=slot_values(gains, chip), ampx=ampx)  # type: ignore[arg-type]


def exposure_time_bounds(exposures: list[Exposure]) -> tuple[float, float]:
    starts = [float(e.primary.get("EXPSTART", 0.0)) for e in exposures]
    ends = [float(e.primary.get("EXPEND", 0.0)) for e in exposures]
    return min(starts), max(ends)


def exposure_flag(exposures: list[Exposure]) -> str:
    """WF3REJ's EXPFLAG for the combined image: NORMAL when every member's is, else MIXED."""
    flags = {str(e.primary.get("EXPFLAG", "NORMAL")).strip() for e in exposures}
    return "NORMAL" if flags == {"NORMAL"} else "MIXED"


def log_parameters(ctx: CalContext, par: CRRejParams, nimages: int) -> None:
    ctx.log(f"CRCORR: {nimages} images, CRREJTAB row {par.row}: sigmas {','.join(f'{s:g}' for s in par.sigmas)}, "
            f"sky {par.skysub}, radius {par.radius:g}, thresh {par.thresh:g}, initgues {par.initgues}, "
            f"scalense {par.scalense:g}%, badinpdq {par.badinpdq}, crmask {'yes' if par.crmask else 'no'}")
