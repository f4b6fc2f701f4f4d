"""One chip (imset) on its way through the engine, and the base class of the steps.

Steps follow the stpipe model: one class per calibration step, each naming the header switch that
decides whether it runs. A step works on one :class:`Chip` at a time, in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from pipeline.science.calib.context import CalContext
from pipeline.science.calib.geometry import Overscan, slot_values
from pipeline.science.calib.imageio import Imset, frame_of
from pipeline.science.calib.tables import CCDParams

#: hstio's default SDQFLAGS: every DQ bit is serious.
DEFAULT_SDQFLAGS = 65535


@dataclass
class Chip:
    """An imset plus what the steps derive for it (CCDTAB row, overscan layout, amp boundary)."""

    imset: Imset
    ccd: CCDParams
    oscn: Overscan
    ampx: int
    ampy: int
    subarray: bool
    sdqflags: int = DEFAULT_SDQFLAGS
    ncombine: int = 1
    #: Keywords the steps computed for this chip's SCI header (MEANBLEV, MEANDARK, PHOTFLAM...).
    sci_keywords: dict[str, object] = field(default_factory=dict)
    err_keywords: dict[str, object] = field(default_factory=dict)
    #: Per-amp bias level subtracted by BLEVCORR, for BIASLEVA..D.
    blev: dict[str, float] = field(default_factory=dict)

    @property
    def sci(self) -> np.ndarray:
        return self.imset.sci

    @property
    def err(self) -> np.ndarray:
        return self.imset.err

    @property
    def dq(self) -> np.ndarray:
        return self.imset.dq

    @property
    def number(self) -> int:
        """CCDCHIP: 1 or 2 (ext 1 of a full-frame file is chip 2)."""
        return self.imset.chip

    @property
    def extver(self) -> int:
        return self.imset.extver

    @property
    def ltv(self) -> tuple[float, float]:
        return frame_of(self.imset.sci_header).ltv

    @property
    def bin(self) -> tuple[int, int]:
        return frame_of(self.imset.sci_header).bin

    def gains(self) -> tuple[float, float]:
        """(left, right) amp-slot gains of this chip (``get_nsegn``)."""
        return slot_values(self.ccd.atodgain, self.number)

    def readnoises(self) -> tuple[float, float]:
        return slot_values(self.ccd.readnoise, self.number)

    def ccdbiases(self) -> tuple[float, float]:
        return slot_values(self.ccd.ccdbias, self.number)


class Step:
    """A calibration step; ``switch`` is the header keyword that turns it on (None: always)."""

    switch: ClassVar[str | None] = None
    #: Short name used in trailer lines.
    label: ClassVar[str] = ""

    def enabled(self, ctx: CalContext) -> bool:
        return self.switch is None or ctx.perform(self.switch)

    def run(self, ctx: CalContext, chip: Chip) -> None:
        raise NotImplementedError
