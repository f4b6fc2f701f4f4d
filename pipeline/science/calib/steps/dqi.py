"""DQICORR (``dodqi.c``) and the full-well saturation image (``dofwsat.c``).

Flags set here: 2048 A-to-D saturation (SCI > 65534, whole readout), 256 full-well saturation
(scalar SATURATE or the SATUFILE image), and whatever the BPIXTAB lists.

Which full-well path runs is decided once per exposure (``checkBias``): the **scalar** path when
BIASCORR is not PERFORM, the BIASFILE is dummy, or SATUFILE is absent/N/A; then every pixel of the
raw readout above SATURATE (or 65534) gets 256. Otherwise the **image** path: DQICORR flags only the
overscan pixels with the scalar, and after BLEVCORR and BIASCORR ``SCI > SATUFILE/mean_gain`` flags
256 inside the per-amp science boxes.
"""

from __future__ import annotations

import numpy as np

from pipeline.core.errors import MissingReference
from pipeline.science.calib.chip import Chip, Step
from pipeline.science.calib.context import CalContext
from pipeline.science.calib.geometry import amp_regions
from pipeline.science.calib.imageio import find_line, frame_of
from pipeline.science.calib.numerics import row_blocks
from pipeline.science.calib.tables import BadPixelRuns, read_bpixtab

ATOD_SATURATE = np.float32(65534.0)
SOFTERR, DATALOST, DETECTORPROB, HOTPIX = 1, 2, 4, 16
BADBIAS, SATPIXEL, BADFLAT, TRAP, ATODSAT, DATAREJECT = 128, 256, 512, 1024, 2048, 8192

#: Columns of the serial virtual overscan in a full-frame raw UVIS chip, and where amp A/C ends.
SIZE_SV_OVERSCAN = 60
END_PIX_AC_AMP = 2072


def flag(dq: np.ndarray, mask: np.ndarray, bit: int) -> None:
    np.bitwise_or(dq, np.uint16(bit), out=dq, where=mask)


def science_limits(chip: Chip) -> tuple[list[int], list[int], list[int], list[int]]:
    """``ComputeLimits``: per-amp [begx, endx) and [begy, endy); -1 for an absent second amp."""
    ny, nx = chip.sci.shape
    xbeg, xend, ybeg, yend = [-1, -1], [-1, -1], [-1, -1], [-1, -1]
    for n, reg in enumerate(amp_regions(chip.ccd.ccdamp, chip.number, chip.ampx, chip.ampy, chip.oscn, nx, ny)):
        xbeg[n], xend[n], ybeg[n], yend[n] = reg.begx, reg.endx, reg.begy, reg.endy
    return xbeg, xend, ybeg, yend


def overscan_mask(chip: Chip) -> np.ndarray:
    """The raw pixels ``doDQI`` scalar-flags on the image path: overscan only.

    Full frame: every row of the parallel virtual overscan, plus all rows of the prescan and serial
    virtual columns between the science boxes (with a single amp the missing second box makes the
    last range start at column -1, i.e. the whole chip, exactly as calwf3's limits do). Subarray: the
    physical prescan columns, except the last one (calwf3's loop stops one short).
    """
    ny, nx = chip.sci.shape
    mask = np.zeros((ny, nx), bool)
    if not chip.subarray:
        xbeg, xend, ybeg, yend = science_limits(chip)
        if ybeg[0] == 0:
            mask[yend[0]:, :] = True
        else:
            mask[:max(ybeg[0], 0), :] = True
        for lo, hi in ((0, xbeg[0] - 1), (xend[0], xbeg[1] - 1), (xend[1], nx - 1)):
            if hi >= lo:
                mask[:, max(lo, 0):hi + 1] = True
        return mask
    t1, t2 = chip.oscn.trimx[0], chip.oscn.trimx[1]
    if t1 > 0:
        mask[:, 0:t1 - 1] = True
    elif t2 > 0:
        mask[:, nx - t2:nx - 1] = True
    return mask


class DqiCorr(Step):
    """A-to-D and scalar saturation flags, then the BPIXTAB.

    ``raw``: True in WF3CCD (untrimmed image, overscan geometry known, +60 BPIXTAB shift for ABCD);
    False in WF32D, where it is re-applied in trimmed coordinates and only adds what is missing.
    """

    switch = "DQICORR"
    label = "DQICORR"

    def __init__(self, *, raw: bool, scalar_saturation: bool, atod_limit: float | None = None,
                 atod_inclusive: bool = False, shift_abcd: bool = True) -> None:
        self.raw = raw
        self.scalar_saturation = scalar_saturation
        self.atod_limit = ATOD_SATURATE if atod_limit is None else np.float32(atod_limit)
        self.atod_inclusive = atod_inclusive
        self.shift_abcd = shift_abcd

    def run(self, ctx: CalContext, chip: Chip) -> None:
        sci, dq = chip.sci, chip.dq
        flag(dq, sci >= self.atod_limit if self.atod_inclusive else sci > self.atod_limit, ATODSAT)
        sat = np.float32(chip.ccd.saturate)
        if self.scalar_saturation:
            flag(dq, (sci > sat) | (sci > ATOD_SATURATE), SATPIXEL)
        elif self.raw:
            region = overscan_mask(chip)
            flag(dq, region & ((sci > sat) | (sci > ATOD_SATURATE)), SATPIXEL)
        path = ctx.reference_path("BPIXTAB", optional=True)
        if path is None:
            return
        runs = read_bpixtab(path, chip=chip.number, ccdamp=chip.ccd.ccdamp, ccdgain=ctx.key("CCDGAIN", float))
        if runs.x0.size == 0:
            ctx.warn(f"chip {chip.number}: no rows from BPIXTAB applied to DQ array")
            return
        apply_bpixtab(chip, runs, shift=self.raw and self.shift_abcd)


def _shift_for_virtual_overscan(chip: Chip, runs: BadPixelRuns, rbin: int, shift: bool) -> np.ndarray:
    """``ToWF3RawCoords``: 4-amp raw images carry the serial virtual overscan mid-row, so table
    columns at or beyond AMPX move right by TRIMX3+TRIMX4 (plus 2 when binned by 2)."""
    x0 = runs.x0.copy()
    if shift and chip.ccd.ccdamp.upper() == "ABCD":
        right = x0 >= chip.ampx * rbin
        x0[right] += (chip.oscn.trimx[2] + chip.oscn.trimx[3]) * rbin + (2 if rbin == 2 else 0)
    return x0


def _or_runs(dq: np.ndarray, x0: np.ndarray, y0: np.ndarray, runs: BadPixelRuns) -> None:
    """OR each run of LENGTH pixels along AXIS into ``dq``, clipped to the array."""
    ny, nx = dq.shape
    n = runs.length
    idx = np.repeat(np.arange(n.size), n)
    step = np.arange(idx.size) - np.repeat(np.cumsum(n) - n, n)
    xs = x0[idx] + np.where(runs.axis[idx] == 1, step, 0)
    ys = y0[idx] + np.where(runs.axis[idx] == 2, step, 0)
    inside = (xs >= 0) & (xs < nx) & (ys >= 0) & (ys < ny)
    np.bitwise_or.at(dq, (ys[inside], xs[inside]), runs.value[idx][inside].astype(np.uint16))


def apply_bpixtab(chip: Chip, runs: BadPixelRuns, *, shift: bool) -> None:
    frame = frame_of(chip.imset.sci_header)
    ri_v = (frame.ltv[0] + frame.ltm[0] - 1.0, frame.ltv[1] + frame.ltm[1] - 1.0)
    rbin = frame.bin[0]
    x0 = _shift_for_virtual_overscan(chip, runs, rbin, shift)
    if frame.bin == (1, 1):
        _or_runs(chip.dq, np.trunc(x0 + ri_v[0]).astype(np.int64),
                 np.trunc(runs.y0 + ri_v[1]).astype(np.int64), runs)
        return
    scratch = np.zeros((runs.sizaxis[1], runs.sizaxis[0]), np.uint16)
    _or_runs(scratch, x0, runs.y0, runs)
    _bin_or(chip.dq, scratch, frame.ltm, ri_v)


def _first_last(ltm: tuple[float, float], ltv: tuple[float, float], snpix: tuple[int, int],
                npix: tuple[int, int]) -> tuple[list[int], list[int], list[int], list[int]]:
    """``FirstLast``: overlap of a binned image with its reference-resolution scratch array."""
    tol = 0.001
    rbin, first, last, sfirst = [0, 0], [0, 0], [0, 0], [0, 0]
    for k in range(2):
        rbin[k] = round(1.0 / ltm[k])
        for i in range(npix[k]):
            scr = (i - 0.5 - ltv[k]) / ltm[k]
            if scr + tol >= -0.5:
                first[k] = i
                v = scr + 0.5
                sfirst[k] = int(v + 0.5) if v >= 0 else int(v - 0.5)
                break
        for i in range(npix[k] - 1, 0, -1):
            if (i + 0.5 - ltv[k]) / ltm[k] - tol <= snpix[k] - 1.0 + 0.5:
                last[k] = i
                break
    return rbin, first, last, sfirst


def _bin_or(dq: np.ndarray, scratch: np.ndarray, ltm: tuple[float, float], ltv: tuple[float, float]) -> None:
    """OR-bin the scratch flags down onto the binned image pixels they cover."""
    ny, nx = dq.shape
    rbin, first, last, sfirst = _first_last(ltm, ltv, (scratch.shape[1], scratch.shape[0]), (nx, ny))
    m = np.arange(first[0], last[0] + 1)
    n = np.arange(first[1], last[1] + 1)
    i0 = sfirst[0] + (m - first[0]) * rbin[0]
    j0 = sfirst[1] + (n - first[1]) * rbin[1]
    acc = np.zeros((n.size, m.size), np.uint16)
    for dy in range(rbin[1]):
        for dx in range(rbin[0]):
            ii, jj = i0 + dx, j0 + dy
            okx = (ii >= 0) & (ii < scratch.shape[1])
            oky = (jj >= 0) & (jj < scratch.shape[0])
            block = scratch[np.clip(jj, 0, scratch.shape[0] - 1)][:, np.clip(ii, 0, scratch.shape[1] - 1)]
            acc |= np.where(oky[:, None] & okx[None, :], block, 0).astype(np.uint16)
    dq[first[1]:last[1] + 1, first[0]:last[0] + 1] |= acc


class FullWellSat(Step):
    """SATUFILE image path (``doFullWellSat``): ``SCI > SATU/mean_gain`` inside the science boxes.

    Runs after BLEVCORR and BIASCORR, on the raw-format image in DN. Subarrays compare the whole
    subarray against the full-frame SATUFILE at the LTV corner, skipping the 60 virtual columns.
    ``gain_divide``: WFC3 divides the e- image by mean_gain; ACS data are already in electrons.
    ``reset_amps``: calwf3 makes a subarray one amp here (AMPX/AMPY = its size); calacs keeps the
    CCDTAB's (AMPX 0 for a subarray of amp B or D: the whole image is the right-hand amp).
    """

    label = "full-well saturation"

    def __init__(self, *, gain_divide: bool = True, sv_overscan: int = SIZE_SV_OVERSCAN,
                 end_ac: int = END_PIX_AC_AMP, reset_amps: bool = True) -> None:
        self.gain_divide = gain_divide
        self.sv_overscan = sv_overscan
        self.end_ac = end_ac
        self.reset_amps = reset_amps

    def run(self, ctx: CalContext, chip: Chip) -> None:
        ref = ctx.ref_image("SATUFILE").for_chip(chip.number)
        place = find_line(chip.imset.sci_header, chip.sci.shape[1], ref.header, ref.nx)
        if place.rx != 1 or place.ry != 1:
            raise MissingReference(f"SATUFILE {ref.ref.path.name}: binning differs from the science image",
                                   keyword="SATUFILE", path=ref.ref.path)
        satu = ref.sci()
        gain = np.float32(chip.ccd.mean_gain)
        ny, nx = chip.sci.shape
        if place.same_size:   # the science boxes a block of rows at a time: SATU/gain only where compared
            xbeg, xend, ybeg, yend = science_limits(chip)
            for n in range(2):
                if xbeg[n] < 0 or xend[n] <= xbeg[n]:
                    continue
                cols = slice(xbeg[n], xend[n])
                for block in row_blocks(max(yend[0] - ybeg[0], 0)):
                    rows = slice(ybeg[0] + block.start, ybeg[0] + block.stop)
                    limit = satu[rows, cols] / gain if self.gain_divide else satu[rows, cols]
                    flag(chip.dq[rows, cols], chip.sci[rows, cols] > limit, SATPIXEL)
            return
        limit = satu / gain if self.gain_divide else satu
        if self.reset_amps:
            chip.ampx, chip.ampy = nx, ny  # one amp reads a subarray (calwf3 resets these here)
        cols = _ref_columns(place.x0, nx, self.end_ac, self.sv_overscan)
        _check_inside(ref, place.y0, ny, cols, "SATUFILE")
        block = limit[place.y0:place.y0 + ny][:, cols]
        flag(chip.dq, chip.sci > block, SATPIXEL)


def _ref_columns(x0: int, nx: int, end_ac: int, sv: int) -> np.ndarray:
    """Reference columns under a subarray of a 4-amp raw-format reference image.

    A subarray starting in amp B/D moves right past the ``sv`` virtual columns; one starting in A/C
    and straddling them skips those columns from the point where they begin.
    """
    if x0 > end_ac:
        return np.arange(x0 + sv, x0 + sv + nx)
    cols = np.arange(x0, x0 + nx)
    if x0 + nx > end_ac:
        overstart = end_ac + 1 - x0
        cols[overstart:] += sv
    return cols


def _check_inside(ref, y0: int, ny: int, cols: np.ndarray, keyword: str) -> None:  # type: ignore[no-untyped-def]
    if y0 < 0 or y0 + ny > ref.ny or cols.min() < 0 or cols.max() >= ref.nx:
        raise MissingReference(f"{keyword} {ref.ref.path.name}: the science subarray does not lie inside "
                               "the reference image", keyword=keyword, path=ref.ref.path)
