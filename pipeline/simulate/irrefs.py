"""WFC3/IR reference files in the real layouts, drawn from :mod:`pipeline.simulate.irmodel`.

CCDTAB/OSCNTAB/BPIXTAB/CRREJTAB/IMPHTTAB tables, the NLINFILE (COEF 1..4, ERR, DQ, NODE, ZSCI,
ZERR), a DARKFILE per sample sequence and subarray type (one imset per read time, DN since the
zero read, EXTVER 1 the longest) and a PFLTFILE per filter (1024x1024 including the border).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.core.fsutil import atomic_write_fits
from pipeline.simulate.irmodel import (
    BORDER,
    CCDGAIN,
    FULL_SUBTYPE,
    GAINS,
    IR_FILTERS,
    NPIX,
    READNOISE,
    SUBARRAYS,
    IRMaps,
    mean_gain,
    sample_times,
)
from pipeline.simulate.photometry import MJD_GRID, PHOTZPT
from pipeline.simulate.reffiles import photometry_extension

USEAFTER = "May 14 2009 00:00:00"
#: Dark imsets cover the longest ramp a sequence allows.
MAX_NSAMP = 16


def _primary(filetype: str, descrip: str, **extra: object) -> fits.Header:
    h = fits.Header()
    h["INSTRUME"] = "WFC3"
    h["DETECTOR"] = "IR"
    h["FILETYPE"] = filetype
    h["USEAFTER"] = USEAFTER
    h["PEDIGREE"] = "INFLIGHT 14/05/2009 14/05/2009"
    h["DESCRIP"] = descrip
    h["COMMENT"] = "owlpipe simulated reference file"
    for k, v in extra.items():
        h[k] = v
    return h


def _table(primary: fits.Header, extname: str, columns: list[fits.Column], **extra: object) -> fits.HDUList:
    table = fits.BinTableHDU.from_columns(columns, name=extname)
    table.header["FILETYPE"] = primary["FILETYPE"]
    for k, v in extra.items():
        table.header[k] = v
    primary["NEXTEND"] = 1
    return fits.HDUList([fits.PrimaryHDU(header=primary), table])


def ccd_table() -> fits.HDUList:
    cols = {"CCDAMP": ("4A", ["ABCD"]), "CCDCHIP": ("I", [1]), "CCDGAIN": ("E", [CCDGAIN]),
            "BINAXIS1": ("I", [1]), "BINAXIS2": ("I", [1]), "AMPX": ("I", [512]), "AMPY": ("I", [512]),
            "SATURATE": ("E", [40000.0])}
    for n, a in enumerate("ABCD"):
        cols[f"CCDOFST{a}"] = ("I", [0])
        cols[f"CCDBIAS{a}"] = ("E", [11000.0])
        cols[f"ATODGN{a}"] = ("E", [GAINS[n]])
        cols[f"READNSE{a}"] = ("E", [READNOISE[n]])
    return _table(_primary("CCD PARAMETERS", "IR detector gains and read noise"), "CCD",
                  [fits.Column(name=k, format=f, array=np.array(v)) for k, (f, v) in cols.items()])


def raw_sizes() -> list[int]:
    return [NPIX] + [size + 2 * BORDER for _, size in SUBARRAYS.values()]


def overscan_table() -> fits.HDUList:
    """One row per raw size (full frame and each square subarray): 5-pixel trims and the reference
    columns 2..5 and NX-4..NX-1 (the outermost column on each side is skipped)."""
    sizes = raw_sizes()
    n = len(sizes)
    cols: dict[str, tuple[str, list]] = {
        "CCDAMP": ("4A", ["ABCD"] * n), "CCDCHIP": ("I", [1] * n), "BINX": ("I", [1] * n), "BINY": ("I", [1] * n),
        "NX": ("I", sizes), "NY": ("I", sizes), "TRIMX1": ("I", [BORDER] * n), "TRIMX2": ("I", [BORDER] * n),
        "TRIMX3": ("I", [0] * n), "TRIMX4": ("I", [0] * n), "TRIMY1": ("I", [BORDER] * n),
        "TRIMY2": ("I", [BORDER] * n),
        "BIASSECTA1": ("I", [2] * n), "BIASSECTA2": ("I", [BORDER] * n),
        "BIASSECTB1": ("I", [s - BORDER + 1 for s in sizes]), "BIASSECTB2": ("I", [s - 1 for s in sizes]),
    }
    for name in ("VX1", "VX2", "VX3", "VX4", "VY1", "VY2", "VY3", "VY4", "BIASSECTC1", "BIASSECTC2",
                 "BIASSECTD1", "BIASSECTD2"):
        cols[name] = ("I", [0] * n)
    return _table(_primary("OVERSCAN", "IR reference-pixel regions"), "OSC",
                  [fits.Column(name=k, format=f, array=np.array(v)) for k, (f, v) in cols.items()])


def badpix_table(maps: IRMaps) -> fits.HDUList:
    ys, xs = np.nonzero(maps.bad)
    n = xs.size
    columns = [fits.Column(name="PIX1", format="I", array=xs + 1), fits.Column(name="PIX2", format="I", array=ys + 1),
               fits.Column(name="LENGTH", format="I", array=np.ones(n, int)),
               fits.Column(name="AXIS", format="I", array=np.ones(n, int)),
               fits.Column(name="VALUE", format="I", array=maps.bad[ys, xs].astype(int)),
               fits.Column(name="CCDCHIP", format="I", array=np.ones(n, int)),
               fits.Column(name="CCDAMP", format="4A", array=np.array(["N/A"] * n)),
               fits.Column(name="CCDGAIN", format="E", array=np.full(n, -999.0))]
    return _table(_primary("BAD PIXELS", "IR bad pixels"), "BPX", columns, SIZAXIS1=NPIX, SIZAXIS2=NPIX)


def crrej_table() -> fits.HDUList:
    """CRREJTAB with IRRAMP rows (CRSPLIT 2..16) and the UVIS-style rows calwf3 ignores for IR."""
    n = 15
    columns = [
        fits.Column(name="CRSPLIT", format="I", array=np.arange(2, 2 + n)),
        fits.Column(name="MEANEXP", format="E", array=np.full(n, 3600.0)),
        fits.Column(name="IRRAMP", format="L", array=np.ones(n, bool)),
        fits.Column(name="SCALENSE", format="8A", array=np.array(["0.0"] * n)),
        fits.Column(name="INITGUES", format="8A", array=np.array(["minimum"] * n)),
        fits.Column(name="SKYSUB", format="4A", array=np.array(["none"] * n)),
        fits.Column(name="CRSIGMAS", format="20A", array=np.array(["4.0"] * n)),
        fits.Column(name="CRRADIUS", format="E", array=np.zeros(n)),
        fits.Column(name="CRTHRESH", format="E", array=np.zeros(n)),
        fits.Column(name="BADINPDQ", format="I", array=np.full(n, 39)),
        fits.Column(name="CRMASK", format="L", array=np.zeros(n, bool)),
    ]
    return _table(_primary("COSMIC RAY REJECTION", "IR up-the-ramp rejection parameters"), "CRR", columns)


def photometry_table() -> fits.HDUList:
    """IMPHTTAB with PHOTFLAM/PHOTPLAM/PHOTBW extensions, rows ``wfc3,ir,<filter>[,mjd#]``."""
    h = _primary("IMAGE PHOTOMETRY TABLE", "IR image photometry table", PARNUM=1, PHOTZPT=PHOTZPT, DBTABLE="IMPHTTAB",
                 NEXTEND=3, SYNSWVER="owlpipe", GRAPHTAB="N/A", COMPTAB="N/A")
    grid = np.array(MJD_GRID)
    hdus: list = [fits.PrimaryHDU(header=h)]
    for n_ext, ext in enumerate(("PHOTFLAM", "PHOTPLAM", "PHOTBW")):
        rows = []
        for fname, values in IR_FILTERS.items():
            base = f"wfc3,ir,{fname.lower()}"
            value = values[n_ext]
            drift = (1.0 + 2e-6 * (grid - 55000.0)) if ext == "PHOTFLAM" else np.ones_like(grid)
            rows.append((base, ext, value, np.zeros(len(grid)), 0, "", np.zeros(len(grid))))
            rows.append((f"{base},mjd#", f"{ext}1", 0.0, value * drift, len(grid), "MJD#", grid))
        hdus.append(photometry_extension(ext, rows, len(grid), str(h["PEDIGREE"])))
    return fits.HDUList(hdus)


def _image(name: str, extver: int, data: np.ndarray, **keys: object) -> fits.ImageHDU:
    hdu = fits.ImageHDU(data=data, name=name)
    hdu.header["EXTVER"] = extver
    for k, v in keys.items():
        hdu.header[k] = v
    return hdu


def _constant(name: str, extver: int, value: float, shape: tuple[int, int]) -> fits.ImageHDU:
    hdu = fits.ImageHDU(name=name)
    hdu.header["EXTVER"] = extver
    hdu.header["NPIX1"], hdu.header["NPIX2"], hdu.header["PIXVALUE"] = shape[1], shape[0], value
    return hdu


def nlin_file(maps: IRMaps) -> fits.HDUList:
    h = _primary("LINEARITY COEFFICIENTS", "IR non-linearity coefficients", NCOEF=4, NERR=10)
    shape = maps.node.shape
    hdus: list = [fits.PrimaryHDU(header=h)]
    hdus += [_image("COEF", k + 1, maps.coef[k]) for k in range(4)]
    hdus += [_constant("ERR", k + 1, 0.0, shape) for k in range(10)]
    dq = np.zeros(shape, np.int16)
    dq[maps.bad == 4] = 8
    hdus += [_image("DQ", 1, dq), _image("NODE", 1, maps.node), _image("ZSCI", 1, maps.bias),
             _constant("ZERR", 1, 4.0, shape)]
    return fits.HDUList(hdus)


@dataclass(frozen=True)
class Frame:
    """Where a raw array sits in the full frame: corner (x, y) and size (raw, border included)."""

    corner: int
    size: int

    @property
    def ltv(self) -> float:
        return -float(self.corner)

    def cut(self, arr: np.ndarray) -> np.ndarray:
        return arr[self.corner:self.corner + self.size, self.corner:self.corner + self.size]


def frame_for(subtype: str) -> Frame:
    for sub, size in SUBARRAYS.values():
        if sub == subtype:
            return Frame(NPIX // 2 - size // 2 - BORDER, size + 2 * BORDER)
    if subtype != FULL_SUBTYPE:
        raise ValueError(f"unknown IR SUBTYPE {subtype!r}")
    return Frame(0, NPIX)


def dark_rate_dn(maps: IRMaps) -> np.ndarray:
    """Dark current in DN/s inside the light-sensitive area (reference pixels see none)."""
    rate = (maps.dark / np.float32(mean_gain())).astype(np.float32)
    border = np.ones_like(rate, bool)
    border[BORDER:NPIX - BORDER, BORDER:NPIX - BORDER] = False
    rate[border] = 0.0
    return rate


def dark_file(maps: IRMaps, samp_seq: str, subtype: str) -> fits.HDUList:
    """One imset per read time of the sequence (EXTVER 1 the longest, the last EXPOS = 0): the
    dark DN accumulated since the zero read."""
    frame = frame_for(subtype)
    times = sample_times(samp_seq, MAX_NSAMP)[::-1]
    h = _primary("DARK", f"IR dark for {samp_seq} {subtype}", SAMP_SEQ=samp_seq, SUBTYPE=subtype, CCDAMP="ABCD",
                 CCDGAIN=CCDGAIN, NUMEXPOS=len(times))
    for i, t in enumerate(times, start=1):
        h[f"EXPOS_{i}"] = t
    rate = frame.cut(dark_rate_dn(maps))
    hot = frame.cut(maps.hot)
    dq = np.where(hot, 16, 0).astype(np.int16)
    shape = rate.shape
    hdus: list = [fits.PrimaryHDU(header=h)]
    for i, t in enumerate(times, start=1):
        hdus += [_image("SCI", i, (rate * np.float32(t)).astype(np.float32), LTV1=frame.ltv, LTV2=frame.ltv,
                        SAMPTIME=t, BUNIT="COUNTS"),
                 _constant("ERR", i, 0.05, shape), _image("DQ", i, dq), _constant("SAMP", i, len(times) - i, shape),
                 _constant("TIME", i, t, shape)]
    return fits.HDUList(hdus)


def flat_file(maps: IRMaps, filter_name: str) -> fits.HDUList:
    h = _primary("PIXEL-TO-PIXEL FLAT", f"IR flat for {filter_name}", FILTER=filter_name)
    shape = maps.flat.shape
    flat = maps.flat.copy()
    flat[maps.bad == 4] = 0.0
    dq = np.zeros(shape, np.int16)
    return fits.HDUList([fits.PrimaryHDU(header=h), _image("SCI", 1, flat), _constant("ERR", 1, 0.002, shape),
                         _image("DQ", 1, dq), _constant("SAMP", 1, 1, shape), _constant("TIME", 1, 1.0, shape)])


def write_ir_references(maps: IRMaps, outdir: Path, *, darks: list[tuple[str, str]], filters: list[str],
                        prefix: str = "owl") -> dict[str, str]:
    """Write the tables, NLINFILE, darks and flats; returns ``{keyword or keyword:key: file name}``
    (``DARKFILE:<seq>:<subtype>`` and ``PFLTFILE:<filter>`` for the per-mode files)."""
    outdir.mkdir(parents=True, exist_ok=True)
    files: dict[str, tuple[str, fits.HDUList]] = {
        "CCDTAB": (f"{prefix}_ir_ccd.fits", ccd_table()),
        "OSCNTAB": (f"{prefix}_ir_osc.fits", overscan_table()),
        "BPIXTAB": (f"{prefix}_ir_bpx.fits", badpix_table(maps)),
        "CRREJTAB": (f"{prefix}_ir_crr.fits", crrej_table()),
        "IMPHTTAB": (f"{prefix}_ir_imp.fits", photometry_table()),
        "NLINFILE": (f"{prefix}_ir_lin.fits", nlin_file(maps)),
    }
    for seq, sub in darks:
        files[f"DARKFILE:{seq}:{sub}"] = (f"{prefix}_{seq.lower()}_{sub.lower()}_drk.fits", dark_file(maps, seq, sub))
    for f in filters:
        files[f"PFLTFILE:{f}"] = (f"{prefix}_{f.lower()}_pfl.fits", flat_file(maps, f))
    out = {}
    for key, (name, hdul) in files.items():
        atomic_write_fits(hdul, outdir / name)
        out[key] = name
    return out
