"""What the IR steps share for one exposure, and their base class (one class per calwf3 step)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from pipeline.science.calib.context import CalContext
from pipeline.science.calib.imageio import frame_of
from pipeline.science.calib.ir.ramp import Ramp
from pipeline.science.calib.ir.reftables import IRDetector, NlinData, read_nlin

F32 = np.float32
F64 = np.float64


@dataclass
class ZeroRead:
    """The raw zero read kept before ZSIGCORR (``zoff``): SCI (minus its own BLEV mean later), DQ, TIME."""

    sci: np.ndarray
    dq: np.ndarray
    time: np.ndarray
    samptime: float


@dataclass
class IRRun:
    """One exposure on its way through WF3IR."""

    ctx: CalContext
    ramp: Ramp
    det: IRDetector
    zoff: ZeroRead | None = None
    #: ZSIGCORR's zero-read signal (DN) and its DQ (2048 / 256), whole array, zero outside R.
    zsig: np.ndarray | None = None
    zsig_dq: np.ndarray | None = None
    #: CRCORR's single-group result (``late.CrImage``), FLATCORR divides it too.
    cr: Any = None
    _nlin: NlinData | None = None

    @property
    def ltv(self) -> tuple[float, float]:
        return frame_of(self.ramp.headers[0].sci).ltv

    def nlin(self) -> NlinData:
        if self._nlin is None:
            path = self.ctx.reference_path("NLINFILE")
            assert path is not None
            self._nlin = read_nlin(path, self.ramp.headers[0].sci, self.ramp.shape)
        return self._nlin

    def switch_on(self, name: str) -> bool:
        return self.ctx.perform(name)


class IRStep:
    """A WF3IR step; ``switch`` names the header switch that turns it on (None: always runs)."""

    switch: ClassVar[str | None] = None

    def enabled(self, run: IRRun) -> bool:
        return self.switch is None or run.switch_on(self.switch)

    def run(self, run: IRRun) -> None:
        raise NotImplementedError


def quadrant_slices(det: IRDetector, ltv: tuple[float, float]) -> list[tuple[int, tuple[slice, slice]]]:
    """(amp index, raw (rows, cols)) of the four amplifier quadrants inside R (``noiscalc.c``).

    The boundary is ``AMPX + LTV1 - TRIMX1`` (507 for a full frame: calwf3 subtracts the trim
    from a raw index). Rows below it belong to B (left) and C (right), rows above to A and D.
    """
    ax = det.ampx + int(ltv[0]) - det.trimx[0]
    ay = det.ampy + int(ltv[1]) - det.trimy[0]
    r0, r1 = det.rows.start, det.rows.stop
    c0, c1 = det.cols.start, det.cols.stop
    ax, ay = min(max(ax, c0), c1), min(max(ay, r0), r1)
    out = [(1, (slice(r0, ay), slice(c0, ax))), (2, (slice(r0, ay), slice(ax, c1))),
           (0, (slice(ay, r1), slice(c0, ax))), (3, (slice(ay, r1), slice(ax, c1)))]
    return [(amp, sl) for amp, sl in out if sl[0].start < sl[0].stop and sl[1].start < sl[1].stop]


def noise_dn(values: np.ndarray, gain: float, readnoise: float) -> np.ndarray:
    """``sqrt(rn^2 + |s*g|) / g`` in DN: the sum and root in double (``fabs`` returns double),
    rounded to float, then divided by the gain in float."""
    g, rn = F32(gain), F32(readnoise)
    signal = np.abs(values * g, dtype=F32)
    root = np.sqrt(F64(rn * rn) + signal.astype(F64)).astype(F32)
    return root / g
