"""What defines one simulated exposure, apart from how it is made (so headers and pixels can both use it)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.simulate.geometry import Readout
from pipeline.simulate.pointing import Pointing
from pipeline.simulate.wfcreadout import DS_INT


@dataclass(frozen=True)
class ExposureSpec:
    """Everything that defines one exposure; the simulator turns it into pixels and headers."""

    rootname: str
    instrument: str  # 'wfc3' | 'acs'
    readout: Readout
    ccdgain: float
    filter: str  # bandpass; ACS wheels follow photometry.ACS_WHEELS
    exptime: float
    expstart: float  # MJD
    pointing: Pointing
    seed: tuple[int, ...]  # entropy for this exposure's noise
    targname: str = "SIMFIELD"
    proposid: int = 90000
    linenum: str = "01.001"
    asn_id: str | None = None
    asn_memtype: str | None = None
    crsplit: int = 1
    pattern: tuple[str, int, int] = ("NONE", 0, 0)
    jwrotype: str = DS_INT  # ACS/WFC readout type (JWROTYPE); the post-SM4 standard

    @property
    def expend(self) -> float:
        return self.expstart + self.exptime / 86400.0

    @property
    def darktime(self) -> float:
        """Header DARKTIME: the exposure time (calacs adds its CCDTAB overhead itself)."""
        return self.exptime
