"""Small crafted WFC3/UVIS files for the BC and AC rule tests: a subarray raw, its reference files, a _flt.

Everything is subarray-sized (64x40) so the rule tests stay fast; each test then breaks one thing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

NX, NY = 64, 40
ROOT = "ib3y01c6q"

#: reference keyword -> (file name, FILETYPE or None, is_table)
REFERENCES = {
    "CCDTAB": ("t1_ccd.fits", "CCD PARAMETERS", True),
    "OSCNTAB": ("t2_osc.fits", "OVERSCAN", True),
    "SNKCFILE": ("t3_snk.fits", None, False),
    "BIASFILE": ("t4_bia.fits", "BIAS", False),
    "DARKFILE": ("t5_drk.fits", "DARK", False),
    "PFLTFILE": ("t6_pfl.fits", "PIXEL-TO-PIXEL FLAT", False),
    "IMPHTTAB": ("t7_imp.fits", None, True),
}


def reference_cache(root: Path) -> Path:
    """A CRDS-layout cache holding the crafted UVIS reference files (flat references/hst/)."""
    refdir = root / "crds" / "references" / "hst"
    refdir.mkdir(parents=True, exist_ok=True)
    for _keyword, (name, filetype, table) in REFERENCES.items():
        write_reference(refdir / name, filetype, table)
    return root / "crds"


def write_reference(path: Path, filetype: str | None, table: bool, **primary: object) -> Path:
    head = {"INSTRUME": "WFC3", "DETECTOR": "UVIS", "FILTER": "F606W", "CCDGAIN": 1.5, "CCDAMP": "ABCD",
            "PEDIGREE": "INFLIGHT 01/01/2010 01/01/2011", "USEAFTER": "Jan 01 2009 00:00:00"}
    if filetype and not table:
        head["FILETYPE"] = filetype
    head.update(primary)
    hdu0 = fits.PrimaryHDU()
    for key, value in head.items():
        hdu0.header[key] = value
    if table:
        ext = fits.BinTableHDU.from_columns([fits.Column(name="CCDCHIP", format="J", array=np.array([1, 2]))])
        if filetype:
            ext.header["FILETYPE"] = filetype
    else:
        ext = fits.ImageHDU(np.zeros((4, 4), np.float32), name="SCI")
        ext.header["CCDCHIP"] = 2
        ext.header["BINAXIS1"] = ext.header["BINAXIS2"] = 1
    fits.HDUList([hdu0, ext]).writeto(path, overwrite=True)
    return path


def raw_primary() -> dict[str, object]:
    head: dict[str, object] = {
        "NEXTEND": 3, "ROOTNAME": ROOT, "INSTRUME": "WFC3", "DETECTOR": "UVIS", "FILTER": "F606W",
        "EXPTIME": 100.0, "EXPSTART": 56000.0, "EXPEND": 56000.0 + 110.0 / 86400.0, "SUBARRAY": True,
        "CCDAMP": "C", "CCDGAIN": 1.5, "FLASHSTA": "NONE", "DATE-OBS": "2012-03-14", "TIME-OBS": "00:00:00",
    }
    for switch in ("DQICORR", "BLEVCORR", "BIASCORR", "DARKCORR", "FLATCORR", "PHOTCORR"):
        head[switch] = "PERFORM"
    for switch in ("ATODCORR", "FLSHCORR", "CRCORR", "SHADCORR", "PCTECORR", "RPTCORR"):
        head[switch] = "OMIT"
    for keyword, (name, _ft, _table) in REFERENCES.items():
        head[keyword] = f"iref${name}"
    head.update({"BPIXTAB": "N/A", "DFLTFILE": "N/A", "LFLTFILE": "N/A"})
    return head


def write_raw(directory: Path, primary: dict[str, object] | None = None,
              sci: dict[str, object] | None = None, drop: tuple[str, ...] = (), root: str = ROOT) -> Path:
    """A subarray UVIS raw with archive-style empty ERR/DQ; ``primary``/``sci`` override keywords
    (None deletes), ``drop`` removes primary keywords."""
    head = raw_primary()
    head["ROOTNAME"] = root
    head.update(primary or {})
    hdu0 = fits.PrimaryHDU()
    for key, value in head.items():
        if value is not None and key not in drop:
            hdu0.header[key] = value
    data = np.full((NY, NX), 2500, np.uint16)
    sci_hdu = fits.ImageHDU(data, name="SCI", ver=1)
    sci_head = {"CCDCHIP": 2, "LTV1": -1000.0, "LTV2": -200.0, "BINAXIS1": 1, "BINAXIS2": 1, "BUNIT": "COUNTS"}
    sci_head.update(sci or {})
    for key, value in sci_head.items():
        if value is not None:
            sci_hdu.header[key] = value
    empties = []
    for name in ("ERR", "DQ"):
        hdu = fits.ImageHDU(name=name, ver=1)
        hdu.header.update({"NPIX1": NX, "NPIX2": NY, "PIXVALUE": 0.0})
        empties.append(hdu)
    path = directory / f"{root}_raw.fits"
    fits.HDUList([hdu0, sci_hdu, *empties]).writeto(path, overwrite=True)
    return path


def write_flt(directory: Path, *, primary: dict[str, object] | None = None, sci: dict[str, object] | None = None,
              sci_data: np.ndarray | None = None, dq_data: np.ndarray | None = None,
              drop_extensions: tuple[str, ...] = (), err_shape: tuple[int, int] | None = None,
              filename: str = f"{ROOT}_flt.fits") -> Path:
    """A calibrated subarray UVIS ``_flt`` that passes every AC rule unless told otherwise."""
    head = raw_primary()
    for switch in ("DQICORR", "BLEVCORR", "BIASCORR", "DARKCORR", "FLATCORR", "PHOTCORR"):
        head[switch] = "COMPLETE"
    head.update({"CAL_VER": "owlpipe builtin 0.1", "CRDS_CTX": "hst_0001.pmap", "PHOTFLAM": 1.1e-19,
                 "PHOTZPT": -21.1, "PHTFLAM1": 1.1e-19, "PHTFLAM2": 1.12e-19, "SDQFLAGS": 31743})
    head.update(primary or {})
    hdu0 = fits.PrimaryHDU()
    for key, value in head.items():
        if value is not None:
            hdu0.header[key] = value
    sci_arr = sci_data if sci_data is not None else np.full((NY, NX), 10.0, np.float32)
    dq_arr = dq_data if dq_data is not None else np.zeros((NY, NX), np.int16)
    err_arr = np.ones(err_shape or (NY, NX), np.float32)
    sci_head = {"CCDCHIP": 2, "BUNIT": "ELECTRONS", "SDQFLAGS": 31743, "PHOTMODE": "WFC3 UVIS2 F606W MJD#56000.0000",
                "PHOTFLAM": 1.1e-19, "PHOTZPT": -21.1, "PHOTPLAM": 5887.0, "PHOTBW": 660.0, "PHTFLAM2": 1.12e-19,
                "PHOTFNU": 1.2e-7}
    sci_head.update(sci or {})
    hdus = [hdu0]
    for name, arr in (("SCI", sci_arr), ("ERR", err_arr), ("DQ", dq_arr)):
        if name in drop_extensions:
            continue
        hdu = fits.ImageHDU(arr, name=name, ver=1)
        if name in ("SCI", "ERR"):
            hdu.header["BUNIT"] = sci_head["BUNIT"]
        if name == "SCI":
            for key, value in sci_head.items():
                if value is not None:
                    hdu.header[key] = value
        hdus.append(hdu)
    hdu0.header["NEXTEND"] = len(hdus) - 1
    path = directory / filename
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path
