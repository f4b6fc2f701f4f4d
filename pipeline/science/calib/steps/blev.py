"""BLEVCORR from the overscan (``doblev.c``, ``findblev.c``, ``blevfit.c``, ``blevdrift.c``).

Per amp: the median of each row's bias columns (good pixels only), one-sided clipping of those
medians, an unweighted straight-line fit against the row number, and optionally a slope along the
row from the parallel virtual overscan. calwf3 and the pre-SM4/HRC branch of calacs share this
code; :class:`BlevVariant` holds where they differ.

⚠ Reproduced quirk: the line is fitted against ``j = r - TRIMY1`` but evaluated at the raw row
``r`` (``BlevEval(dj)`` with ``dj`` starting at ``begy``), so on WFC3 chip 1 (TRIMY1 = 19) the
subtracted level is off by ``19 * slope``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np

from pipeline.core.errors import BadInput
from pipeline.science.calib.chip import Chip, Step
from pipeline.science.calib.context import CalContext
from pipeline.science.calib.geometry import AmpRegion, amp_index, amp_regions
from pipeline.science.calib.numerics import row_blocks

FLT_MIN = float(np.finfo(np.float32).tiny)


@dataclass(frozen=True)
class BlevVariant:
    """Where calacs's doBlev differs from calwf3's."""

    name: str
    bias_letters: tuple[str, str]       # virtual (WFC3: C, D) or physical (ACS: A, B) bias sections
    virtual_in_regions: bool            # WFC3's science boxes skip TRIMX3/TRIMX4
    sample_sdev: bool                   # ACS divides by n-1
    clips: tuple[float, float]          # (sigma clip, read-noise clip)
    integer_thresholds: bool            # ACS passes thresholds through C abs() -> int
    readnoise_in_dn: bool               # WFC3 divides READNSE by ATODGN
    bias_in_electrons: bool             # ACS default bias = CCDBIAS * ATODGN
    drift_rows_inclusive: bool          # ACS takes rows vy0..vy1 inclusive
    clean_drift: bool                   # WFC3 clips the column medians too
    bins: tuple[int, ...]


WFC3 = BlevVariant("wfc3", ("C", "D"), True, False, (3.5, 2.0), False, True, False, False, True, (1, 2, 3))
ACS = BlevVariant("acs", ("A", "B"), False, True, (3.0, 3.0), True, False, True, True, False, (1, 2, 4))


def _nanmedian_rows(block: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(block, axis=1)


def _good(dq: np.ndarray, sdqflags: int) -> np.ndarray:
    return (dq & np.uint16(sdqflags)) == 0


def clean_fit_values(values: np.ndarray, mask: np.ndarray, rn: float, v: BlevVariant) -> np.ndarray:
    """``cleanBiasFit``/``cleanDriftFit``: one-sided rejection of high bias values (returns the mask)."""
    mask = mask.copy()
    if not mask.any():
        return mask
    kept = values[mask]
    mean = np.cumsum(kept)[-1] / kept.size
    svar = np.cumsum((kept - mean) ** 2)[-1]
    n = kept.size - 1 if v.sample_sdev else kept.size
    sdev = math.sqrt(svar / n) if n > 0 else math.inf
    if mean >= 0 and sdev > math.sqrt(mean):
        sdev = math.sqrt(mean)
    mask = _reject_above(values, mask, float(v.clips[0]) * sdev + mean, v)
    if not mask.any():
        return mask
    kept = values[mask]
    mean = np.cumsum(kept)[-1] / kept.size
    # C: float clip * float rn is a float product, then the double mean is added
    return _reject_above(values, mask, float(np.float32(v.clips[1]) * np.float32(rn)) + mean, v)


def _reject_above(values: np.ndarray, mask: np.ndarray, thr: float, v: BlevVariant) -> np.ndarray:
    if not math.isfinite(thr):
        return mask
    if v.integer_thresholds:
        thr = abs(math.trunc(thr))
    return mask & ~(values > thr)


def line_fit(x: np.ndarray, y: np.ndarray, *, eps: float) -> tuple[float, float] | None:
    """Unweighted least squares ``y = slope*x + icpt`` with the C code's sums; None if singular."""
    if x.size < 1:
        return None
    s0 = float(x.size)
    s1 = float(np.cumsum(x)[-1])
    s2 = float(np.cumsum(y)[-1])
    s3 = float(np.cumsum(x * y)[-1])
    s4 = float(np.cumsum(x * x)[-1])
    d = s4 - s1 * s1 / s0
    if -eps < d < eps or d == 0.0:
        return None
    xmean, ymean = s1 / s0, s2 / s0
    slope = (s3 - xmean * ymean * s0) / d
    return slope, ymean - slope * xmean


class BlevCorr(Step):
    switch = "BLEVCORR"
    label = "BLEVCORR"

    def __init__(self, variant: BlevVariant = WFC3) -> None:
        self.v = variant

    def default_bias(self, chip: Chip) -> float:
        """CCDBIAS of the first amp letter of CCDAMP (+2 on a multi-amp chip 2), in the data's units."""
        amps = chip.ccd.ccdamp
        num = amp_index(amps[0])
        if len(amps) > 1 and chip.number == 2:
            num += 2
        value = np.float32(chip.ccd.ccdbias[num])
        if self.v.bias_in_electrons:
            value = np.float32(value * np.float32(chip.ccd.atodgain[num]))
        return float(value)

    def run(self, ctx: CalContext, chip: Chip) -> None:
        if chip.bin[0] not in self.v.bins or chip.bin[1] not in self.v.bins:
            raise BadInput(f"BLEVCORR: bin size {chip.bin} must be one of {self.v.bins}", path=ctx.path,
                           keyword="BINAXIS1")
        ccdbias = self.default_bias(chip)
        if not chip.oscn.overscan:
            chip.sci[...] -= np.float32(ccdbias)
            chip.sci_keywords["MEANBLEV"] = float(np.float32(ccdbias))
            chip.blev[chip.ccd.ccdamp[0]] = ccdbias
            ctx.warn(f"chip {chip.number}: no overscan in the image; CCDTAB bias {ccdbias:g} subtracted")
            return
        ny, nx = chip.sci.shape
        oscn = chip.oscn
        if not self.v.virtual_in_regions:
            oscn = replace(oscn, trimx=[oscn.trimx[0], oscn.trimx[1], 0, 0])
        regions = amp_regions(chip.ccd.ccdamp, chip.number, chip.ampx, chip.ampy, oscn, nx, ny)
        dodrift = not (chip.oscn.vy[0] <= 0 and chip.oscn.vy[1] <= 0)
        levels = []
        for reg in regions:
            level = self._amp(ctx, chip, reg, len(regions), ccdbias, dodrift)
            chip.blev[reg.amp] = level
            levels.append(level)
        chip.sci_keywords["MEANBLEV"] = float(np.float32(sum(levels) / len(levels)))
        ctx.log(f"chip {chip.number}: bias level from overscan subtracted, mean "
                f"{chip.sci_keywords['MEANBLEV']:.6g} ({', '.join(f'{a} {lv:.6g}' for a, lv in chip.blev.items())})")

    # ------------------------------------------------------------------------------------------
    def bias_sections(self, chip: Chip, reg: AmpRegion, numamps: int) -> list[tuple[int, int]]:
        lo, hi = self.v.bias_letters
        bs = chip.oscn.biassect
        a, b = bs[lo], bs[hi]
        nx = chip.sci.shape[1]
        if self.v.name == "wfc3":
            if a[1] > 0 and b[1] > 0:
                secs = [b, a] if reg.right else [a, b]
                return secs if numamps == 1 else secs[:1]
            if a[1] <= 0 and b[1] <= 0:
                pa, pb = bs["A"], bs["B"]
                return [pb if pa[1] == 0 else pa]
            return [b if a[1] == 0 else a]
        if a[1] > 0 and b[1] > 0:
            secs = [b, a] if reg.right else [a, b]
            secs = secs if numamps == 1 else secs[:1]
        else:
            secs = [b if a[1] == 0 else a]
        return [(max(s0, 0), min(s1, nx - 1)) for s0, s1 in secs]

    def _amp(self, ctx: CalContext, chip: Chip, reg: AmpRegion, numamps: int, ccdbias: float,
             dodrift: bool) -> float:
        sci, dq = chip.sci, chip.dq
        sections = self.bias_sections(chip, reg, numamps)
        k = amp_index(reg.amp)
        gain, rn = np.float32(chip.ccd.atodgain[k]), np.float32(chip.ccd.readnoise[k])
        if self.v.readnoise_in_dn and gain != 0:
            rn = np.float32(rn / gain)
        sizey = reg.endy - reg.begy
        sizex = reg.endx - reg.begx
        trimy1 = chip.oscn.trimy[0]
        rows = slice(trimy1, trimy1 + sizey)

        # serial: median of each row's bias columns, clipped, straight line against j
        vals = np.concatenate([sci[rows, s0:s1 + 1] for s0, s1 in sections], axis=1).astype(np.float64)
        good = np.concatenate([_good(dq[rows, s0:s1 + 1], chip.sdqflags) for s0, s1 in sections], axis=1)
        vals[~good] = np.nan
        medians = _nanmedian_rows(vals)
        have = ~np.isnan(medians)
        if (~have).any():
            ctx.warn(f"chip {chip.number} amp {reg.amp}: {int((~have).sum())} image line(s) have too few "
                     "usable overscan pixels")
        keep = clean_fit_values(np.where(have, medians, 0.0), have, float(rn), self.v)
        mid = sizey // 2
        j = np.arange(sizey, dtype=np.float64)
        fit = line_fit(j[keep] - mid, medians[keep], eps=FLT_MIN)
        if fit is None:
            ctx.warn(f"chip {chip.number} amp {reg.amp}: no bias level data or singular fit; CCDTAB bias "
                     f"{ccdbias:g} subtracted")
            slope, icpt = 0.0, float(ccdbias)
        else:
            slope, icpt = fit
        r = np.arange(reg.begy, reg.endy, dtype=np.float64)
        level = (r - mid) * slope + icpt           # fitted in j, evaluated at the raw row r

        # parallel: slope along the row from the virtual overscan
        drift = None
        average_drift = 0.0
        if dodrift:
            dslope, zerocol = self._drift(chip, reg, sections, float(rn))
            if dslope is not None:
                cols = np.arange(reg.begx, reg.endx, dtype=np.float64)
                drift = (cols - zerocol) * dslope
                average_drift = (sizex / 2.0 - zerocol) * dslope

        block = sci[reg.begy:reg.endy, reg.begx:reg.endx]
        for rows in row_blocks(block.shape[0]):       # (pix - level) - drift in double, then float
            tmp = np.subtract(block[rows], level[rows, None], dtype=np.float64)
            if drift is not None:
                tmp -= drift[None, :]
            block[rows] = tmp
        return float(np.cumsum(level + average_drift)[-1] / sizey)

    def _drift(self, chip: Chip, reg: AmpRegion, sections: list[tuple[int, int]],
               rn: float) -> tuple[float | None, float]:
        vx = chip.oscn.vx[2:4] if (reg.right and self.v.name == "wfc3") else chip.oscn.vx[0:2]
        vy = chip.oscn.vy[2:4] if (reg.right and self.v.name == "wfc3") else chip.oscn.vy[0:2]
        zerocol = (sections[0][0] + sections[0][1]) / 2.0
        if vx[1] <= vx[0] or vy[1] <= vy[0]:
            return None, zerocol
        ystop = vy[1] + 1 if self.v.drift_rows_inclusive else vy[1]
        block = chip.sci[vy[0]:ystop, vx[0]:vx[1] + 1].astype(np.float64)
        good = _good(chip.dq[vy[0]:ystop, vx[0]:vx[1] + 1], chip.sdqflags)
        block[~good] = np.nan
        medians = _nanmedian_rows(block.T)
        have = ~np.isnan(medians)
        keep = clean_fit_values(np.where(have, medians, 0.0), have, rn, self.v) if self.v.clean_drift else have
        midcol = (vx[0] + vx[1]) // 2
        cols = np.arange(vx[0], vx[1] + 1, dtype=np.float64) - midcol
        fit = line_fit(cols[keep], medians[keep], eps=0.0)
        return (None if fit is None else fit[0]), zerocol
