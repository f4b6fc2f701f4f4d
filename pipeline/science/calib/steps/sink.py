"""Sink (charge-trap) pixels (``sink.c``, ISR WFC3-2014-22), part of DQICORR, unbinned data only.

The SNKCFILE (raw format, SCI extver = imset number) holds, for a sink pixel, its turn-on MJD
(> 50000); below it -1 marks a downstream pixel, and upstream 1..999 the science level (DN) under
which that trailing pixel is also affected. calwf3 works in the "RAZ" orientation where the amp is
at the bottom: upstream is +row for imset 1 (chip 2) and -row for imset 2 (chip 1).

For every sink pixel already on at EXPSTART: flag it 1024; flag the downstream pixel if its map
value is < 0; then walk upstream while the map value is in [1, 1000) flagging pixels whose value
is >= the science value of the sink pixel itself (SCI after BLEVCORR and BIASCORR, in DN).

Subarrays are embedded into a full-frame chip at their LTV corner (without the 60-column virtual
gap, as calwf3 does) and processed as imset 1.
"""

from __future__ import annotations

import numpy as np

from pipeline.core.errors import MissingReference
from pipeline.science.calib.chip import Chip, Step
from pipeline.science.calib.context import CalContext
from pipeline.science.calib.imageio import frame_of
from pipeline.science.calib.steps.dqi import TRAP

REFDATE = np.float32(50000.0)
RAZ_SHAPE = (2070, 4206)


def detect_sinks(sci: np.ndarray, dq: np.ndarray, ref: np.ndarray, expstart: float, upstream_down: bool) -> int:
    """Flag sink pixels in ``dq`` (in place); returns how many sink pixels were on.

    ``upstream_down``: the chip is read with its amp at the top (imset 2), so "upstream" is -row.
    """
    if upstream_down:
        sci, dq, ref = sci[::-1], dq[::-1], ref[::-1]
    ny = ref.shape[0]
    js, is_ = np.nonzero(ref > REFDATE)        # the few sink pixels; the date test in double on them only
    on = np.float64(expstart) > ref[js, is_].astype(np.float64)
    js, is_ = js[on], is_[on]
    if js.size == 0:
        return 0
    dq[js, is_] |= np.uint16(TRAP)
    below = js > 0
    jb, ib = js[below] - 1, is_[below]
    neg = ref[jb, ib] < 0
    dq[jb[neg], ib[neg]] |= np.uint16(TRAP)
    level = sci[js, is_]
    j = js.copy()
    active = np.ones(js.size, bool)
    while True:
        j += 1
        active &= j < ny
        if not active.any():
            break
        k = np.nonzero(active)[0]
        val = ref[j[k], is_[k]]
        walking = (val >= 1.0) & (val < 1000.0)
        active[k[~walking]] = False
        k = k[walking]
        hit = level[k] <= ref[j[k], is_[k]]
        dq[j[k[hit]], is_[k[hit]]] |= np.uint16(TRAP)
    return int(js.size)


class SinkPixels(Step):
    switch = "DQICORR"
    label = "sink pixels"

    def run(self, ctx: CalContext, chip: Chip) -> None:
        frame = frame_of(chip.imset.sci_header)
        if frame.bin != (1, 1):
            ctx.log(f"chip {chip.number}: binned data not supported for sink pixel detection")
            return
        sink = ctx.ref_image("SNKCFILE")
        group = chip.extver
        ref = sink.imset(group, planes=("SCI",)).sci()  # getFloatHD(SCI, imset number): no NEXTEND, no CCDCHIP
        expstart = ctx.key("EXPSTART", float)
        if not chip.subarray:
            if ref.shape != chip.sci.shape:
                raise MissingReference(f"SNKCFILE {sink.path.name}: SCI,{group} is {ref.shape}, the science "
                                       f"chip {chip.sci.shape}", keyword="SNKCFILE", path=sink.path)
            n = detect_sinks(chip.sci, chip.dq, ref, expstart, upstream_down=group == 2)
        else:
            x0 = round(-frame.ltv[0]) + 25
            y0 = round(-frame.ltv[1])
            ny, nx = chip.sci.shape
            if x0 < 0 or y0 < 0 or x0 + nx > RAZ_SHAPE[1] or y0 + ny > RAZ_SHAPE[0]:
                raise MissingReference(f"SNKCFILE {sink.path.name}: subarray at ({x0},{y0}) lies outside the "
                                       "full-frame chip", keyword="SNKCFILE", path=sink.path)
            full_sci = np.zeros(RAZ_SHAPE, np.float32)
            full_dq = np.zeros(RAZ_SHAPE, np.uint16)
            full_sci[y0:y0 + ny, x0:x0 + nx] = chip.sci
            full_dq[y0:y0 + ny, x0:x0 + nx] = chip.dq
            n = detect_sinks(full_sci, full_dq, ref, expstart, upstream_down=group == 2)
            chip.dq[...] = full_dq[y0:y0 + ny, x0:x0 + nx]
        ctx.log(f"chip {chip.number}: {n} sink pixels turned on before EXPSTART flagged")
