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

All of that is reproduced. calwf3's loop over lines is not kept: SPILL marks made on later lines
change how those lines are treated, but only in one direction (more marks, more hits), so the
marking is computed for the whole image at once and repeated until the marks stop changing
(:func:`mark`); ``tests/test_calib_crrej.py`` holds it to a line-by-line transcription.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from pipeline.core.errors import BadInput, Unsupported
from pipeline.science.calib.context import CalContext
from pipeline.science.calib.geometry import slot_values
from pipeline.science.calib.imageio import Exposure, Imset
from pipeline.science.calib.numerics import row_blocks
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

    def within(self, rows: slice, ny: int, nx: int) -> Iterator[tuple[slice, slice, float, float]]:
        """(rows counted from ``rows.start``, columns, noise2, gain) of each amplifier's part of a block
        of ``rows`` of a ``ny`` x ``nx`` image."""
        for _, part, cols, n2, g in self.blocks(ny, nx):
            lo, hi = max(part.start, rows.start), min(part.stop, rows.stop)
            if lo < hi:
                yield slice(lo - rows.start, hi - rows.start), cols, n2, g


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
        pos = (a[m.imset.dq == 0] - f32(lo)) / f32(hwidth)
        # C truncates the position to an int and keeps bins 0..nbins-1: positions in (-1, nbins)
        inside = pos[(pos > -1) & (pos < nbins)]
        skies.append(cr_mode(np.bincount(inside.astype(np.int32), minlength=nbins), hwidth, float(lo)))
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
    """Positions within ``reach`` columns of a True in ``h`` (along the last axis: each row alone)."""
    out = h.copy()
    for d in range(1, reach + 1):
        out[..., d:] |= h[..., :-d]
        out[..., :-d] |= h[..., d:]
    return out


def _reach(rej2: float, dy: int) -> int:
    """Largest dx with dx^2 + dy^2 <= radius^2 (-1 when the row is out of reach)."""
    dx = -1
    while float((dx + 1) ** 2 + dy * dy) <= rej2:
        dx += 1
    return dx


@dataclass
class Marks:
    """One member's masks after one pass of the line loop, for the whole image at once."""

    #: Each line's mask as the loop found it: the input DQ, or SPILL where an earlier line spilled.
    before: np.ndarray
    #: Each line's mask once the line was done (EXCLUDE, HIT and SPILL written).
    after: np.ndarray


def mark(dq: np.ndarray, cand: np.ndarray, spill_center: np.ndarray, spill_future: np.ndarray, *,
         dqpat: np.int16, width: int, rej2: float) -> Marks:
    """``rej_loop``'s HIT/SPILL marking of one member, every line at once.

    Line by line, the loop turns a bad-DQ pixel into EXCLUDE (unless an earlier line's hit already
    overwrote it with SPILL), a candidate that is not EXCLUDE into HIT (and an EXCLUDE candidate that
    a hit to its left spilled onto before its turn, see :func:`_exclude_chain`), then writes SPILL
    around each hit on this line and the next ``width`` lines. A line depends on earlier ones only
    through those SPILL marks, and more marks only make more hits. So the hits of every line are
    computed with no marks, the marks from those hits, and then, again and again, the hits of the
    lines whose marks changed and the marks of the lines after them, until nothing changes: the
    loop's result (the one solution, since each line needs only lines before it). Few lines change
    after the first round, but a bad column of candidates changes one line per round. The SPILL
    writes skip a pixel whose value is HIT: on a line not yet done that is an input DQ equal to 8,
    which nothing else overwrites.
    """
    ny = dq.shape[0]
    # EXCLUDE unless spilled: a bad DQ bit (a DQ of exactly SPILL is left alone), or a DQ of EXCLUDE
    excludable = (((dq & dqpat) != 0) & (dq != SPILL)) | (dq == EXCLUDE)
    writable = dq != HIT
    spills = [(dy, reach) for dy in range(1, min(width, ny - 1) + 1) if (reach := _reach(rej2, dy)) >= 0]
    spilled = np.zeros(dq.shape, bool)
    spill_target = spill_future & writable   # where a hit on an earlier line may write SPILL

    def hits_of(rows: np.ndarray | slice) -> np.ndarray:
        ex = excludable[rows] & ~spilled[rows]
        found = cand[rows] & ~ex
        return _exclude_chain(found, cand[rows] & ex & spill_center[rows], rej2) if width > 0 else found

    def spilled_of(rows: np.ndarray) -> np.ndarray:
        out = np.zeros((rows.size, dq.shape[1]), bool)
        for dy, reach in spills:
            has = rows >= dy
            out[has] |= _dilate(hits[rows[has] - dy], reach) & spill_target[rows[has]]
        return out

    def spilled_everywhere() -> np.ndarray:
        """:func:`spilled_of` every line, with views instead of copies of the whole image."""
        out = np.zeros(dq.shape, bool)
        for dy, reach in spills:
            near = _dilate(hits[:ny - dy], reach)
            near &= spill_target[dy:]
            out[dy:] |= near
        return out

    every = np.arange(ny)
    hits = hits_of(slice(None))
    changed = every   # lines whose hits changed
    while spills and changed.size:
        after = np.unique((changed[:, None] + np.arange(1, width + 1)).ravel())
        after = after[after < ny]
        marks = spilled_everywhere()[1:] if after.size == ny - 1 else spilled_of(after)   # lines 1.. or a few
        moved = np.any(marks != spilled[after], axis=1)
        after = after[moved]
        spilled[after] = marks[moved]
        found = hits_of(after)
        differs = np.any(found != hits[after], axis=1)
        changed = after[differs]
        hits[changed] = found[differs]
    before = np.where(spilled, np.int16(SPILL), dq)
    row = np.where(excludable & ~spilled, np.int16(EXCLUDE), before)
    row[hits] = HIT
    if width > 0:
        row[_dilate(hits, _reach(rej2, 0)) & spill_center & (row != HIT)] = SPILL
    return Marks(before, row)


@dataclass
class Pass:
    """What one sigma of the loop needs to know besides the images."""

    sig2: np.float32
    psig2: np.float32
    scale: np.float32
    width: int
    acs: bool
    #: The first pass after a minimum initial guess: the thresholds are ``sig2 * avevar``.
    from_variance: bool


def _tests(m: Member, pic: np.ndarray, ave: np.ndarray, avevar: np.ndarray, sky: float, noise: ChipNoise,
           p: Pass) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each pixel's three comparisons of one member in one pass, a block of rows at a time (the
    temporaries stay in cache): CR candidate (over the threshold), SPILL on its own line and SPILL
    seen from an earlier line (whose test still compares against a pixel value, see the module)."""
    ny, nx = ave.shape
    efac = f32(m.efac)
    skyv, exp2n = f32(sky), f32(efac * efac)
    cand, center = np.empty((ny, nx), bool), np.empty((ny, nx), bool)
    future = center if p.acs else np.empty((ny, nx), bool)
    for rows in row_blocks(ny):
        a = ave[rows]
        d2 = (pic[rows] - a) ** 2
        if p.acs:
            e2 = m.imset.err[rows] * m.imset.err[rows]
            pixsky = np.maximum(a * efac, f32(0))
            thresh = p.sig2 * (e2 + (p.scale * pixsky) ** 2) / exp2n
            spth = p.sig2 * e2 / exp2n
        elif p.from_variance:
            thresh = p.sig2 * avevar[rows]
            spth = thresh
        else:
            thresh, spth = np.empty_like(a), np.empty_like(a)
            dum = a * efac + skyv
            val = np.maximum(dum, f32(0))
            pixsky = np.maximum(dum - skyv, f32(0))
            for lr, cols, n2, g in noise.within(rows, ny, nx):
                base = f32(n2) + val[lr, cols] / f32(g)
                thresh[lr, cols] = p.sig2 * (base + (p.scale * pixsky[lr, cols]) ** 2) / exp2n
                spth[lr, cols] = p.sig2 * base / exp2n
        np.greater(d2, thresh, out=cand[rows])
        np.greater(d2, p.psig2 * spth, out=center[rows])
        if not p.acs:   # the buffer holds the scaled pixel, the raw one on the first width+1 lines
            np.greater(d2, p.psig2 * pic[rows], out=future[rows])
            raw = slice(rows.start, min(rows.stop, p.width + 1))
            if raw.start < raw.stop:
                local = slice(0, raw.stop - raw.start)
                np.greater(d2[local], p.psig2 * m.imset.sci[raw], out=future[raw])
    return cand, center, future


def reject(members: list[Member], par: CRRejParams, noise: ChipNoise, sky: list[float],
           ave: np.ndarray, avevar: np.ndarray, *, acs: bool = False) -> RejResult:
    """``rej_loop``: iterate the sigmas, mark HIT/SPILL (:func:`mark`), rebuild the average; the last
    pass keeps the variance and the DQ bookkeeping.

    ``acs``: calacs's ``acsrej_loop`` (since 2016): thresholds from each input's ERR,
    ``sig^2 (ERR^2 + (s max(ave efac, 0))^2) / efac^2`` (SPILL without the SCALENSE term), every
    buffered line's threshold computed properly, and the output error propagated from the inputs'
    ERR: ``(Σ efac / Σ_good efac) sqrt(Σ_good ERR^2)``.
    """
    ny, nx = ave.shape
    width = math.ceil(par.radius)
    rej2 = float(f32(par.radius) * f32(par.radius))
    psig2 = f32(float(f32(par.thresh) * f32(par.thresh)) if par.thresh > 0 else -1.0)
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
        p = Pass(sig2=f32(f32(sigma) * f32(sigma)), psig2=psig2, scale=scale, width=width, acs=acs,
                 from_variance=not acs and par.initgues[:3] == "min" and it == 0)
        total = np.zeros((ny, nx), np.float32)
        efacsum = np.zeros((ny, nx), np.float32)
        sumvar = np.zeros((ny, nx), np.float32) if last and not acs else None
        err2 = np.zeros((ny, nx), np.float32) if acs else None
        nrej = 0
        for n, m in enumerate(members):
            efac = f32(m.efac)
            if not efac > 0:
                continue
            skyv = f32(sky[n])
            pic = pics[n]
            cand, center, future = _tests(m, pic, ave, avevar, sky[n], noise, p)
            marks = mark(m.imset.dq.view(np.int16), cand, center, future, dqpat=dqpat, width=width, rej2=rej2)
            del cand, center, future
            for rows in row_blocks(ny):
                row = marks.after[rows]
                ok = (row & MASKDQ) == 0
                np.add(total[rows], pic[rows] * efac, out=total[rows], where=ok)
                np.add(efacsum[rows], efac, out=efacsum[rows], where=ok)
                if err2 is not None:
                    e = m.imset.err[rows]
                    np.add(err2[rows], e * e, out=err2[rows], where=ok)
                if not last:
                    continue
                if sumvar is not None:
                    v = np.maximum(pic[rows] * efac + skyv, f32(0))
                    sv = sumvar[rows]
                    for lr, cols, n2, g in noise.within(rows, ny, nx):
                        np.add(sv[lr, cols], f32(n2) + v[lr, cols] / f32(g), out=sv[lr, cols], where=ok[lr, cols])
                b = (marks.before[rows] | dq2[rows]) & ~crflag & ~np.int16(SPILL)
                sval = b | dq_out[rows]
                rej = (row == HIT) | (row == SPILL)
                b[rej] |= crflag
                nrej += int(rej.sum())
                sval[~rej] &= ~crflag
                dq2[rows] = b
                dq_out[rows] = sval
                crmasks[n][rows] = (b & crflag).view(np.uint16)
        have = efacsum > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            ave = np.where(have, total / efacsum, ave if not last else f32(0)).astype(np.float32)
            if last and err2 is not None:
                ratio = (exptot / np.where(have, efacsum, f32(1))).astype(np.float32)
                avevar = np.where(have, (ratio * np.sqrt(err2.astype(np.float64))).astype(np.float32),
                                  f32(0)).astype(np.float32)
            elif last:
                assert sumvar is not None
                avevar = np.where(have, (np.sqrt(sumvar.astype(np.float64)) / efacsum).astype(np.float32),
                                  f32(0)).astype(np.float32)
    return RejResult(ave, avevar, dq_out.view(np.uint16), list(sky), nrej, crmasks)


def _exclude_chain(hits: np.ndarray, excl_cand: np.ndarray, rej2: float) -> np.ndarray:
    """EXCLUDE pixels that are CR candidates become HITs when an earlier (lower column) hit in the
    same row spilled onto them before their turn; such a hit can in turn reach the next one. Each
    row of the 2-D arrays on its own; only rows with such candidates are looked at."""
    lines = np.flatnonzero(excl_cand.any(axis=1))
    if not lines.size:
        return hits
    reach = _reach(rej2, 0)
    part, cands = hits[lines], excl_cand[lines]
    while True:
        right = np.zeros_like(part)
        for d in range(1, reach + 1):
            right[:, d:] |= part[:, :-d]
        new = cands & right & ~part
        if not new.any():
            break
        part |= new
    hits = hits.copy()
    hits[lines] = part
    return hits


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
