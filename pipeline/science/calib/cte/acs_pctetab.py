"""The ACS/WFC PCTETAB of calacs 10.5 ("Par/Serial PixelCTE 2023", FILETYPE PIXCTE) and the header
overrides of ``getCTEParsFromImageHeader`` (``ctegen2/ctehelpers.c``).

Layout: primary keywords CTE_NAME, CTE_VER, PCTERNOI, PCTENSMD, PCTETRSH, FIXROCR; then five sets
of four extensions -- QPROF (W, QLEV_Q, DPDE_W; 9999 rows; header CTEDATE0, CTEDATE1, PCTETLEN,
PCTENFOR, PCTENPAR), SCLBYCOL (IZ, SENS_0512..SENS_2048; 8192 rows), RPROF and CPROF images
(9999 traps x 100 steps) -- for the parallel correction (extensions 1-4, EXTVER 1) and the serial
correction of amps A, B, C, D (extensions 5-8, ..., 17-20; EXTVER 2..5). Tables are read by
extension number, images by EXTNAME and EXTVER, as calacs does.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.core.errors import BadInput, MissingReference

GEN3_NAME = "Par/Serial PixelCTE 2023"
GEN3_VERSION = "3.0"
#: Rows calacs reads from each QPROF (``TRAPS``) and from each SCLBYCOL (CDAB columns without prescan).
TRAPS = 9999
SCALE_COLUMNS = 8192
UNUSED = 999999.0
#: First extension of each set: parallel, then serial amps A, B, C, D.
SET_START = {"parallel": 1, "A": 5, "B": 9, "C": 13, "D": 17}
PRIMARY_KEYS = (("CTE_NAME", str), ("CTE_VER", str), ("PCTERNOI", float), ("PCTENSMD", int), ("PCTETRSH", float),
                ("FIXROCR", int))
SET_KEYS = (("CTEDATE0", float), ("CTEDATE1", float), ("PCTETLEN", int), ("PCTENFOR", int), ("PCTENPAR", int))
SCALE_NAMES = ("SENS_0512", "SENS_1024", "SENS_1536", "SENS_2048")


@dataclass(frozen=True)
class CteSet:
    """One correction (parallel, or serial for one amp): model parameters and trap tables."""

    date0: float
    date1: float
    tlen: int
    nfor: int
    npar: int
    qlev: np.ndarray      # (9999,) float64 (QLEV_Q)
    dpde: np.ndarray      # (9999,) float64 (DPDE_W)
    ntraps: int           # rows with QLEV_Q < 999999 (``cte_traps``)
    iz: np.ndarray        # (8192,) int64: CDAB column without prescan
    scale: np.ndarray     # (8192, 4) float64: SENS_0512 .. SENS_2048
    rprof: np.ndarray     # (100, 9999) float32: release fraction at step t for trap w
    cprof: np.ndarray     # (100, 9999) float32: fraction still held after step t
    # primary-header values, then the image-header overrides
    nsmd: int = 0
    fixrocr: int = 0
    trsh: float = -10.0

    def scale_frac(self, expstart: float) -> float:
        """``(EXPSTART - CTEDATE0) / (CTEDATE1 - CTEDATE0)`` in double."""
        return (expstart - self.date0) / (self.date1 - self.date0)


@dataclass(frozen=True)
class AcsCteTable:
    name: str
    version: str
    sets: dict[str, CteSet]
    pedigree: str = ""
    descrip: str = ""


def _bad(path: Path, text: str) -> MissingReference:
    return MissingReference(f"PCTETAB {path.name}: {text}", keyword="PCTETAB", path=path)


def _keys(header: fits.Header, spec: tuple[tuple[str, type], ...], path: Path, where: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for kw, kind in spec:
        if kw not in header:
            raise _bad(path, f"{where} keyword {kw} is missing")
        try:
            out[kw] = str(header[kw]).strip() if kind is str else kind(header[kw])
        except (TypeError, ValueError):
            raise _bad(path, f"{where} keyword {kw} = {header[kw]!r} is not a valid {kind.__name__}") from None
    return out


def _columns(hdu: fits.BinTableHDU, names: tuple[str, ...], rows: int, path: Path, ext: int) -> list[np.ndarray]:
    data = hdu.data
    out = []
    for name in names:
        if data is None or name not in data.columns.names:
            raise _bad(path, f"extension {ext} ({hdu.name}) has no column {name}")
        if len(data) < rows:
            raise _bad(path, f"extension {ext} ({hdu.name}) has {len(data)} rows; calacs reads {rows}")
        out.append(np.asarray(data[name][:rows]))
    return out


def _image(hdul: fits.HDUList, name: str, extver: int, path: Path) -> np.ndarray:
    try:
        arr = np.asarray(hdul[name, extver].data, dtype=np.float32)
    except KeyError:
        raise _bad(path, f"image extension {name},{extver} is missing") from None
    if arr.ndim != 2 or arr.shape[1] < TRAPS:
        raise _bad(path, f"{name},{extver} shape {arr.shape} is not (steps, {TRAPS} traps)")
    return arr


def read_acs_pctetab(path: Path) -> AcsCteTable:
    """All five sets; a table of an older generation is refused as calacs refuses it."""
    try:
        with fits.open(path, memmap=False) as hdul:
            top = hdul[0].header
            if "CTE_NAME" not in top:
                raise _bad(path, "no CTE_NAME keyword: this PCTETAB generation is obsolete "
                                 f"(calacs needs '{GEN3_NAME}')")
            if str(top["CTE_NAME"]).strip() != GEN3_NAME:
                raise _bad(path, f"CTE_NAME = {str(top['CTE_NAME']).strip()!r}: this PCTETAB generation is "
                                 f"obsolete (calacs needs '{GEN3_NAME}')")
            prim = _keys(top, PRIMARY_KEYS, path, "primary")
            if len(hdul) < 21:
                raise _bad(path, f"has {len(hdul) - 1} extensions; the parallel/serial layout has 20")
            sets = {}
            for label, ext in SET_START.items():
                vals = _keys(hdul[ext].header, SET_KEYS, path, f"extension {ext} (QPROF)")
                qlev, dpde = _columns(hdul[ext], ("QLEV_Q", "DPDE_W"), TRAPS, path, ext)
                _columns(hdul[ext], ("W",), TRAPS, path, ext)
                iz, *scales = _columns(hdul[ext + 1], ("IZ", *SCALE_NAMES), SCALE_COLUMNS, path, ext + 1)
                extver = ext // 4 + 1
                qlev = qlev.astype(np.float64)
                sets[label] = CteSet(
                    date0=vals["CTEDATE0"], date1=vals["CTEDATE1"], tlen=vals["PCTETLEN"],  # type: ignore[arg-type]
                    nfor=vals["PCTENFOR"], npar=vals["PCTENPAR"],  # type: ignore[arg-type]
                    qlev=qlev, dpde=dpde.astype(np.float64), ntraps=int(np.count_nonzero(qlev < UNUSED)),
                    iz=iz.astype(np.int64), scale=np.stack([s.astype(np.float64) for s in scales], axis=1),
                    rprof=_image(hdul, "RPROF", extver, path), cprof=_image(hdul, "CPROF", extver, path),
                    nsmd=prim["PCTENSMD"], fixrocr=prim["FIXROCR"], trsh=prim["PCTETRSH"])  # type: ignore[arg-type]
    except OSError as exc:
        raise _bad(path, f"cannot read: {exc}") from None
    return AcsCteTable(name=prim["CTE_NAME"], version=prim["CTE_VER"], sets=sets,  # type: ignore[arg-type]
                       pedigree=str(top.get("PEDIGREE", "")).strip(), descrip=str(top.get("DESCRIP", "")).strip())


def with_header_overrides(s: CteSet, header: MutableMapping[str, object], path: Path) -> CteSet:
    """``getCTEParsFromImageHeader``: PCTENSMD whenever present; PCTETLEN, PCTENFOR, PCTENPAR when
    > 1; FIXROCR when 0 or 1 (any other value is an error). Missing keywords keep the table value."""
    def get(kw: str) -> int | None:
        if kw not in header or header[kw] is None:
            return None
        try:
            return int(header[kw])  # type: ignore[call-overload]
        except (TypeError, ValueError):
            raise BadInput(f"keyword {kw} = {header[kw]!r} is not an integer", path=path, keyword=kw) from None

    out = s
    if (v := get("PCTENSMD")) is not None:
        out = replace(out, nsmd=v)
    for kw, field in (("PCTETLEN", "tlen"), ("PCTENFOR", "nfor"), ("PCTENPAR", "npar")):
        if (v := get(kw)) is not None and v > 1:
            out = replace(out, **{field: v})
    if (v := get("FIXROCR")) is not None:
        if v not in (0, 1):
            raise BadInput(f"FIXROCR = {v}: only 0 or 1 accepted", path=path, keyword="FIXROCR")
        out = replace(out, fixrocr=v)
    if out.tlen > s.rprof.shape[0]:
        raise BadInput(f"PCTETLEN = {out.tlen} is longer than the {s.rprof.shape[0]} steps of RPROF", path=path,
                       keyword="PCTETLEN")
    return out
