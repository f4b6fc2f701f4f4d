"""Cutting the overscan away (calwf3's ``_blv_tmp``, calacs's trimmed ``_flt``), one rule for both.

The trimmed image keeps ``TRIMX1``..``nx-TRIMX2`` and ``TRIMY1``..``ny-TRIMY2``. WFC3/UVIS raws also
carry serial virtual overscan (``TRIMX3+TRIMX4`` columns), which the trimmed size leaves out; in a 4-amp
readout it sits between the amps, and the columns right of the middle move left over it. LTV and
CRPIX follow the cut; a raw without LTV gets ``LTV = -offset`` (calwf3's rule, now also for ACS), so
that reference files keep lining up after the trim.
"""

from __future__ import annotations

import numpy as np

from pipeline.science.calib.chip import Chip
from pipeline.science.calib.imageio import Imset
from pipeline.science.calib.numerics import BLOCK_ROWS, row_blocks


def trim_overscan(chip: Chip, *, serial_virtual: bool) -> Imset:
    """The chip's imset without overscan; ``serial_virtual`` for raws with TRIMX3/TRIMX4 columns (UVIS).
    The chip's raw-format arrays are reused for the trimmed ones (their old contents are gone)."""
    ny, nx = chip.sci.shape
    tx, ty = chip.oscn.trimx, chip.oscn.trimy
    middle = tx[2] + tx[3] if serial_virtual else 0
    sizex, sizey = nx - tx[0] - tx[1] - middle, ny - ty[0] - ty[1]
    out_cols = np.arange(sizex) + tx[0]
    if middle and len(chip.ccd.ccdamp) == 4:
        out_cols = np.where(out_cols >= nx // 2 + tx[2] - middle, out_cols + middle, out_cols)
    pieces = np.split(np.arange(sizex), np.flatnonzero(np.diff(out_cols) > 1) + 1)

    def cut(a: np.ndarray) -> np.ndarray:
        """The kept pixels moved to the front of ``a``'s own buffer, which is consumed: a fresh
        full-size array costs more in page faults than the move itself. Blocks of rows go through a
        small buffer, all of a block read before any of it is written; the output is narrower than
        the input and starts no later, so no block's output reaches input not yet read."""
        out = (a.reshape(-1)[:sizey * sizex].reshape(sizey, sizex) if a.flags.c_contiguous and a.flags.writeable
               else np.empty((sizey, sizex), a.dtype))
        buf = np.empty((min(BLOCK_ROWS, sizey), sizex), a.dtype)
        for block in row_blocks(sizey):
            part = buf[:block.stop - block.start]
            src = a[ty[0] + block.start:ty[0] + block.stop]
            for piece in pieces:
                part[:, piece[0]:piece[-1] + 1] = src[:, out_cols[piece[0]]:out_cols[piece[-1]] + 1]
            out[block] = part
        return out

    im = chip.imset
    headers = [im.sci_header.copy(), im.err_header.copy(), im.dq_header.copy()]
    for h in headers:
        for key, delta in (("LTV1", tx[0]), ("LTV2", ty[0]), ("CRPIX1", tx[0]), ("CRPIX2", ty[0])):
            if key in h:
                h[key] = float(h[key]) - delta
            elif key.startswith("LTV"):
                h[key] = -float(delta)
    headers[0]["SIZAXIS1"], headers[0]["SIZAXIS2"] = sizex, sizey
    return Imset(im.extver, cut(im.sci), cut(im.err), cut(im.dq), *headers)
