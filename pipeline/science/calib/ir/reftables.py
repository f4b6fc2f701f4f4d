"""The IR reference tables and images as WF3IR reads them (``getccdtab.c``, ``findover.c``,
``refdata.c``): row selection rules that differ from the CCD ones live here."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.core.errors import MissingReference
from pipeline.science.calib.imageio import OPEN_KW, _constant_or_data, frame_of
from pipeline.science.calib.tables import (
    OSCNTAB_COLUMNS,
    open_table,
    read_ccdtab,
    read_crrejtab,
    require_columns,
    same_int,
    same_string,
)

IR_AMP = "ABCD"


@dataclass(frozen=True)
class IRDetector:
    """CCDTAB row and OSCNTAB layout of one IR exposure, in raw pixel indices (0-based)."""

    atodgain: tuple[float, float, float, float]
    readnoise: tuple[float, float, float, float]
    mean_gain: float
    ampx: int
    ampy: int
    nx: int
    ny: int
    trimx: tuple[int, int]
    trimy: tuple[int, int]
    #: Reference-pixel columns (0-based, inclusive) of BIASSECTA and BIASSECTB.
    biassect: tuple[tuple[int, int], tuple[int, int]]

    @property
    def rows(self) -> slice:
        return slice(self.trimy[0], self.ny - self.trimy[1])

    @property
    def cols(self) -> slice:
        return slice(self.trimx[0], self.nx - self.trimx[1])

    @property
    def region(self) -> tuple[slice, slice]:
        """The light-sensitive region R (reference pixels excluded)."""
        return (self.rows, self.cols)


def read_ir_detector(ccdtab: Path, oscntab: Path, *, ccdgain: float, chip: int, nx: int, ny: int) -> IRDetector:
    """CCDTAB row (``CCDAMP=ABCD``, CCDOFST 0, no binning) and the **last** OSCNTAB row whose
    CCDAMP, CCDCHIP, NX and NY match the raw image (``FindOverscan``'s IR branch)."""
    ccd = read_ccdtab(ccdtab, ccdamp=IR_AMP, chip=chip, ccdgain=ccdgain, binaxis=(1, 1), ccdofst=[0, 0, 0, 0],
                      dimx=nx, clip_ampx=False)
    found = None
    with open_table(oscntab, "OSCNTAB") as (_, _thdr, data):
        cols = require_columns(data, OSCNTAB_COLUMNS, "OSCNTAB", oscntab)
        col = {k: np.asarray(data[v]) for k, v in cols.items()}
        for i in range(len(data)):
            if (same_string(col["CCDAMP"][i], IR_AMP) and same_int(col["CCDCHIP"][i], chip)
                    and int(col["NX"][i]) == nx and int(col["NY"][i]) == ny):
                found = i
        if found is None:
            raise MissingReference(f"OSCNTAB {oscntab.name}: no row matches CCDAMP {IR_AMP}, CCDCHIP {chip}, "
                                   f"NX {nx}, NY {ny}", keyword="OSCNTAB", path=oscntab)

        def get(name: str) -> int:
            return int(col[name][found])

        return IRDetector(
            atodgain=ccd.atodgain, readnoise=ccd.readnoise, mean_gain=ccd.mean_gain, ampx=ccd.ampx, ampy=ccd.ampy,
            nx=nx, ny=ny, trimx=(get("TRIMX1"), get("TRIMX2")), trimy=(get("TRIMY1"), get("TRIMY2")),
            biassect=((get("BIASSECTA1") - 1, get("BIASSECTA2") - 1), (get("BIASSECTB1") - 1, get("BIASSECTB2") - 1)))


# ---------------------------------------------------------------------------------------- CRREJTAB


@dataclass(frozen=True)
class IRRampParams:
    """What CRCORR takes from the CRREJTAB row: the threshold (first CRSIGMAS) and BADINPDQ."""

    row: int
    crsplit: int
    thresh: float
    badinpdq: int


def read_irramp_row(path: Path, *, nsamp: int, exptime: float) -> IRRampParams:
    """``crrpar_in``: the IRRAMP row for NSAMP reads and the last read's time; only CRSIGMAS (its
    first value) and BADINPDQ are used for IR."""
    par = read_crrejtab(path, nimages=nsamp, mean_exptime=exptime, irramp=True)
    if not par.sigmas:
        raise MissingReference(f"CRREJTAB {path.name} row {par.row}: CRSIGMAS is empty", keyword="CRREJTAB",
                               path=path)
    return IRRampParams(row=par.row, crsplit=par.crsplit, thresh=par.sigmas[0], badinpdq=par.badinpdq)


# ------------------------------------------------------------------------------------- ref images


def corner_offset(sci_header: fits.Header, ref_header: fits.Header) -> tuple[int, int]:
    """``getcorner``: where the science array starts inside the reference array (x, y)."""
    s, r = frame_of(sci_header).corner, frame_of(ref_header).corner
    return (s[0] - r[0], s[1] - r[1])


def cut_out(arr: np.ndarray, offset: tuple[int, int], shape: tuple[int, int], keyword: str, path: Path) -> np.ndarray:
    """The science-sized part of a full-frame (or larger) reference array."""
    x0, y0 = offset
    ny, nx = shape
    if x0 < 0 or y0 < 0 or y0 + ny > arr.shape[0] or x0 + nx > arr.shape[1]:
        raise MissingReference(f"{keyword} {path.name}: a {arr.shape[1]}x{arr.shape[0]} reference does not cover the "
                               f"{nx}x{ny} science array at offset ({x0},{y0})", keyword=keyword, path=path)
    return arr[y0:y0 + ny, x0:x0 + nx]


def read_extension(hdul: fits.HDUList | Mapping[tuple[str, int], fits.ImageHDU], name: str, extver: int, dtype: type,
                   keyword: str, path: Path,
                   shape: tuple[int, int] | None = None) -> tuple[np.ndarray, fits.Header]:
    try:
        hdu = hdul[(name, extver)]
    except KeyError:
        raise MissingReference(f"{keyword} {path.name}: extension {name},{extver} missing", keyword=keyword,
                               path=path) from None
    if hdu.header.get("NAXIS", 0) == 0 and shape is None:
        shape = (int(hdu.header.get("NPIX2", 0)), int(hdu.header.get("NPIX1", 0)))
    return _constant_or_data(hdu, shape or hdu.data.shape, dtype), hdu.header.copy()


@dataclass
class NlinData:
    """NLINFILE cut to the science array: COEF (NCOEF, ny, nx), DQ, NODE, ZSCI, ZERR."""

    coef: np.ndarray
    dq: np.ndarray
    node: np.ndarray
    zsci: np.ndarray
    zerr: np.ndarray


def read_nlin(path: Path, sci_header: fits.Header, shape: tuple[int, int]) -> NlinData:
    """``getNlinData``: NCOEF COEF extensions plus DQ, NODE, ZSCI and ZERR (all EXTVER 1)."""
    kw = "NLINFILE"
    try:
        hdul = fits.open(path, **OPEN_KW)
    except (OSError, ValueError) as exc:
        raise MissingReference(f"{kw} {path.name}: cannot read: {exc}", keyword=kw, path=path) from None
    with hdul:
        ncoef = int(hdul[0].header.get("NCOEF", 0))
        if ncoef < 1:
            raise MissingReference(f"{kw} {path.name}: NCOEF = {ncoef} must be at least 1", keyword=kw, path=path)
        node, ref_hdr = read_extension(hdul, "NODE", 1, np.float32, kw, path)
        offset = corner_offset(sci_header, ref_hdr)

        def cut(name: str, extver: int, dtype: type) -> np.ndarray:
            arr, _ = read_extension(hdul, name, extver, dtype, kw, path, node.shape)
            return np.ascontiguousarray(cut_out(arr, offset, shape, kw, path))

        return NlinData(coef=np.stack([cut("COEF", k, np.float32) for k in range(1, ncoef + 1)]),
                        dq=cut("DQ", 1, np.uint16), node=cut("NODE", 1, np.float32), zsci=cut("ZSCI", 1, np.float32),
                        zerr=cut("ZERR", 1, np.float32))


@dataclass
class RefPlanes:
    """SCI, ERR and DQ of one reference imset (a dark read or a flat)."""

    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray


@dataclass
class DarkRef:
    """DARKFILE: NUMEXPOS imsets, EXPOS_i the time (since the zero read) of imset i."""

    path: Path
    samp_seq: str
    expos: list[float]
    _index: dict[tuple[str, int], fits.ImageHDU] | None = field(default=None, repr=False)

    @contextmanager
    def opened(self) -> Iterator[DarkRef]:
        """Keep the file open and its extensions indexed while every read takes its imset: opening
        it per read re-parses the headers of all the imsets before the one wanted."""
        with fits.open(self.path, **OPEN_KW) as hdul:
            self._index = {(h.name, h.ver): h for h in hdul}
            try:
                yield self
            finally:
                self._index = None

    def imset(self, extver: int, shape: tuple[int, int]) -> RefPlanes:
        if self._index is None:
            with self.opened():
                return self.imset(extver, shape)
        kw, exts = "DARKFILE", self._index
        sci, _ = read_extension(exts, "SCI", extver, np.float32, kw, self.path, shape)
        err, _ = read_extension(exts, "ERR", extver, np.float32, kw, self.path, shape)
        dq, _ = read_extension(exts, "DQ", extver, np.uint16, kw, self.path, shape)
        for name in ("SAMP", "TIME"):
            read_extension(exts, name, extver, np.float32, kw, self.path, shape)
        if sci.shape != shape:
            raise MissingReference(f"{kw} {self.path.name}: imset {extver} is {sci.shape[1]}x{sci.shape[0]}, the "
                                   f"science array {shape[1]}x{shape[0]} (IR darks are used pixel for pixel)",
                                   keyword=kw, path=self.path)
        return RefPlanes(sci, err, dq)


def _prefix_match(ref_value: str, sci_value: str) -> bool:
    """``strncmp`` over the length of the reference value (an empty one matches anything)."""
    return sci_value[:len(ref_value)] == ref_value


def read_dark_info(path: Path, *, samp_seq: str, subtype: str) -> DarkRef:
    """``getDarkInfo``: SAMP_SEQ and SUBTYPE must match; NUMEXPOS and EXPOS_1..N."""
    kw = "DARKFILE"
    hdr = fits.getheader(path, 0)
    for key, want in (("SAMP_SEQ", samp_seq), ("SUBTYPE", subtype)):
        have = str(hdr.get(key, "")).strip()
        if not _prefix_match(have, want):
            raise MissingReference(f"{kw} {path.name}: {key} '{have}' does not match the data's '{want}'", keyword=kw,
                                   path=path)
    try:
        n = int(hdr["NUMEXPOS"])
        expos = [float(hdr[f"EXPOS_{i}"]) for i in range(1, n + 1)]
    except (KeyError, ValueError) as exc:
        raise MissingReference(f"{kw} {path.name}: NUMEXPOS/EXPOS_i keywords incomplete ({exc})", keyword=kw,
                               path=path) from None
    return DarkRef(path=path, samp_seq=str(hdr.get("SAMP_SEQ", "")).strip(), expos=expos)
