"""ACSCTE (calacs 10.5, ``acscte/docte.c``, ``dopcte-gen3.c``): ``_blv_tmp`` -> ``_blc_tmp`` for ACS/WFC.

Runs after ACSCCD, on the trimmed image in electrons: full frames and, as calacs 10.5.0 does, any
WFC subarray (one amp, the whole image; parallel and, after SM4, serial correction; see
:func:`amp_regions` for the column scaling a subarray gets). Amp by amp (chip 2: C, D; chip 1: A, B), the
amp is cut out and turned so its readout corner is at the origin; post-SM4 it is first corrected
for serial CTE (rotated so the serial trails run like parallel ones, with that amp's table set),
then for parallel CTE (the parallel set). Each correction smooths the amp down to the CCDTAB read
noise, builds the trap-scaling image from SCLBYCOL and the time factor, inverts the readout model
column by column, adds ``corrected - smoothed`` to SCI and 10 % of it in quadrature to ERR.
The ``blc`` exposure then goes through ACS2D (with DRKCFILE) into ``_flc``.
"""

from __future__ import annotations

from collections.abc import MutableMapping

import numpy as np

from pipeline.core.errors import BadInput
from pipeline.science.calib.context import COMPLETE, CalContext, check_reference
from pipeline.science.calib.cte import acs_kernels
from pipeline.science.calib.cte.acs_pctetab import (
    GEN3_NAME,
    GEN3_VERSION,
    AcsCteTable,
    CteSet,
    read_acs_pctetab,
    with_header_overrides,
)
from pipeline.science.calib.imageio import Exposure, Imset
from pipeline.science.calib.tables import AMPS, read_ccdtab

SM4MJD = 54962.0
CHIP_AMPS = {2: "CD", 1: "AB"}
#: SCLBYCOL columns of chip 1 (amps A, B) follow the 4096 of chip 2 (CDAB order, no prescan).
CHIP1_SCALE_OFFSET = 4096
FULL_CHIP = (2048, 4096)


def trap_map(s: CteSet, nrows: int, ncols: int, column_offset: int, scale_frac: float) -> np.ndarray:
    """``populateTrapPixelMap``: (ncols, nrows) float32; column ``IZ - offset`` gets the SCLBYCOL
    scaling interpolated between rows 512, 1024, 1536, 2048, times (j+1)/2048 and the time factor.
    calacs leaves columns no SCLBYCOL row names unset; here they are 0 (no correction)."""
    out = np.zeros((ncols, nrows), dtype=np.float32)
    column = s.iz - column_offset
    rows = np.flatnonzero((column >= 0) & (column < ncols))
    if rows.size == 0:
        return out
    # a later row for the same column overwrites an earlier one
    _, last = np.unique(column[rows][::-1], return_index=True)
    rows = rows[::-1][last]
    j = np.arange(nrows)
    ro = np.minimum(j / 512.0, 2.999)
    io = np.floor(ro).astype(np.int64)
    cte_j = (j + 1) / 2048.0
    sc = s.scale[rows]                                      # (n, 4)
    lo = sc[:, io]
    cte_i = lo + (sc[:, io + 1] - lo) * (ro - io)
    out[column[rows]] = (cte_i * cte_j * scale_frac).astype(np.float32)
    return out


def _rotate(a: np.ndarray, amp: str) -> np.ndarray:
    """``rotateAmpData_acscte``: transpose, then flip left-right (B, C) or top-bottom (A, D)."""
    t = a.T
    return t[:, ::-1] if amp in "BC" else t[::-1, :]


def _derotate(a: np.ndarray, amp: str) -> np.ndarray:
    t = a.T
    return t[::-1, :] if amp in "BC" else t[:, ::-1]


def _align(a: np.ndarray, amp: str) -> np.ndarray:
    """``alignAmpData``: the amp's corner to the origin (B, D flipped left-right; A, B top-bottom)."""
    if amp in "BD":
        a = a[:, ::-1]
    if amp in "AB":
        a = a[::-1, :]
    return a


def correct_amp(sci: np.ndarray, err: np.ndarray, s: CteSet, *, amp: str, serial: bool, rn: float,
                column_offset: int, scale_frac: float) -> tuple[np.ndarray, np.ndarray]:
    """One ``doPCTEGen3`` pass on an amp's SCI and ERR (float32, chip orientation); returns both."""
    if s.nsmd != 0:
        raise BadInput(f"PCTENSMD = {s.nsmd}: only read-noise model 0 is implemented (as in calacs)",
                       keyword="PCTENSMD")
    a_sci, a_err = (_rotate(sci, amp), _rotate(err, amp)) if serial else (sci, err)
    a_sci, a_err = _align(a_sci, amp), _align(a_err, amp)
    nrows, ncols = a_sci.shape
    cols = np.ascontiguousarray(a_sci.T)                    # column-major: [column, row]
    smoothed = acs_kernels.smooth(cols, rn)
    traps = trap_map(s, nrows, ncols, column_offset, scale_frac)
    corrected = acs_kernels.invert(smoothed, traps, s.qlev, s.dpde, s.rprof, s.cprof, ntraps=s.ntraps, tlen=s.tlen,
                                   nfor=s.nfor, npar=s.npar, rn=rn, fixrocr=s.fixrocr, thresh=s.trsh)
    delta = (corrected - smoothed).T                        # float32, as calacs
    new_sci = a_sci + delta
    e2 = a_err * a_err
    t = 0.1 * np.abs(delta.astype(np.float64))
    new_err = np.sqrt(e2.astype(np.float64) + t * t).astype(np.float32)
    new_sci, new_err = _align(new_sci, amp), _align(new_err, amp)
    if serial:
        new_sci, new_err = _derotate(new_sci, amp), _derotate(new_err, amp)
    return new_sci, new_err


def trail_amp(charge: np.ndarray, s: CteSet, *, amp: str, serial: bool, column_offset: int,
              scale_frac: float) -> np.ndarray:
    """The forward model of :func:`correct_amp`: an amp's charge (e-, chip orientation) read out
    through the set's traps in the same layout and trap scaling. Returns float32."""
    a = _align(_rotate(charge, amp) if serial else charge, amp)
    nrows, ncols = a.shape
    traps = trap_map(s, nrows, ncols, column_offset, scale_frac)
    out = acs_kernels.read_out(a.T, traps, s.qlev, s.dpde, s.rprof, s.cprof, ntraps=s.ntraps, tlen=s.tlen,
                               npar=s.npar).T
    out = _align(out, amp)
    return (_derotate(out, amp) if serial else out).astype(np.float32)


def amp_regions(shape: tuple[int, int], amps: str, ampx: int, ampy: int) -> list[tuple[str, tuple[slice, slice], int]]:
    """``get_amp_array_size_acs_cte`` on a trimmed chip: per amp of ``amps`` (this chip's, in CD/AB
    order) its region and the SCLBYCOL column offset (``razColumnOffset``). The amp's place is its
    index in ``amps``, so a one-amp subarray is the whole image at offset 0 (C, D) or 4096 (A, B)
    wherever it sits on the chip, as in calacs 10.5. ``ampx``/``ampy`` are the CCDTAB values (AMPX
    already clipped to the image width, 0: the whole image)."""
    ny, nx = shape
    rows = slice(0, min(ampy if ampy != 0 else ny, ny))
    out = []
    for loc, amp in enumerate(amps):
        xbeg = ampx * loc
        xend = min(ampx if loc == 0 and ampx != 0 else nx, nx)
        out.append((amp, (rows, slice(xbeg, xend)), xbeg + (CHIP1_SCALE_OFFSET if amp in "AB" else 0)))
    return out


def chip_amps(ccdamp: str, chip: int) -> str:
    """``parseWFCamps``: the amps of CCDAMP on ``chip``, in CD (chip 2) or AB (chip 1) order."""
    return "".join(a for a in CHIP_AMPS.get(chip, "") if a in ccdamp)


def trail_chip(electrons: np.ndarray, table: AcsCteTable, chip: int, *, expstart: float,
               ccdamp: str = "ABCD") -> np.ndarray:
    """A trimmed WFC chip or subarray (e-) read out as :func:`run` corrects it: per amp the parallel
    transfer, then after SM4 the serial one, each with the table's own NITPAR and time scaling. The
    amp layout is that of the simulator's CCDTAB: two amps of AMPX 2048, or one amp for the image."""
    out = electrons.astype(np.float32, copy=True)
    amps = chip_amps(ccdamp, chip)
    ampx = min(FULL_CHIP[1] // 2, out.shape[1]) if len(amps) == 2 else out.shape[1]
    parallel = table.sets["parallel"]
    for amp, region, offset in amp_regions(out.shape, amps, ampx, 0):
        out[region] = trail_amp(out[region], parallel, amp=amp, serial=False, column_offset=offset,
                                scale_frac=parallel.scale_frac(expstart))
        if expstart >= SM4MJD:
            serial = table.sets[amp]
            out[region] = trail_amp(out[region], serial, amp=amp, serial=True, column_offset=offset,
                                    scale_frac=serial.scale_frac(expstart))
    return out


class _Header:
    """calacs's ``updateKeyOrAddAsHistKey*``: update a keyword the header has, else add HISTORY."""

    def __init__(self, header: MutableMapping[str, object], history: list[str]) -> None:
        self.header, self.history = header, history

    def put(self, kw: str, value: object, comment: str) -> None:
        if kw in self.header:
            self.header[kw] = value
            return
        if isinstance(value, str):
            text = f"{kw} {value} {comment}"
        elif isinstance(value, int):
            text = f"{kw} {value:12d} {comment}"
        else:
            text = f"{kw} {float(value):#20.12E} {comment}"  # type: ignore[arg-type]
        self.history.append(text)

    def record(self, s: CteSet, corr_type: str, frac: float, name: str, version: str) -> None:
        """``populateImageFileWithCTEKeywordValues``."""
        if corr_type.startswith("parallel"):
            self.put("CTE_NAME", name, "CTE algorithm name")
            self.put("CTE_VER", version, "CTE algorithm version")
            self.put("CORRTYPE", corr_type, "CTE correction type")
            self.put("FIXROCR", s.fixrocr, "fix readout cosmic rays")
            self.put("PCTETRSH", s.trsh, "CTE over subtraction threshold")
            self.put("PCTEFRAC", frac, "CTE scaling factor")
        else:
            self.put("CORRTYPE", corr_type, "CTE correction type")
        self.put("CTEDATE0", s.date0, "Date of instrument installation")
        self.put("CTEDATE1", s.date1, "Date of CTE model pinning")
        self.put("PCTETLEN", s.tlen, "max length of CTE trail")
        self.put("PCTENFOR", s.nfor, "Number of iter in forward model")
        self.put("PCTENPAR", s.npar, "Number of iter in parallel transfer")


def check(ctx: CalContext, exposure: Exposure) -> None:
    """ACSCTE's preconditions: ACSCCD done (overscan trimmed), a full frame, the PCTETAB."""
    if ctx.switches.get("BLEVCORR", str(ctx.primary.get("BLEVCORR", "")).strip().upper()) != COMPLETE:
        raise BadInput("Overscan region not trimmed (BLEVCORR is not COMPLETE): ACSCTE needs the _blv_tmp image",
                       path=ctx.path, keyword="BLEVCORR")
    for im in exposure.imsets:
        if float(im.sci_header.get("LTV1", 0.0)) > 0 or float(im.sci_header.get("LTV2", 0.0)) > 0:
            raise BadInput(f"imset {im.extver}: LTV1/LTV2 > 0, overscan region not trimmed", path=ctx.path,
                           keyword="LTV1")
    if not ctx.key("SUBARRAY", bool):
        for im in exposure.imsets:
            if im.sci.shape != FULL_CHIP:
                raise BadInput(f"SUBARRAY = F but imset {im.extver} is {im.sci.shape[1]} x {im.sci.shape[0]}, "
                               f"not a trimmed full chip {FULL_CHIP[1]} x {FULL_CHIP[0]}", path=ctx.path,
                               keyword="SUBARRAY")
    check_reference(ctx, "PCTETAB", filetype="PIXCTE", table=True)


def _readnoise(ctx: CalContext, imset: Imset) -> tuple[tuple[float, float, float, float], int, int]:
    ccdtab = ctx.reference_path("CCDTAB")
    assert ccdtab is not None
    nx = imset.sci.shape[1]
    hdr = imset.sci_header
    binaxis = (int(hdr.get("BINAXIS1", ctx.primary.get("BINAXIS1", 1))),
               int(hdr.get("BINAXIS2", ctx.primary.get("BINAXIS2", 1))))
    ccd = read_ccdtab(ccdtab, ccdamp=ctx.key("CCDAMP", str), chip=imset.chip, ccdgain=ctx.key("CCDGAIN", float, 1.0),
                      binaxis=binaxis, ccdofst=[ctx.key(f"CCDOFST{a}", int, 3) for a in AMPS], dimx=nx)
    return ccd.readnoise, ccd.ampx, ccd.ampy


def run(ctx: CalContext, blv: Exposure) -> Exposure:
    """The ``blc`` exposure of an ACS/WFC ``blv``; keywords and HISTORY go to ``ctx``/the header."""
    check(ctx, blv)
    path = ctx.reference_path("PCTETAB")
    assert path is not None
    table = read_acs_pctetab(path)
    expstart = ctx.key("EXPSTART", float)
    primary = blv.primary.copy()
    history: list[str] = []
    hdr = _Header(primary, history)
    parallel = with_header_overrides(table.sets["parallel"], primary, ctx.path)
    frac = parallel.scale_frac(expstart)
    hdr.record(parallel, "parallel", frac, table.name, table.version)
    ctx.log(f"CTE: {table.name} {table.version}, parallel PCTEFRAC {frac:.10g}, NITFOR {parallel.nfor}, "
            f"NITPAR {parallel.npar}")
    ccdamp = ctx.key("CCDAMP", str)
    first_rn: tuple[float, ...] | None = None
    out = Exposure(path=blv.path, primary=primary)
    for imset in blv.imsets:
        rn, ampx, ampy = _readnoise(ctx, imset)
        first_rn = first_rn or rn
        ny, nx = imset.sci.shape
        sci, err = imset.sci.astype(np.float32, copy=True), imset.err.astype(np.float32, copy=True)
        for amp, region, offset in amp_regions((ny, nx), chip_amps(ccdamp, imset.chip), ampx, ampy):
            rn_amp = rn[AMPS.index(amp)]
            if expstart >= SM4MJD:
                serial = with_header_overrides(table.sets[amp], primary, ctx.path)
                sfrac = serial.scale_frac(expstart)
                hdr.record(serial, f"serial - Amp {amp}", sfrac, table.name, table.version)
                sci[region], err[region] = correct_amp(sci[region], err[region], serial, amp=amp, serial=True,
                                                       rn=rn_amp, column_offset=offset, scale_frac=sfrac)
            sci[region], err[region] = correct_amp(sci[region], err[region], parallel, amp=amp, serial=False,
                                                   rn=rn_amp, column_offset=offset, scale_frac=frac)
            ctx.log(f"CTE: amp {amp} corrected (read noise {rn_amp:.4g} e-)")
        out.imsets.append(Imset(imset.extver, sci, err, imset.dq, imset.sci_header.copy(), imset.err_header.copy(),
                                imset.dq_header.copy()))
    assert first_rn is not None
    history.append("PCTECORR complete ...")
    history.extend(f"PCTERNOI {v:#14.7E} Amp '{a}' read noise clip limit (from CCDTAB)."
                   for a, v in zip(AMPS, first_rn, strict=True))
    history += ["CTE parameters table: ", f"  reference table {ctx.primary.get('PCTETAB')}"]
    history += [f"    {text}" for text in (table.pedigree, table.descrip) if text]
    for line in history:
        primary.add_history(line)
    ctx.primary_updates.update(CTE_NAME=GEN3_NAME, CTE_VER=GEN3_VERSION)
    ctx.done("PCTECORR")
    return out

