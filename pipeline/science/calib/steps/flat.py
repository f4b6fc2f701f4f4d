"""FLATCORR (``doflat.c``) and SHADCORR (``doshad.c``), both through ``div1d``."""

from __future__ import annotations

import numpy as np

from pipeline.core.errors import MissingReference, Unsupported
from pipeline.science.calib import scratch
from pipeline.science.calib.chip import Chip, Step
from pipeline.science.calib.context import SKIPPED, CalContext
from pipeline.science.calib.steps.refimage import cut_reference, div1d
from pipeline.science.calib.steps.spotflat import coronagraph_spot

FLATS = ("PFLTFILE", "DFLTFILE", "LFLTFILE")


class FlatCorr(Step):
    """Divide by the P, D and L flats in that order, each only if named (``N/A`` skips it).

    WFC3: the **first** flat applied is multiplied by ``1/mean_gain`` first, which turns the data
    into electrons (BUNIT becomes ELECTRONS); the others divide as they are. ACS data are already in
    electrons: no gain factor. The L-flat must have the science image's size (binned L-flats are
    refused, as calwf3 does).
    """

    switch = "FLATCORR"
    label = "FLATCORR"

    def __init__(self, *, to_electrons: bool = True) -> None:
        self.to_electrons = to_electrons

    def run(self, ctx: CalContext, chip: Chip) -> None:
        applygain = self.to_electrons
        used = []
        spot = coronagraph_spot(ctx)  # ACS/HRC coronagraph: multiplied into the P and D flats
        for keyword in FLATS:
            if ctx.reference_path(keyword, optional=True) is None:
                continue
            ref = ctx.ref_image(keyword).for_chip(chip.number)
            block = cut_reference(chip, ref)
            if spot is not None and keyword != "LFLTFILE":
                block = spot.apply(chip, ref.header, ref.nx, block)
                used.append(spot.name)
            if keyword == "LFLTFILE" and block.sci.shape != chip.sci.shape:
                raise MissingReference(f"LFLTFILE {ref.ref.path.name}: size does not match the science "
                                       "data and L-flat interpolation is not available", keyword=keyword,
                                       path=ref.ref.path)
            if applygain:  # the first flat divided gain-scaled, in a reused buffer (scratch: the dark's)
                k = np.float32(np.float32(1.0) / np.float32(chip.ccd.mean_gain))
                with scratch.borrowed(block.sci.shape, np.float32) as out:
                    div1d(chip, block.scaled(k, out=out))
                applygain = False
            else:
                div1d(chip, block)
            used.append(ref.ref.path.name)
        if self.to_electrons:
            chip.sci_keywords["BUNIT"] = "ELECTRONS"
            chip.err_keywords["BUNIT"] = "ELECTRONS"
        ctx.log(f"chip {chip.number}: divided by {', '.join(used)}")


class ShadCorr(Step):
    """Shutter shading: divide by ``1 + SHAD/(EXPTIME/NCOMBINE)``; skipped when EXPTIME <= 0."""

    switch = "SHADCORR"
    label = "SHADCORR"

    def run(self, ctx: CalContext, chip: Chip) -> None:
        exptime = ctx.key("EXPTIME", float)
        if exptime <= 0:
            ctx.warn("EXPTIME must be positive if SHADCORR = PERFORM; SHADCORR skipped")
            ctx.done("SHADCORR", SKIPPED)
            return
        ref = ctx.ref_image("SHADFILE").for_chip(chip.number)
        block = cut_reference(chip, ref)
        if block.sci.shape != chip.sci.shape:
            raise Unsupported(f"SHADFILE {ref.ref.path.name}: binned shading files are not supported by the "
                              "built-in engine", keyword="SHADFILE", path=ref.ref.path)
        eff = np.float32(exptime / chip.ncombine)  # C: double EXPTIME / int NCOMBINE, one rounding to float
        k = np.float32(1.0 / float(eff))
        block = block.scaled(k, offset=np.float32(1.0))
        div1d(chip, block)
        ctx.log(f"chip {chip.number}: shutter shading {ref.ref.path.name} applied")
