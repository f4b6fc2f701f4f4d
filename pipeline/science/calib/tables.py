"""Readers for the calibration reference tables in their real STScI formats.

Each reader selects rows the way hstcal does, including its wildcard rules (``SameInt``,
``SameFlt``, ``SameString``): a table value of int -1/-999, float -1/-999 or string ``ANY`` matches
anything; strings compare case-sensitively. Numbers compare as the C code's types do (CCDGAIN as a
float32, offsets and chips as ints).

A table problem (file unreadable, column absent, no matching row) raises
:class:`~pipeline.core.errors.MissingReference` naming the table keyword and what did not match, which is
what hstcal reports as ``Matching row not found`` or ``Column ... not found``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from pipeline.core.errors import MissingReference

INT_WILDCARDS = (-1, -999)
FLT_WILDCARDS = (np.float32(-1.0), np.float32(-999.0))
STRING_WILDCARD = "ANY"
INDEFR = np.float32(1.6e38)  # what the IRAF table library returns for a null float
AMPS = "ABCD"


def same_int(row_value: Any, value: int) -> bool:
    row = int(row_value)
    return row in INT_WILDCARDS or row == int(value)


def same_flt(row_value: Any, value: float) -> bool:
    row = np.float32(row_value)
    return bool(row in FLT_WILDCARDS or row == np.float32(value))


def same_string(row_value: Any, value: str) -> bool:
    row = str(row_value).strip()
    return row in (STRING_WILDCARD, value)


@functools.lru_cache(maxsize=32)
def _load_table(path: str, mtime_ns: int, ext: int | str) -> tuple[fits.Header, fits.Header, Any]:
    """A table read once per process (keyed by modification time): every chip and every member
    of an association selects its rows from the same few tables."""
    with fits.open(path, memmap=False) as hdul:
        hdu = hdul[ext]
        data = hdu.data
        return hdul[0].header.copy(), hdu.header.copy(), (data.copy() if data is not None else None)


@contextlib.contextmanager
def open_table(path: Path, keyword: str, ext: int | str = 1) -> Iterator[tuple[fits.Header, fits.Header, Any]]:
    """(primary header, table header, table data) of a FITS table, errors naming the keyword."""
    try:
        loaded = _load_table(str(path), path.stat().st_mtime_ns, ext)
    except (OSError, KeyError, IndexError) as exc:
        raise MissingReference(f"{keyword} {path.name}: cannot read table extension {ext!r}: {exc}",
                               keyword=keyword, path=path) from None
    yield loaded


def columns_of(data: Any) -> dict[str, str]:
    """Upper-case column name → actual name (table columns are found case-insensitively)."""
    return {name.upper(): name for name in (data.columns.names if data is not None else [])}


def require_columns(data: Any, names: Sequence[str], keyword: str, path: Path) -> dict[str, str]:
    cols = columns_of(data)
    missing = [n for n in names if n.upper() not in cols]
    if missing:
        raise MissingReference(f"{keyword} {path.name}: column(s) {', '.join(missing)} not found",
                               keyword=keyword, path=path)
    return cols


def pedigree_is_dummy(header: fits.Header) -> bool:
    return str(header.get("PEDIGREE", "")).strip().upper().startswith("DUMMY")


# ------------------------------------------------------------------------------------------ CCDTAB


@dataclass(frozen=True)
class CCDParams:
    """The CCDTAB row for one chip, with hstcal's derived values.

    ``atodgain``, ``readnoise`` and ``ccdbias`` are zero for amps not in CCDAMP; ``mean_gain`` is
    the mean of all four ATODGN columns of the row, **including unused amps**, as calwf3 computes it.
    """

    row: int
    ccdamp: str
    chip: int
    atodgain: tuple[float, float, float, float]
    readnoise: tuple[float, float, float, float]
    ccdbias: tuple[float, float, float, float]
    mean_gain: float
    ampx: int
    ampy: int
    saturate: float
    atodsat: int | None = None
    ovrhfls: float | None = None
    ovrhufls: float | None = None
    pedigree: str = ""


CCDTAB_COLUMNS = ("CCDAMP", "CCDCHIP", "CCDGAIN", "BINAXIS1", "BINAXIS2",
                  *(f"CCDOFST{a}" for a in AMPS), *(f"CCDBIAS{a}" for a in AMPS),
                  *(f"ATODGN{a}" for a in AMPS), *(f"READNSE{a}" for a in AMPS), "AMPX", "AMPY", "SATURATE")


def read_ccdtab(path: Path, *, ccdamp: str, chip: int, ccdgain: float, binaxis: tuple[int, int],
                ccdofst: Sequence[int], dimx: int, clip_ampx: bool = True) -> CCDParams:
    """Select the CCDTAB row for one chip (``GetCCDTab``).

    ``clip_ampx``: calwf3 sets ``ampx = min(AMPX, dimx)`` for UVIS (and calacs for WFC) so single-amp
    rows carry an AMPX larger than the image.
    """
    with open_table(path, "CCDTAB") as (_, _thdr, data):
        cols = require_columns(data, CCDTAB_COLUMNS, "CCDTAB", path)
        col = {k: np.asarray(data[v]) for k, v in cols.items()}
        int_gain = np.issubdtype(col["CCDGAIN"].dtype, np.integer)
        for i in range(len(data)):
            gain_ok = (same_int(col["CCDGAIN"][i], int(ccdgain)) if int_gain
                       else same_flt(col["CCDGAIN"][i], ccdgain))
            if not (same_string(col["CCDAMP"][i], ccdamp) and gain_ok
                    and same_int(col["CCDCHIP"][i], chip)
                    and all(same_int(col[f"CCDOFST{a}"][i], ccdofst[k]) for k, a in enumerate(AMPS))
                    and same_int(col["BINAXIS1"][i], binaxis[0]) and same_int(col["BINAXIS2"][i], binaxis[1])):
                continue
            gains = [np.float32(col[f"ATODGN{a}"][i]) for a in AMPS]
            used = [a in ccdamp for a in AMPS]
            mean_gain = np.float32(0.0)
            for g in gains:
                mean_gain = np.float32(mean_gain + g)
            mean_gain = float(np.float32(mean_gain / np.float32(4.0)))
            ampx = int(col["AMPX"][i])
            def pick(name: str, j: int = i) -> float | None:
                return float(np.float32(col[name][j])) if name in col else None

            return CCDParams(
                row=i + 1, ccdamp=ccdamp, chip=chip,
                atodgain=tuple(float(g) if u else 0.0 for g, u in zip(gains, used, strict=True)),  # type: ignore[arg-type]
                readnoise=tuple(float(np.float32(col[f"READNSE{a}"][i])) if u else 0.0  # type: ignore[arg-type]
                                for a, u in zip(AMPS, used, strict=True)),
                ccdbias=tuple(float(np.float32(col[f"CCDBIAS{a}"][i])) if u else 0.0  # type: ignore[arg-type]
                              for a, u in zip(AMPS, used, strict=True)),
                mean_gain=mean_gain,
                ampx=min(ampx, dimx) if clip_ampx else ampx,
                ampy=int(col["AMPY"][i]),
                saturate=float(np.float32(col["SATURATE"][i])),
                atodsat=int(col["ATODSAT"][i]) if "ATODSAT" in col else None,
                ovrhfls=pick("OVRHFLS"), ovrhufls=pick("OVRHUFLS"),
                pedigree=str(col["PEDIGREE"][i]).strip() if "PEDIGREE" in col else "",
            )
    raise MissingReference(
        f"CCDTAB {path.name}: no row matches CCDCHIP {chip}, CCDAMP {ccdamp}, CCDGAIN {ccdgain:g}, "
        f"CCDOFST {','.join(str(int(o)) for o in ccdofst)}, BINAXIS {binaxis[0]},{binaxis[1]}",
        keyword="CCDTAB", path=path)


# ------------------------------------------------------------------------------------------ OSCNTAB


@dataclass(frozen=True)
class OverscanRow:
    """One OSCNTAB row as stored (1-based bias sections, as the table has them)."""

    row: int
    nx: int
    ny: int
    trimx: tuple[int, int, int, int]
    trimy: tuple[int, int]
    vx: tuple[int, int, int, int]
    vy: tuple[int, int, int, int]
    biassect: dict[str, tuple[int, int]] = field(default_factory=dict)


OSCNTAB_COLUMNS = ("CCDAMP", "CCDCHIP", "BINX", "BINY", "NX", "NY", "TRIMX1", "TRIMX2", "TRIMX3",
                   "TRIMX4", "TRIMY1", "TRIMY2", "VX1", "VX2", "VY1", "VY2", "VX3", "VX4", "VY3", "VY4",
                   *(f"BIASSECT{a}{n}" for a in AMPS for n in (1, 2)))


ACS_OSCNTAB_COLUMNS = ("CCDAMP", "CCDCHIP", "BINX", "BINY", "NX", "NY", "TRIMX1", "TRIMX2", "TRIMY1",
                       "TRIMY2", "VX1", "VX2", "VY1", "VY2", "BIASSECTA1", "BIASSECTA2", "BIASSECTB1",
                       "BIASSECTB2")


def read_oscntab(path: Path, *, ccdamp: str, chip: int, binaxis: tuple[int, int],
                 columns: Sequence[str] = OSCNTAB_COLUMNS,
                 size: tuple[int, int] | None = None) -> OverscanRow | None:
    """Select the OSCNTAB row for a CCD chip, matched on CCDAMP, CCDCHIP, BINX and BINY.

    ``columns``: the columns the caller's instrument requires (calacs tables lack the C/D sections
    and VX3..VY4 of WFC3). ``size``: calacs also matches NX, NY and, unlike calwf3, returns None
    (no overscan) instead of failing when no row matches.
    """
    with open_table(path, "OSCNTAB") as (_, _thdr, data):
        cols = require_columns(data, columns, "OSCNTAB", path)
        col = {k: np.asarray(data[v]) for k, v in cols.items()}
        def get(name: str, i: int) -> int:
            return int(col[name][i]) if name in col else 0

        for i in range(len(data)):
            if not (same_string(col["CCDAMP"][i], ccdamp) and same_int(col["CCDCHIP"][i], chip)
                    and same_int(col["BINX"][i], binaxis[0]) and same_int(col["BINY"][i], binaxis[1])):
                continue
            if size is not None and not (same_int(col["NX"][i], size[0]) and same_int(col["NY"][i], size[1])):
                continue
            return OverscanRow(
                row=i + 1, nx=get("NX", i), ny=get("NY", i),
                trimx=tuple(get(f"TRIMX{n}", i) for n in range(1, 5)),  # type: ignore[arg-type]
                trimy=(get("TRIMY1", i), get("TRIMY2", i)),
                vx=tuple(get(f"VX{n}", i) for n in range(1, 5)),  # type: ignore[arg-type]
                vy=tuple(get(f"VY{n}", i) for n in range(1, 5)),  # type: ignore[arg-type]
                biassect={a: (get(f"BIASSECT{a}1", i), get(f"BIASSECT{a}2", i)) for a in AMPS},
            )
    if size is not None:
        return None
    raise MissingReference(f"OSCNTAB {path.name}: no row matches CCDAMP {ccdamp}, CCDCHIP {chip}, "
                           f"BINX {binaxis[0]}, BINY {binaxis[1]}", keyword="OSCNTAB", path=path)


# ------------------------------------------------------------------------------------------ BPIXTAB


@dataclass(frozen=True)
class BadPixelRuns:
    """The BPIXTAB rows that apply to one chip: 0-based starts (before any shift), lengths, axes."""

    sizaxis: tuple[int, int]
    x0: np.ndarray
    y0: np.ndarray
    length: np.ndarray
    axis: np.ndarray
    value: np.ndarray


def read_bpixtab(path: Path, *, chip: int, ccdamp: str, ccdgain: float) -> BadPixelRuns:
    """Rows of a BPIXTAB that apply to a chip (``doDQI`` row selection).

    A row applies when CCDCHIP equals the chip or is -999; CCDAMP equals CCDAMP or is ``N/A``
    (or the column is absent); CCDGAIN equals CCDGAIN or is -999 (or the column is absent).
    """
    with open_table(path, "BPIXTAB") as (_, thdr, data):
        if data is None or len(data) == 0:
            return BadPixelRuns((0, 0), *(np.zeros(0, np.int64) for _ in range(5)))
        cols = require_columns(data, ("PIX1", "PIX2", "LENGTH", "AXIS", "VALUE", "CCDCHIP"), "BPIXTAB", path)
        if "SIZAXIS1" not in thdr or "SIZAXIS2" not in thdr:
            raise MissingReference(f"BPIXTAB {path.name}: SIZAXIS1/SIZAXIS2 missing from the table header",
                                   keyword="BPIXTAB", path=path)
        chips = np.asarray(data[cols["CCDCHIP"]]).astype(np.int64)
        keep = (chips == chip) | (chips == -999) | (chips == -1)
        if "CCDAMP" in cols:
            amps = np.char.strip(np.asarray(data[cols["CCDAMP"]]).astype(str))
            keep &= (amps == "N/A") | (amps == ccdamp) | (amps == STRING_WILDCARD)
        if "CCDGAIN" in cols:
            gains = np.asarray(data[cols["CCDGAIN"]]).astype(np.float32)
            keep &= (gains == np.float32(-999)) | (gains == np.float32(-1)) | (gains == np.float32(ccdgain))
        axis = np.asarray(data[cols["AXIS"]]).astype(np.int64)[keep]
        length = np.asarray(data[cols["LENGTH"]]).astype(np.int64)[keep]
        if np.any((axis != 1) & (axis != 2)):
            raise MissingReference(f"BPIXTAB {path.name}: AXIS must be 1 or 2", keyword="BPIXTAB", path=path)
        if np.any(length <= 0):
            raise MissingReference(f"BPIXTAB {path.name}: LENGTH must be positive", keyword="BPIXTAB", path=path)
        return BadPixelRuns(
            sizaxis=(int(thdr["SIZAXIS1"]), int(thdr["SIZAXIS2"])),
            x0=np.asarray(data[cols["PIX1"]]).astype(np.int64)[keep] - 1,
            y0=np.asarray(data[cols["PIX2"]]).astype(np.int64)[keep] - 1,
            length=length, axis=axis,
            value=np.asarray(data[cols["VALUE"]]).astype(np.int64)[keep] & 0xFFFF,
        )


# ----------------------------------------------------------------------------------------- CRREJTAB


@dataclass(frozen=True)
class CRRejParams:
    """One CRREJTAB row (``rejpar_in``)."""

    row: int
    crsplit: int
    meanexp: float
    sigmas: tuple[float, ...]
    skysub: str
    #: The CRSIGMAS string as the table holds it: the crj's CRSIGMAS keyword (``cr_history.c``).
    sigmas_text: str
    radius: float
    thresh: float
    initgues: str
    scalense: float
    badinpdq: int
    crmask: bool

    def history(self) -> dict[str, object]:
        """The row as ``cr_history.c`` writes it into a ``_crj``'s primary header (CRSIGMAS verbatim)."""
        return {"CRSIGMAS": self.sigmas_text, "CRRADIUS": self.radius, "CRTHRESH": self.thresh,
                "BADINPDQ": self.badinpdq, "CRMASK": self.crmask, "SCALENSE": self.scalense,
                "INITGUES": self.initgues, "SKYSUB": self.skysub}


def parse_sigmas(text: str) -> tuple[float, ...]:
    """``"6.5,5.5,4.5"`` → (6.5, 5.5, 4.5); separators , ; / or blank, as ``strtor`` accepts."""
    parts = [p for p in text.replace(";", ",").replace("/", ",").replace(" ", ",").split(",")]
    while parts and parts[-1] == "":
        parts.pop()
    values = []
    for p in parts:
        if not p or not (p[0].isdigit() or p[0] in "-."):
            raise ValueError(f"illegal CRSIGMAS string {text!r}")
        values.append(float(np.float32(float(p))))
    return tuple(values)


def closest_meanexp_row(crsplit: np.ndarray, meanexp: np.ndarray, rows: Iterable[int], want: int,
                        exptime: np.float32) -> int | None:
    """Among ``rows`` with CRSPLIT == ``want``, the smallest ``MEANEXP - exptime >= 0`` (float32),
    a later row winning ties (``rejpar_in``/``crrpar_in``)."""
    best: int | None = None
    mindiff = np.float32(0)
    for i in rows:
        diff = np.float32(meanexp[i] - exptime)
        if crsplit[i] == want and diff >= 0 and (best is None or diff <= mindiff):
            best, mindiff = int(i), diff
    return best


def read_crrejtab(path: Path, *, nimages: int, mean_exptime: float, irramp: bool = False) -> CRRejParams:
    """The CRREJTAB row for ``nimages`` exposures of mean exposure time ``mean_exptime``.

    CRSPLIT is capped at the table's largest value; among rows with that CRSPLIT the one with the
    smallest ``MEANEXP - mean_exptime >= 0`` wins (the last such row on ties). A null MEANEXP (NaN,
    as in every operational table seen) reads as IRAF's INDEF, 1.6e38, so it matches any exposure
    time and the last row with the right CRSPLIT is used.

    ``irramp``: WFC3/IR's ``crrpar_in`` (``nimages`` = NSAMP): only rows with IRRAMP true count.
    """
    names = ("CRSPLIT", "MEANEXP", "CRSIGMAS", "SKYSUB", "CRRADIUS", "CRTHRESH", "INITGUES",
             "SCALENSE", "BADINPDQ", "CRMASK", *(("IRRAMP",) if irramp else ()))
    with open_table(path, "CRREJTAB") as (_, _thdr, data):
        cols = require_columns(data, names, "CRREJTAB", path)
        rows = (np.flatnonzero(np.asarray(data[cols["IRRAMP"]]).astype(bool)) if irramp
                else np.arange(len(data)))
        if rows.size == 0:
            raise MissingReference(f"CRREJTAB {path.name}: no row has IRRAMP = T", keyword="CRREJTAB", path=path)
        crsplit = np.asarray(data[cols["CRSPLIT"]]).astype(np.int64)
        meanexp = np.asarray(data[cols["MEANEXP"]]).astype(np.float32)
        meanexp = np.where(np.isnan(meanexp), INDEFR, meanexp)  # IRAF tables read a null as INDEF
        want = min(nimages, int(crsplit[rows].max()))
        exp_in = np.float32(mean_exptime)
        best = closest_meanexp_row(crsplit, meanexp, rows, want, exp_in)
        if best is None:
            raise MissingReference(f"CRREJTAB {path.name}: no {'IRRAMP ' if irramp else ''}row with CRSPLIT={want} "
                                   f"and MEANEXP >= {float(exp_in):g}", keyword="CRREJTAB", path=path)
        r = data[best]
        sigmas_text = str(r[cols["CRSIGMAS"]]).strip()
        try:
            sigmas = parse_sigmas(sigmas_text)
        except ValueError as exc:
            raise MissingReference(f"CRREJTAB {path.name} row {best + 1}: {exc}",
                                   keyword="CRREJTAB", path=path) from None
        return CRRejParams(
            row=best + 1, crsplit=want, meanexp=float(meanexp[best]), sigmas=sigmas, sigmas_text=sigmas_text,
            skysub=str(r[cols["SKYSUB"]]).strip(), radius=float(np.float32(r[cols["CRRADIUS"]])),
            thresh=float(np.float32(r[cols["CRTHRESH"]])), initgues=str(r[cols["INITGUES"]]).strip(),
            scalense=float(np.float32(float(str(r[cols["SCALENSE"]]).strip() or 0))),
            badinpdq=int(r[cols["BADINPDQ"]]) & 0xFFFF, crmask=bool(int(r[cols["CRMASK"]])),
        )


# ----------------------------------------------------------------------------------------- IMPHTTAB

PHOT_EXTENSIONS = ("PHOTFLAM", "PHOTPLAM", "PHOTBW", "PHTFLAM1", "PHTFLAM2")


@dataclass(frozen=True)
class PhotValues:
    obsmode: str
    photzpt: float
    values: dict[str, float]


def split_obsmode(obsmode: str) -> tuple[str, list[tuple[str, float]]]:
    """``wfc3,uvis1,f606w,mjd#56000.0`` → (``wfc3,uvis1,f606w,mjd#``, [(``mjd#``, 56000.0)])."""
    keys, pars = [], []
    for tok in obsmode.split(","):
        if "#" in tok:
            name, _, val = tok.partition("#")
            pars.append((name + "#", float(val) if val else 0.0))
            keys.append(name + "#")
        else:
            keys.append(tok)
    return ",".join(keys), pars


def obsmodes_match(table_mode: str, science_mode: str) -> bool:
    """``CompareObsModes``: same length, and every comma token of the table mode occurs in the
    science mode as a substring (case-insensitive)."""
    a, b = table_mode.strip().lower(), science_mode.lower()
    return len(a) == len(b) and all(tok in b for tok in a.split(",") if tok)


def _bounds(x: np.ndarray, val: float) -> tuple[int, int]:
    """``computebounds``: indices of the grid points around ``val`` (end pairs outside the grid)."""
    n = len(x)
    if x[n - 1] <= val:
        return n - 2, n - 1
    i0 = 0
    for k in range(n):
        if x[k] <= val:
            i0 = k
        elif 0 < k < n - 1:
            return i0, k
        elif k == 0:
            return 0, 1
        else:
            return n - 2, n - 1
    return n - 2, n - 1


def _linterp(x: Sequence[float], fx: Sequence[float], pos: float) -> float:
    i0, i1 = _bounds(np.asarray(x, dtype=np.float64), pos)
    if x[i1] - x[i0] == 0:
        raise ValueError("linear interpolation reached a singularity (repeated grid value)")
    return fx[i0] + (pos - x[i0]) * (fx[i1] - fx[i0]) / (x[i1] - x[i0])


def interpolate_nd(grids: Sequence[np.ndarray], results: np.ndarray, point: Sequence[float]) -> float:
    """N-D multilinear interpolation as ``ComputeValue`` does it.

    ``results`` is flat with the first parameter varying fastest. Outside a grid the two end points
    define a straight line (callers clamp points to the grid where extrapolation is allowed).
    """
    ndim = len(grids)
    lo_hi = [_bounds(g, float(p)) for g, p in zip(grids, point, strict=True)]
    strides = np.cumprod([1] + [len(g) for g in grids[:-1]])
    # values at the 2^ndim corners, then collapse one axis at a time (axis 0 first)
    corners: dict[tuple[int, ...], float] = {}
    for bits in np.ndindex(*(2,) * ndim):
        idx = sum(lo_hi[d][b] * int(strides[d]) for d, b in enumerate(bits))
        corners[bits] = float(results[idx])
    for d in range(ndim):
        x = (float(grids[d][lo_hi[d][0]]), float(grids[d][lo_hi[d][1]]))
        nxt: dict[tuple[int, ...], float] = {}
        for bits, val in corners.items():
            if bits[0] == 0:
                rest = bits[1:]
                nxt[rest] = _linterp(x, (val, corners[(1, *rest)]), float(point[d]))
        corners = nxt
    return corners[()]


def read_imphttab(path: Path, obsmode: str) -> PhotValues:
    """Photometry values for an obsmode (``GetPhotTab``).

    The science obsmode's ``par#value`` tokens are split off; the row whose OBSMODE matches the rest
    is used. Parameterised rows (DATACOL ``PHOTFLAM1``...) are interpolated in their PARnVALUES
    grids. A value outside a grid gives -9999, except for ``mjd#`` when the primary header has
    ``EXTRAP = T``: then the value is held at the grid's end (constant-end extrapolation, as
    ccd-calibration.md §7.9 specifies).
    """
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise MissingReference(f"IMPHTTAB {path.name}: cannot open: {exc}", keyword="IMPHTTAB",
                               path=path) from None
    return _read_imphttab(str(path), mtime, obsmode)


@functools.lru_cache(maxsize=64)
def _read_imphttab(path_str: str, mtime_ns: int, obsmode: str) -> PhotValues:
    path = Path(path_str)
    key, pars = split_obsmode(obsmode)
    try:
        hdul = fits.open(path, memmap=False)
    except OSError as exc:
        raise MissingReference(f"IMPHTTAB {path.name}: cannot open: {exc}", keyword="IMPHTTAB",
                               path=path) from None
    with hdul:
        phdr = hdul[0].header
        for kw in ("PARNUM", "PHOTZPT"):
            if kw not in phdr:
                raise MissingReference(f"IMPHTTAB {path.name}: {kw} missing from the primary header",
                                       keyword="IMPHTTAB", path=path)
        nextend = int(phdr.get("NEXTEND", len(hdul) - 1))
        extrap = bool(phdr.get("EXTRAP", False))
        values: dict[str, float] = {}
        for name in PHOT_EXTENSIONS[:nextend]:
            try:
                data = hdul[name].data
            except KeyError:
                raise MissingReference(f"IMPHTTAB {path.name}: extension {name} not found",
                                       keyword="IMPHTTAB", path=path) from None
            cols = require_columns(data, ("OBSMODE", "DATACOL", name), "IMPHTTAB", path)
            modes = [str(m) for m in data[cols["OBSMODE"]]]
            row = next((i for i, m in enumerate(modes) if obsmodes_match(m, key)), None)
            if row is None:
                raise MissingReference(f"IMPHTTAB {path.name}: no row for obsmode {key!r} in {name}",
                                       keyword="IMPHTTAB", path=path)
            values[name] = _row_value(data, cols, row, name, pars, extrap, path)
    return PhotValues(obsmode=key, photzpt=float(phdr["PHOTZPT"]), values=values)


def _row_value(data: Any, cols: dict[str, str], row: int, name: str, pars: list[tuple[str, float]],
               extrap: bool, path: Path) -> float:
    datacol = str(data[cols["DATACOL"]][row]).strip()
    suffix = datacol[len(name):]
    npar = int(suffix) if suffix.isdigit() else 0
    if npar == 0:
        return float(data[cols[name]][row])
    grids: list[np.ndarray] = []
    point: list[float] = []
    for n in range(1, npar + 1):
        need = (f"{name}{n}", f"NELEM{n}", f"PAR{n}NAMES", f"PAR{n}VALUES")
        c = require_columns(data, need, "IMPHTTAB", path)
        parname = str(data[c[f"PAR{n}NAMES"]][row]).strip().lower()
        nelem = int(data[c[f"NELEM{n}"]][row])
        grid = np.asarray(data[c[f"PAR{n}VALUES"]][row], dtype=np.float64)[:nelem]
        value = next((v for p, v in pars if p.lower()[:len(parname)] == parname), 0.0)
        if value == 0.0:
            raise MissingReference(f"IMPHTTAB {path.name}: obsmode gives no value for parameter {parname}",
                                   keyword="IMPHTTAB", path=path)
        if value < grid[0] or value > grid[-1]:
            if not (extrap and parname == "mjd#"):
                return -9999.0
            value = min(max(value, float(grid[0])), float(grid[-1]))  # constant-end extrapolation
        grids.append(grid)
        point.append(value)
    results = np.asarray(data[cols[f"{name}{npar}"]][row], dtype=np.float64)
    try:
        return interpolate_nd(grids, results, point)
    except ValueError as exc:
        raise MissingReference(f"IMPHTTAB {path.name}: {name} row {row + 1}: {exc}",
                               keyword="IMPHTTAB", path=path) from None
