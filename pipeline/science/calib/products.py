"""Writing calibrated products (``_flt``, ``_crj``, intermediates) with the record of processing.

Every product's primary header gets the switches as they ended (PERFORM -> COMPLETE), the
keywords the steps computed, and the provenance keywords::

    CAL_VER   engine version string, e.g. 'owlpipe-calib 0.1.0 (builtin)'
    CAL_ENG   engine that produced the file: builtin | hstcal | calcos
    OPUS_VER  pipeline version, e.g. 'OWLPIPE 0.1.0'
    CSYS_VER  calibration system version, e.g. 'owlpipe-0.1.0-py3.11'
    PROCTIME  processing time (MJD, UTC)

Writes are atomic (temporary name, fsync, rename); the pixels go out through :mod:`.fitswrite`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.science.calib.fitswrite import write_file
from pipeline.science.calib.imageio import Exposure

#: Keywords that describe how raw pixels were stored, which must not survive into float products, and
#: the ones hstio reserves (DATAMIN/DATAMAX: never written into a calwf3/calacs product).
_STORAGE_KEYS = ("BZERO", "BSCALE", "BLANK", "NPIX1", "NPIX2", "PIXVALUE", "CHECKSUM", "DATASUM", "DATAMIN", "DATAMAX")


def owlpipe_version() -> str:
    try:
        return metadata.version("owlpipe")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def engine_version(engine: str) -> str:
    return f"owlpipe-calib {owlpipe_version()} ({engine})"


def mjd_now() -> float:
    return time.time() / 86400.0 + 40587.0


def provenance(engine: str) -> dict[str, tuple[object, str]]:
    """The record-of-processing keywords every calibrated product carries."""
    v = owlpipe_version()
    return {
        "CAL_VER": (engine_version(engine), "calibration engine version"),
        "CAL_ENG": (engine, "calibration engine: builtin, hstcal or calcos"),
        "OPUS_VER": (f"OWLPIPE {v}", "pipeline (OPUS-equivalent) version"),
        "CSYS_VER": (f"owlpipe-{v}-py{sys.version_info.major}.{sys.version_info.minor}",
                     "calibration system version"),
        "PROCTIME": (round(mjd_now(), 8), "processing time (MJD)"),
    }


def stamp(header: fits.Header, engine: str) -> None:
    for key, (value, comment) in provenance(engine).items():
        header[key] = (value, comment)


def _clean(header: fits.Header) -> fits.Header:
    out = header.copy()
    for key in _STORAGE_KEYS:
        out.remove(key, ignore_missing=True, remove_all=True)
    return out


def product_primary(raw_primary: fits.Header, *, switches: Mapping[str, str], primary_updates: Mapping[str, object],
                    engine: str, filename: str, nextend: int) -> fits.Header:
    """A product's primary header: the input's without storage keywords, switches (OMIT only
    where the input had the switch), computed keywords, FILENAME, NEXTEND and provenance."""
    primary = _clean(raw_primary)
    for key in ("NAXIS1", "NAXIS2"):
        primary.remove(key, ignore_missing=True)
    primary["NAXIS"] = 0
    for name, value in switches.items():
        if name in primary or value != "OMIT":
            primary[name] = value
    for key, value in primary_updates.items():
        primary[key] = value
    primary["FILENAME"] = filename
    primary["NEXTEND"] = nextend
    stamp(primary, engine)
    return primary


def build_hdulist(exposure: Exposure, *, switches: Mapping[str, str], primary_updates: Mapping[str, object],
                  engine: str, filename: str) -> fits.HDUList:
    primary = product_primary(exposure.primary, switches=switches, primary_updates=primary_updates, engine=engine,
                              filename=filename, nextend=3 * len(exposure.imsets))
    hdus: list[fits.hdu.base.ExtensionHDU | fits.PrimaryHDU] = [fits.PrimaryHDU(header=primary)]
    for im in exposure.imsets:
        for extname, data, hdr in (("SCI", im.sci, im.sci_header), ("ERR", im.err, im.err_header),
                                   ("DQ", im.dq.view(np.int16), im.dq_header)):
            h = _clean(hdr)
            h["EXTNAME"], h["EXTVER"] = extname, im.extver
            hdus.append(fits.ImageHDU(data=data, header=h))
    return fits.HDUList(hdus)


def write_product(exposure: Exposure, path: Path, *, switches: Mapping[str, str],
                  primary_updates: Mapping[str, object], engine: str = "builtin", workers: int | None = None) -> Path:
    """The product, written atomically by ``workers`` threads (None: :func:`~.fitswrite.write_file`'s default)."""
    hdul = build_hdulist(exposure, switches=switches, primary_updates=primary_updates, engine=engine,
                         filename=path.name)
    return write_file(hdul, path, workers)
