"""BIASCORR, FLSHCORR and DARKCORR: scaled reference images subtracted with ``sub1d``.

WFC3 (data in DN): BIASCORR on the raw image after BLEVCORR; FLSHCORR on the raw image with
``FLASHDUR/gain``; DARKCORR on the trimmed image with ``EXPTIME/gain``.
ACS (data in electrons): BIASCORR before BLEVCORR (then the e- conversion); DARKCORR with
``DARKTIME`` and FLSHCORR with ``FLASHDUR``, both in ACS2D on the trimmed image.
"""

from __future__ import annotations

import numpy as np

from pipeline.science.calib import scratch
from pipeline.science.calib.chip import Chip, Step
from pipeline.science.calib.context import SKIPPED, CalContext
from pipeline.science.calib.steps.dqi import END_PIX_AC_AMP, SIZE_SV_OVERSCAN, _ref_columns
from pipeline.science.calib.steps.refimage import (
    RefBlock,
    cut_reference,
    gain_factors,
    image_mean,
    line_weighted_mean,
    scale_by_amp,
    sub1d,
)

FULL_FRAME_BIAS_AMPS = ("ABCD", "ANY", "SINGLE_AMP", "SINGLE_OR_ALL")


class BiasCorr(Step):
    """Subtract the superbias (raw format, same corner as the science image).

    A subarray read by amp B or D of a full-frame 4-amp bias moves 60 columns right, past the
    serial virtual overscan (``doBias``); straddling subarrays are not special-cased, as in calwf3.
    """

    switch = "BIASCORR"
    label = "BIASCORR"

    def __init__(self, *, virtual_columns: int = SIZE_SV_OVERSCAN) -> None:
        self.virtual_columns = virtual_columns

    def run(self, ctx: CalContext, chip: Chip) -> None:
        bias = ctx.ref_image("BIASFILE")
        bias_amp = str(bias.primary.get("CCDAMP", "")).strip().upper()
        shift = (self.virtual_columns if bias_amp in FULL_FRAME_BIAS_AMPS
                 and chip.ccd.ccdamp.upper() in ("B", "D") else 0)
        block = cut_reference(chip, bias.for_chip(chip.number),
                              columns=lambda x0, nx: np.arange(x0 + shift, x0 + shift + nx))
        sub1d(chip, block)
        ctx.log(f"chip {chip.number}: bias image {bias.path.name} subtracted")


class FlshCorrUvis(Step):
    """WFC3 post-flash: ``SCI -= FLASH * FLASHDUR / gain`` on the raw image (DN).

    ⚠ Reproduced quirk: the amp split compares the **raw** column with AMPX (2048) without the
    25-column prescan, so raw columns 2048-2102 (trimmed 2023-2047 of amp A/C) get the B/D gain.
    Subarrays use the one gain of their amp. MEANFLSH is the line-weighted mean of the scaled flash;
    a mean <= 0 leaves the switch SKIPPED, as calwf3 reports it.
    """

    switch = "FLSHCORR"
    label = "FLSHCORR"

    def run(self, ctx: CalContext, chip: Chip) -> None:
        flashdur = ctx.key("FLASHDUR", float, 1.0)
        if flashdur <= 0:
            ctx.warn("post-flash exposure was 0 seconds; FLSHCORR not performed")
            ctx.done("FLSHCORR", SKIPPED)
            return
        if ctx.key("FLASHSTA", str, "").upper() == "ABORTED":
            ctx.warn("post-flash status was ABORTED; the post-flash may be compromised")
        ref = ctx.ref_image("FLSHFILE").for_chip(chip.number)
        ny, nx = chip.sci.shape
        block = cut_reference(chip, ref, columns=lambda x0, n: _ref_columns(x0, n, END_PIX_AC_AMP,
                                                                             SIZE_SV_OVERSCAN))
        full = block.sci.shape == (ny, nx) and not chip.subarray
        gains = chip.gains()
        if full:
            kl, kr = gain_factors(flashdur, gains)
            block = scale_by_amp(block, kl, kr, chip.ampx)
            mean_source = block
        else:
            letter = chip.ccd.ccdamp.strip().upper()
            gain = chip.ccd.atodgain["ABCD".index(letter)] if letter in "ABCD" and len(letter) == 1 else 0.0
            k = np.float32(np.float32(flashdur) / np.float32(gain)) if gain else np.float32(0.0)
            block = block.scaled(k)
            mean_source = _straddle_line(ctx, chip, ref, k)
        meanflash = line_weighted_mean(mean_source.sci, mean_source.dq, chip.sdqflags)
        sub1d(chip, block)
        if meanflash > 0:
            chip.sci_keywords["MEANFLSH"] = meanflash
            ctx.log(f"chip {chip.number}: post-flash subtracted, MEANFLSH = {meanflash:g}")
        else:
            ctx.done("FLSHCORR", SKIPPED)


def _straddle_line(ctx: CalContext, chip: Chip, ref, k: np.float32) -> RefBlock:  # type: ignore[no-untyped-def]
    """MEANFLSH source for a subarray: calwf3 averages the cut reference line *including* the 60
    virtual columns when the subarray straddles them."""
    ny, nx = chip.sci.shape
    from pipeline.science.calib.imageio import find_line

    place = find_line(chip.imset.sci_header, nx, ref.header, ref.nx)
    x0 = place.x0 + (SIZE_SV_OVERSCAN if place.x0 > END_PIX_AC_AMP else 0)
    width = nx + (SIZE_SV_OVERSCAN if place.x0 <= END_PIX_AC_AMP and place.x0 + nx > END_PIX_AC_AMP else 0)
    rows = slice(place.y0, place.y0 + ny)
    sci = ref.sci()[rows, x0:x0 + width] * k
    return RefBlock(sci, np.zeros_like(sci), ref.dq()[rows, x0:x0 + width])


class DarkCorr(Step):
    """Subtract the dark (trimmed, e-/s) scaled to the exposure.

    WFC3: ``k = EXPTIME/gain`` per amp slot, split at trimmed column ``min(AMPX, nx)`` — EXPTIME
    only, no flash or idle time. ACS: ``k = DARKTIME`` (data already in electrons).
    MEANDARK is the line-weighted mean of the scaled dark over pixels not flagged serious.
    """

    switch = "DARKCORR"
    label = "DARKCORR"

    def __init__(self, *, electrons: bool = False, darktime: float | None = None) -> None:
        self.electrons = electrons
        self.darktime = darktime  # a fixed DARKTIME (SBC: always 0) instead of the header's

    def run(self, ctx: CalContext, chip: Chip) -> None:
        keyword = "DRKCFILE" if ctx.switches.get("PCTECORR") == "COMPLETE" else "DARKFILE"
        block = cut_reference(chip, ctx.ref_image(keyword).for_chip(chip.number))
        with scratch.borrowed(block.sci.shape, np.float32) as out:   # the scaled dark: reused pages
            if self.electrons:
                k = np.float32(ctx.key("DARKTIME", float, 0.0) if self.darktime is None else self.darktime)
                block = block.scaled(k, out=out)
            else:
                kl, kr = gain_factors(ctx.key("EXPTIME", float), chip.gains())
                block = scale_by_amp(block, kl, kr, chip.ampx, out=out)
            mean = image_mean if self.electrons else line_weighted_mean   # calacs AvgSciVal, calwf3 per line
            meandark = mean(block.sci, block.dq, chip.sdqflags)
            sub1d(chip, block)
        chip.sci_keywords["MEANDARK"] = meandark
        ctx.log(f"chip {chip.number}: dark {ctx.ref_paths[keyword].name} subtracted, MEANDARK = {meandark:g}")


class FlshCorrAcs(Step):
    """ACS post-flash in ACS2D: ``SCI -= FLASH * FLASHDUR`` (electrons); skipped if FLASHDUR <= 0."""

    switch = "FLSHCORR"
    label = "FLSHCORR"

    def run(self, ctx: CalContext, chip: Chip) -> None:
        flashdur = ctx.key("FLASHDUR", float, 0.0)
        if flashdur <= 0:
            ctx.warn("FLASHDUR <= 0; FLSHCORR skipped")
            ctx.done("FLSHCORR", SKIPPED)
            return
        block = cut_reference(chip, ctx.ref_image("FLSHFILE").for_chip(chip.number))
        block = block.scaled(np.float32(flashdur))
        meanflash = line_weighted_mean(block.sci, block.dq, chip.sdqflags)
        sub1d(chip, block)
        chip.sci_keywords["MEANFLSH"] = meanflash
        ctx.log(f"chip {chip.number}: post-flash subtracted, MEANFLSH = {meanflash:g}")
