"""ERR initialisation (``donoise.c``): a read-noise plus Poisson model, only if ERR is all zero."""

from __future__ import annotations

import numpy as np

from pipeline.core.errors import MissingReference
from pipeline.science.calib.chip import Chip, Step
from pipeline.science.calib.context import CalContext
from pipeline.science.calib.numerics import row_blocks


def uvis_amp_boundary(chip: Chip, nx: int) -> int:
    """The raw column where the right amp starts: AMPX + max(LTV1, 0) + TRIMX3, or nx past the end.

    AMPX = 0 (single-amp rows) stays 0, so every column uses the right (B/D) slot.
    """
    if chip.ampx == 0:
        return 0
    offsetx = int(chip.ltv[0]) if chip.ltv[0] > 0 else 0
    ampx = chip.ampx + offsetx + chip.oscn.trimx[2]
    if ampx >= nx - chip.oscn.trimx[1] or ampx > nx:
        ampx = nx
    return ampx


class ErrInit(Step):
    """WFC3/UVIS: ``ERR = sqrt(max((SCI - CCDBIAS)*G, 0) + RN^2) / G`` in DN, on the raw image.

    CCDBIAS is the CCDTAB default bias (not the overscan level). Float32 arithmetic for the signal,
    a double square root and division, as calwf3 does.
    """

    label = "ERR init"

    def run(self, ctx: CalContext, chip: Chip) -> None:
        if np.any(chip.err):
            return
        nx = chip.sci.shape[1]
        ampx = uvis_amp_boundary(chip, nx)
        gains, rns, biases = chip.gains(), chip.readnoises(), chip.ccdbiases()
        for slot, cols in ((0, slice(0, ampx)), (1, slice(ampx, nx))):
            if cols.start >= cols.stop:
                continue
            gain, rn = np.float32(gains[slot]), np.float32(rns[slot])
            if gain == 0 or rn == 0:
                raise MissingReference(
                    f"CCDTAB row {chip.ccd.row}: no valid gain/read noise for amp slot "
                    f"{'AC'[slot] if chip.number == 2 else 'AB'[slot]} of chip {chip.number} to initialise ERR",
                    keyword="CCDTAB")
            for rows in row_blocks(chip.sci.shape[0]):
                value = chip.sci[rows, cols] - np.float32(biases[slot])   # float32, as in C
                value *= gain
                np.maximum(value, np.float32(0), out=value)
                value += rn * rn
                root = np.sqrt(value, dtype=np.float64)                  # double sqrt and division
                root /= np.float64(gain)
                chip.err[rows, cols] = root
        ctx.log(f"chip {chip.number}: ERR initialised (read noise {rns[0]:.5g},{rns[1]:.5g} e-, "
                f"gain {gains[0]:.5g},{gains[1]:.5g})")
