"""ACS/HRC in the built-in engine: what differs from ACS/WFC (Part B of the notes).

HRC is one 1024x1024 CCD (CCDCHIP 1) normally read by amp C alone, so the WFC rule "chip 1 uses
amps A and B" would find no gain. ``get_nsegn`` instead puts the gain and read noise of the first
amp with ATODGN > 0 into the right-hand slot and, with AMPX = 0, uses it for the whole image. The
rest of the flow is calacs's WFC one (``acs.py``) with the pre-SM4 ``doBlev`` bias fit always.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.science.calib.chip import Chip


def single_amp_slots(values: tuple[float, float, float, float], gains: tuple[float, float, float, float]
                     ) -> tuple[float, float]:
    """``get_nsegn`` for one amp: the value of the first amp (A, B, C, D order) with a gain > 0."""
    for value, gain in zip(values, gains, strict=True):
        if gain > 0:
            return value, value
    return 0.0, 0.0


def paired_slots(values: tuple[float, float, float, float], ampy_split: bool) -> tuple[float, float]:
    """Multi-amp HRC: the diagonal pairs are symmetrised (C,B / A,D); rows below AMPY use C/D."""
    a, b, c, d = values
    return (c, b) if ampy_split else (a, d)


@dataclass
class HrcChip(Chip):
    """An HRC imset: amp slot values follow ``get_nsegn``'s single-chip rules."""

    def _slots(self, values: tuple[float, float, float, float]) -> tuple[float, float]:
        if self.ampx == 0 and self.ampy == 0:
            return single_amp_slots(values, self.ccd.atodgain)
        return paired_slots(values, self.ampy > 0)

    def gains(self) -> tuple[float, float]:
        return self._slots(self.ccd.atodgain)

    def readnoises(self) -> tuple[float, float]:
        return self._slots(self.ccd.readnoise)

    def ccdbiases(self) -> tuple[float, float]:
        return self._slots(self.ccd.ccdbias)
