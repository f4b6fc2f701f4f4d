"""The UVIS PCTETAB (FILETYPE PIXCTE) and the header overrides of ``CompareCTEParams``.

Layout: primary keywords CTE_NAME ... FIXROCR; ext 1 QPROF (W, QLEV_Q, DPDE_W, 999 rows); ext 2
SCLBYCOL (read for its columns, unused); images RPROF and CPROF (999 traps x 100 steps).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.core.errors import BadInput, MissingReference

#: The trail length the algorithm uses whatever PCTETLEN says.
TRAIL = 60
SCLBYCOL_COLUMNS = ("IZ", "SENS_0512", "SENS_1024", "SENS_1536", "SENS_2048")
#: calwf3 reads CTE_NAME and CTE_VER into 24-character buffers (``GetKeyStr(..., SZ_CBUF)``) and
#: writes what it kept: a longer name reaches the rac and flc headers truncated.
SZ_CBUF = 24
#: Raw primary keywords read with no default (a missing one is a header problem).
RAW_REQUIRED = ("PCTENSMD", "PCTETLEN", "PCTENFOR", "PCTENPAR", "FIXROCR")


@dataclass(frozen=True)
class CteTable:
    """Model parameters: the table's values, then the header overrides applied."""

    name: str
    version: str
    date0: float
    date1: float
    tlen: int
    nfor: int
    npar: int
    nsmd: int
    trsh: float
    fixrocr: int
    qlev: np.ndarray     # (999,) float64, e-
    dpde: np.ndarray     # (999,) float64
    rprof: np.ndarray    # (100, 999) float32: release fraction at step t for trap w
    cprof: np.ndarray    # (100, 999) float32: fraction still held after step t

    def keywords(self) -> dict[str, object]:
        """The primary keywords WF3CTE writes (PCTEFRAC and PCTERNOI are added by the step)."""
        return {"CTE_NAME": self.name, "CTE_VER": self.version, "CTEDATE0": self.date0,
                "CTEDATE1": self.date1, "PCTETRSH": self.trsh, "PCTETLEN": self.tlen,
                "PCTENFOR": self.nfor, "PCTENPAR": self.npar, "PCTENSMD": self.nsmd, "FIXROCR": self.fixrocr}


def _bad(path: Path, text: str, keyword: str = "PCTETAB") -> MissingReference:
    return MissingReference(f"PCTETAB {path.name}: {text}", keyword=keyword, path=path)


def read_pctetab(path: Path) -> CteTable:
    """Read the table; anything missing is a :class:`MissingReference` naming the file and item."""
    try:
        with fits.open(path, memmap=False) as hdul:
            p = hdul[0].header
            values: dict[str, object] = {}
            for kw, kind in (("CTE_NAME", str), ("CTE_VER", str), ("CTEDATE0", float), ("CTEDATE1", float),
                             ("PCTETLEN", int), ("PCTENFOR", int), ("PCTENPAR", int), ("PCTENSMD", int),
                             ("PCTETRSH", float), ("FIXROCR", int)):
                if kw not in p:
                    raise _bad(path, f"primary keyword {kw} is missing")
                try:
                    values[kw] = str(p[kw]).strip()[:SZ_CBUF] if kind is str else kind(p[kw])
                except (TypeError, ValueError):
                    raise _bad(path, f"primary keyword {kw} = {p[kw]!r} is not a valid {kind.__name__}") from None
            if len(hdul) < 3:
                raise _bad(path, "needs the QPROF and SCLBYCOL tables in extensions 1 and 2")
            qprof = hdul[1].data
            for col in ("W", "QLEV_Q", "DPDE_W"):
                if qprof is None or col not in qprof.columns.names:
                    raise _bad(path, f"extension 1 (QPROF) has no column {col}")
            sclbycol = hdul[2].data
            for col in SCLBYCOL_COLUMNS:
                if sclbycol is None or col not in sclbycol.columns.names:
                    raise _bad(path, f"extension 2 (SCLBYCOL) has no column {col}")
            profiles = {}
            for name in ("RPROF", "CPROF"):
                try:
                    profiles[name] = np.asarray(hdul[name].data, dtype=np.float32)
                except KeyError:
                    raise _bad(path, f"image extension {name} is missing") from None
            qlev = np.asarray(qprof["QLEV_Q"], dtype=np.float64)
            dpde = np.asarray(qprof["DPDE_W"], dtype=np.float64)
    except OSError as exc:
        raise _bad(path, f"cannot read: {exc}") from None
    ntraps = qlev.size
    for name, prof in profiles.items():
        if prof.ndim != 2 or prof.shape[1] != ntraps or prof.shape[0] < TRAIL:
            raise _bad(path, f"{name} shape {prof.shape} is not (>= {TRAIL} steps, {ntraps} traps)")
    return CteTable(name=values["CTE_NAME"], version=values["CTE_VER"],  # type: ignore[arg-type]
                    date0=values["CTEDATE0"], date1=values["CTEDATE1"],  # type: ignore[arg-type]
                    tlen=values["PCTETLEN"], nfor=values["PCTENFOR"], npar=values["PCTENPAR"],  # type: ignore[arg-type]
                    nsmd=values["PCTENSMD"], trsh=values["PCTETRSH"], fixrocr=values["FIXROCR"],  # type: ignore[arg-type]
                    qlev=qlev, dpde=dpde, rprof=profiles["RPROF"], cprof=profiles["CPROF"])


def with_header_overrides(table: CteTable, primary: Mapping[str, object], path: Path) -> CteTable:
    """``CompareCTEParams``: PCTENFOR/PCTENPAR/PCTETLEN from the raw header when > 1 and different,
    PCTENSMD always from the header, everything else (FIXROCR, PCTETRSH, dates) from the table."""
    header: dict[str, int] = {}
    for kw in RAW_REQUIRED:
        if kw not in primary or primary[kw] is None:
            raise BadInput(f"required CTE keyword {kw} is missing from the primary header", path=path, keyword=kw)
        try:
            header[kw] = int(primary[kw])  # type: ignore[call-overload]
        except (TypeError, ValueError):
            raise BadInput(f"keyword {kw} = {primary[kw]!r} is not an integer", path=path, keyword=kw) from None

    def pick(kw: str, table_value: int) -> int:
        value = header[kw]
        return value if value > 1 and value != table_value else table_value

    return replace(table, nfor=pick("PCTENFOR", table.nfor), npar=pick("PCTENPAR", table.npar),
                   tlen=pick("PCTETLEN", table.tlen), nsmd=header["PCTENSMD"])
