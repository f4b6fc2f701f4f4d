"""A MULTIACCUM ramp in memory: every read's SCI/ERR/DQ/SAMP/TIME, in time order.

The raw file stores the newest read as EXTVER 1 and the zero read as EXTVER NSAMP; here index 0 is
the zero read and index NSAMP-1 the last read (``read k`` in the specification). Constant
extensions (NAXIS=0 with PIXVALUE) are expanded, as hstio does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.core.errors import BadInput
from pipeline.science.calib.imageio import _constant_or_data, _scaled, open_input

#: ``doir.c``: the zero read's effective exposure time is the first read's SAMPTIME minus this.
SAMPZERO_OFFSET = 0.020535
#: ``getkeys.c`` default of SAMPZERO, used only when there is no read after the zero read.
DEFAULT_SAMPZERO = 2.911755
#: The in-memory type of each extension of a read (SCI first).
STACK_TYPES = (("SCI", np.float32), ("ERR", np.float32), ("DQ", np.uint16), ("SAMP", np.int16), ("TIME", np.float32))


@dataclass
class ReadHeaders:
    """The five extension headers of one read."""

    sci: fits.Header
    err: fits.Header
    dq: fits.Header
    samp: fits.Header
    time: fits.Header

    def all(self) -> tuple[fits.Header, ...]:
        return (self.sci, self.err, self.dq, self.samp, self.time)


@dataclass
class Ramp:
    """All reads of one exposure (index 0 = zero read) and the per-read state the steps share."""

    path: Path
    primary: fits.Header
    sci: np.ndarray    # (N, ny, nx) float32
    err: np.ndarray    # (N, ny, nx) float32
    dq: np.ndarray     # (N, ny, nx) uint16
    samp: np.ndarray   # (N, ny, nx) int16
    time: np.ndarray   # (N, ny, nx) float32
    headers: list[ReadHeaders]
    #: SAMPTIME of each read (double), reduced by the zero read's by ZOFFCORR.
    exptime: list[float]
    sampzero: float
    #: Per-read SCI header keywords the steps computed (MEANBLEV, MEANDARK, BUNIT).
    keywords: list[dict[str, object]] = field(default_factory=list)
    #: True once UNITCORR made count rates (``bunit == COUNTRATE``).
    rates: bool = False

    @property
    def nsamp(self) -> int:
        return int(self.sci.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.sci.shape[1]), int(self.sci.shape[2]))

    @property
    def rootname(self) -> str:
        return str(self.primary.get("ROOTNAME", self.path.name.split("_")[0])).strip().lower()


def _bunit_is_rate(header: fits.Header, path: Path, extver: int) -> bool:
    """``groupinfo.c``: COUNTS/ELECTRONS are counts, COUNTS/S or ELECTRONS/S rates; else an error."""
    bunit = str(header.get("BUNIT", "")).strip().upper()
    if bunit.startswith(("COUNTS/S", "ELECTRONS/S")):
        return True
    if bunit.startswith(("COUNTS", "ELECTRONS")):
        return False
    raise BadInput(f"SCI,{extver}: BUNIT = {bunit!r} is not COUNTS, ELECTRONS, COUNTS/S or ELECTRONS/S",
                   path=path, keyword="BUNIT")


def read_ramp(path: Path) -> Ramp:
    """Read NSAMP imsets of a raw (or ``_ima``) MULTIACCUM file; problems are :class:`BadInput`."""
    with open_input(path) as hdul:
        primary = hdul[0].header.copy()
        try:
            nsamp = int(primary["NSAMP"])
        except (KeyError, ValueError, TypeError):
            raise BadInput(f"NSAMP = {primary.get('NSAMP')!r} missing or not an integer", path=path,
                           keyword="NSAMP") from None
        if nsamp < 1:
            raise BadInput(f"NSAMP = {nsamp} must be at least 1", path=path, keyword="NSAMP")
        stacks: dict[str, np.ndarray] = {}   # (NSAMP, ny, nx) per extension name, filled read by read
        headers: list[ReadHeaders] = []
        exptime: list[float] = []
        rate = []
        for extver in range(nsamp, 0, -1):   # zero read first
            try:
                sci_hdu = hdul[("SCI", extver)]
            except KeyError:
                raise BadInput(f"extension SCI,{extver} missing (NSAMP={nsamp})", path=path,
                               keyword="NSAMP") from None
            if sci_hdu.data is None:
                raise BadInput(f"extension SCI,{extver} is empty", path=path, keyword="NSAMP")
            sci = _scaled(sci_hdu, np.float32)
            hdrs = [sci_hdu.header.copy()]
            i = nsamp - extver
            if not stacks:
                stacks = {name: np.empty((nsamp, *sci.shape), dtype) for name, dtype in STACK_TYPES}
            elif sci.shape != stacks["SCI"].shape[1:]:
                raise BadInput(f"SCI,{extver} shape {sci.shape} differs from SCI,{nsamp} {stacks['SCI'].shape[1:]}",
                               path=path)
            stacks["SCI"][i] = sci
            for name, dtype in STACK_TYPES[1:]:
                try:
                    hdu = hdul[(name, extver)]
                except KeyError:
                    raise BadInput(f"extension {name},{extver} missing: a MULTIACCUM imset has SCI, ERR, DQ, "
                                   "SAMP and TIME", path=path, keyword="NEXTEND") from None
                slot = stacks[name][i]
                arr = _constant_or_data(hdu, sci.shape, dtype, out=slot)
                if arr.shape != sci.shape:
                    raise BadInput(f"{name},{extver} shape {arr.shape} differs from SCI {sci.shape}", path=path)
                if arr is not slot:
                    slot[...] = arr
                hdrs.append(hdu.header.copy())
            if "SAMPTIME" not in hdrs[0]:
                raise BadInput(f"SCI,{extver}: required keyword SAMPTIME is missing", path=path, keyword="SAMPTIME")
            samptime = float(hdrs[0]["SAMPTIME"])
            if samptime < 0:
                raise BadInput(f"SCI,{extver}: SAMPTIME = {samptime} is negative", path=path, keyword="SAMPTIME")
            exptime.append(samptime)
            rate.append(_bunit_is_rate(hdrs[0], path, extver))
            headers.append(ReadHeaders(*hdrs))
    sampzero = exptime[1] - SAMPZERO_OFFSET if nsamp > 1 else float(primary.get("SAMPZERO", DEFAULT_SAMPZERO))
    return Ramp(path=path, primary=primary, sci=stacks["SCI"], err=stacks["ERR"],
                dq=stacks["DQ"], samp=stacks["SAMP"], time=stacks["TIME"],
                headers=headers, exptime=exptime, sampzero=sampzero,
                keywords=[{} for _ in range(nsamp)], rates=rate[-1])
