"""Small WFC3/UVIS-like exposures and reference files in the real STScI formats, for engine tests.

The geometry is a scaled-down UVIS chip (same layout: prescan, two amps with serial virtual
overscan between them, parallel virtual rows at the chip-gap edge), so every code path of the
full-frame logic runs on arrays of a few thousand pixels. Table columns, extension layout,
header keywords and units are those of the real files (CCDTAB, OSCNTAB, BPIXTAB, IMPHTTAB, raw
and raw-format/trimmed reference images).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits


@dataclass
class Geometry:
    prescan: int = 5
    amp_width: int = 40
    virtual: int = 6
    rows: int = 30
    vrows: int = 4

    @property
    def nx(self) -> int:
        return 2 * (self.prescan + self.amp_width + self.virtual)

    @property
    def ny(self) -> int:
        return self.rows + self.vrows

    @property
    def trimmed(self) -> tuple[int, int]:
        return self.rows, 2 * self.amp_width

    def trimy(self, chip: int) -> tuple[int, int]:
        return (0, self.vrows) if chip == 2 else (self.vrows, 0)

    def science_cols(self) -> np.ndarray:
        p, w, v = self.prescan, self.amp_width, self.virtual
        return np.r_[p:p + w, p + w + 2 * v:p + 2 * w + 2 * v]


@dataclass
class UvisSet:
    """A raw exposure plus its references; ``refs`` maps keyword -> file name in ``refdir``."""

    geo: Geometry = field(default_factory=Geometry)
    gains: tuple[float, float, float, float] = (1.55, 1.58, 1.60, 1.62)
    readnoise: tuple[float, float, float, float] = (3.1, 3.0, 3.2, 3.05)
    ccdbias: tuple[float, float, float, float] = (2500.0, 2510.0, 2490.0, 2505.0)
    saturate: float = 63000.0
    exptime: float = 100.0
    expstart: float = 56000.0
    filt: str = "F606W"
    refs: dict[str, str] = field(default_factory=dict)


def _table(columns: dict[str, tuple[str, object]], *, filetype: str, detector: str = "UVIS",
           extname: str | None = None, header: dict[str, object] | None = None) -> fits.HDUList:
    cols = [fits.Column(name=n, format=f, array=np.asarray(v)) for n, (f, v) in columns.items()]
    table = fits.BinTableHDU.from_columns(cols, name=extname)
    table.header["FILETYPE"] = filetype
    for k, v in (header or {}).items():
        table.header[k] = v
    primary = fits.PrimaryHDU()
    primary.header.update(INSTRUME="WFC3", DETECTOR=detector, FILETYPE=filetype, PEDIGREE="INFLIGHT 01/01/2020")
    return fits.HDUList([primary, table])


def write_ccdtab(path: Path, s: UvisSet, *, extra_rows: list[dict[str, object]] | None = None) -> None:
    rows = []
    for chip in (1, 2):
        rows.append(dict(CCDAMP="ABCD", CCDCHIP=chip, CCDGAIN=1.5, BINAXIS1=1, BINAXIS2=1,
                         **{f"CCDOFST{a}": 3 for a in "ABCD"},
                         **{f"CCDBIAS{a}": s.ccdbias[i] for i, a in enumerate("ABCD")},
                         **{f"ATODGN{a}": s.gains[i] for i, a in enumerate("ABCD")},
                         **{f"READNSE{a}": s.readnoise[i] for i, a in enumerate("ABCD")},
                         AMPX=s.geo.amp_width, AMPY=0, SATURATE=s.saturate))
    rows = (extra_rows or []) + rows
    names = list(rows[0])
    fmt = {"CCDAMP": "8A", "CCDCHIP": "I", "BINAXIS1": "I", "BINAXIS2": "I", "AMPX": "J", "AMPY": "J"}
    cols = {n: (fmt.get(n, "I" if n.startswith("CCDOFST") else "E"), [r[n] for r in rows]) for n in names}
    _table(cols, filetype="CCD PARAMETERS").writeto(path, overwrite=True)


def write_oscntab(path: Path, s: UvisSet) -> None:
    g = s.geo
    p, w, v = g.prescan, g.amp_width, g.virtual
    rows = []
    for chip in (1, 2):
        ty1, ty2 = g.trimy(chip)
        vy = (g.rows + 1, g.ny) if chip == 2 else (1, g.vrows)  # 1-based parallel virtual rows
        rows.append(dict(
            CCDAMP="ABCD", CCDCHIP=chip, BINX=1, BINY=1, NX=g.nx, NY=g.ny,
            TRIMX1=p, TRIMX2=p, TRIMX3=v, TRIMX4=v, TRIMY1=ty1, TRIMY2=ty2,
            VX1=p + 3, VX2=p + w - 2, VY1=vy[0], VY2=vy[1],
            VX3=p + w + 2 * v + 3, VX4=p + 2 * w + 2 * v - 2, VY3=vy[0], VY4=vy[1],
            BIASSECTA1=1, BIASSECTA2=p, BIASSECTB1=g.nx - p + 1, BIASSECTB2=g.nx,
            BIASSECTC1=p + w + 2, BIASSECTC2=p + w + v - 1,
            BIASSECTD1=p + w + v + 2, BIASSECTD2=p + w + 2 * v - 1))
    cols = {n: ("8A" if n == "CCDAMP" else "I", [r[n] for r in rows]) for n in rows[0]}
    _table(cols, filetype="OVERSCAN").writeto(path, overwrite=True)


def write_bpixtab(path: Path, runs: list[tuple[int, int, int, int, int, int]], size: tuple[int, int]) -> None:
    """runs: (PIX1, PIX2, LENGTH, AXIS, VALUE, CCDCHIP), 1-based trimmed detector coordinates."""
    cols = {"PIX1": ("I", [r[0] for r in runs]), "PIX2": ("I", [r[1] for r in runs]),
            "LENGTH": ("I", [r[2] for r in runs]), "AXIS": ("I", [r[3] for r in runs]),
            "VALUE": ("I", [r[4] for r in runs]), "CCDCHIP": ("I", [r[5] for r in runs])}
    _table(cols, filetype="BAD PIXELS", header={"SIZAXIS1": size[0], "SIZAXIS2": size[1]}).writeto(path, overwrite=True)


def _image_file(path: Path, arrays: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]], *, filetype: str,
                ltv: dict[int, tuple[float, float]], primary: dict[str, object]) -> None:
    hdus: list = [fits.PrimaryHDU()]
    hdus[0].header.update(INSTRUME="WFC3", DETECTOR="UVIS", FILETYPE=filetype, PEDIGREE="INFLIGHT 01/01/2020",
                          NEXTEND=3 * len(arrays), **primary)
    for extver, chip in enumerate(sorted(arrays, reverse=True), start=1):
        sci, err, dq = arrays[chip]
        for name, data in (("SCI", sci), ("ERR", err), ("DQ", dq)):
            h = fits.ImageHDU(data=data, name=name)
            h.header.update(EXTVER=extver, CCDCHIP=chip, LTV1=ltv[chip][0], LTV2=ltv[chip][1], LTM1_1=1.0,
                            LTM2_2=1.0)
            hdus.append(h)
    fits.HDUList(hdus).writeto(path, overwrite=True)


def raw_ltv(g: Geometry, chip: int) -> tuple[float, float]:
    return float(g.prescan), float(g.trimy(chip)[0])


def write_raw_reference(path: Path, s: UvisSet, per_chip: dict[int, np.ndarray], *, filetype: str,
                        err: float = 0.0, primary: dict[str, object] | None = None) -> None:
    arrays = {c: (a.astype(np.float32), np.full(a.shape, err, np.float32), np.zeros(a.shape, np.int16))
              for c, a in per_chip.items()}
    _image_file(path, arrays, filetype=filetype, ltv={c: raw_ltv(s.geo, c) for c in per_chip},
                primary=primary or {})


def write_trimmed_reference(path: Path, per_chip: dict[int, np.ndarray], *, filetype: str, err: float = 0.0,
                            primary: dict[str, object] | None = None, dq: dict[int, np.ndarray] | None = None) -> None:
    arrays = {c: (a.astype(np.float32), np.full(a.shape, err, np.float32),
                  (dq or {}).get(c, np.zeros(a.shape, np.int16)).astype(np.int16)) for c, a in per_chip.items()}
    _image_file(path, arrays, filetype=filetype, ltv={c: (0.0, 0.0) for c in per_chip}, primary=primary or {})


def write_imphttab(path: Path, *, flam: dict[str, list[float]], mjds: list[float], extrap: bool = False,
                   filt: str = "f606w") -> None:
    """A UVIS IMPHTTAB: 5 extensions, one MJD-parameterised row per chip."""
    hdus: list = [fits.PrimaryHDU()]
    hdus[0].header.update(PARNUM=1, PHOTZPT=-21.1, NEXTEND=5, FILETYPE="Image photometry table",
                          INSTRUME="wfc3", DETECTOR="uvis")
    if extrap:
        hdus[0].header["EXTRAP"] = True
    n = len(mjds)
    for ext in ("PHOTFLAM", "PHOTPLAM", "PHOTBW", "PHTFLAM1", "PHTFLAM2"):
        modes, p1 = [], []
        for chip in (1, 2):
            modes.append(f"wfc3,uvis{chip},{filt},mjd#")
            if ext == "PHOTPLAM":
                p1.append([5887.0 + chip] * n)
            elif ext == "PHOTBW":
                p1.append([656.0] * n)
            elif ext == "PHTFLAM1":
                p1.append(flam["uvis1"] if chip == 1 else [0.0] * n)
            elif ext == "PHTFLAM2":
                p1.append(flam["uvis2"] if chip == 2 else [0.0] * n)
            else:
                p1.append(flam[f"uvis{chip}"])
        cols = [fits.Column(name="OBSMODE", format="40A", array=modes),
                fits.Column(name="DATACOL", format="12A", array=[f"{ext}1"] * 2),
                fits.Column(name=ext, format="D", array=[0.0, 0.0]),
                fits.Column(name=f"{ext}1", format=f"PD({n})", array=[np.asarray(v, float) for v in p1]),
                fits.Column(name="PAR1NAMES", format="8A", array=["MJD#"] * 2),
                fits.Column(name="PAR1VALUES", format=f"PD({n})", array=[np.asarray(mjds, float)] * 2),
                fits.Column(name="NELEM1", format="I", array=[n, n])]
        hdus.append(fits.BinTableHDU.from_columns(cols, name=ext))
    fits.HDUList(hdus).writeto(path, overwrite=True)


def write_raw(path: Path, s: UvisSet, sci: dict[int, np.ndarray], *, switches: dict[str, str],
              extra: dict[str, object] | None = None, rootname: str = "iabc01xyq") -> None:
    """A raw UVIS exposure: 16-bit SCI with BZERO, empty ERR/DQ, reference keywords ``iref$``."""
    hdus: list = [fits.PrimaryHDU()]
    p = hdus[0].header
    p.update(INSTRUME="WFC3", DETECTOR="UVIS", ROOTNAME=rootname.upper(), FILTER=s.filt, EXPTIME=s.exptime,
             EXPSTART=s.expstart, EXPEND=s.expstart + s.exptime / 86400, SUBARRAY=False, CCDAMP="ABCD",
             CCDGAIN=1.5, FLASHSTA="NONE", FLASHDUR=0.0, NEXTEND=6, TARGNAME="TEST", APERTURE="UVIS")
    for a in "ABCD":
        p[f"CCDOFST{a}"] = 3
    for k, v in switches.items():
        p[k] = v
    for k, v in s.refs.items():
        p[k] = v if v == "N/A" else f"iref${v}"
    for k, v in (extra or {}).items():
        p[k] = v
    for extver, chip in ((1, 2), (2, 1)):
        data = np.clip(np.rint(sci[chip]), 0, 65535).astype(np.uint16)
        h = fits.ImageHDU(data=data, name="SCI", do_not_scale_image_data=False, uint=True)
        h.header.update(EXTVER=extver, CCDCHIP=chip, LTV1=float(s.geo.prescan), LTV2=float(s.geo.trimy(chip)[0]),
                        LTM1_1=1.0, LTM2_2=1.0, CRPIX1=50.0, CRPIX2=20.0, BUNIT="COUNTS")
        hdus.append(h)
        for name in ("ERR", "DQ"):
            e = fits.ImageHDU(name=name)
            e.header.update(EXTVER=extver, NPIX1=s.geo.nx, NPIX2=s.geo.ny, PIXVALUE=0.0)
            hdus.append(e)
    fits.HDUList(hdus).writeto(path, overwrite=True)
