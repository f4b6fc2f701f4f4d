"""Writing ``_ima`` (every read, newest first, reference pixels kept) and ``_flt`` (the fitted
count rate cut to the light-sensitive region), in calwf3's layout."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.science.calib.fitswrite import write_file
from pipeline.science.calib.ir.ramp import Ramp
from pipeline.science.calib.ir.reftables import IRDetector
from pipeline.science.calib.products import _clean, product_primary
from pipeline.science.calib.steps.stats import image_stats

#: hstio's default SDQFLAGS.
DEFAULT_SDQFLAGS = 65535


def _primary(ramp: Ramp, switches: Mapping[str, str], updates: Mapping[str, object], filename: str,
             nimsets: int) -> fits.PrimaryHDU:
    return fits.PrimaryHDU(header=product_primary(ramp.primary, switches=switches, primary_updates=updates,
                                                  engine="builtin", filename=filename, nextend=5 * nimsets))


def _hdu(extname: str, extver: int, data: np.ndarray, header: fits.Header, *, constant_ok: bool) -> fits.ImageHDU:
    """An extension; a constant SAMP/TIME array is written as NAXIS=0 with NPIX1/NPIX2/PIXVALUE."""
    hdr = _clean(header)
    hdr["EXTNAME"], hdr["EXTVER"] = extname, extver
    if constant_ok and data.size and np.all(data == data.flat[0]):
        hdu = fits.ImageHDU(header=hdr)
        value = data.flat[0]
        hdu.header["NPIX1"], hdu.header["NPIX2"] = data.shape[1], data.shape[0]
        hdu.header["PIXVALUE"] = int(value) if data.dtype.kind in "iu" else float(value)
        return hdu
    if data.dtype == np.uint16:
        data = data.view(np.int16)
    return fits.ImageHDU(data=data, header=hdr)


def _imset(extver: int, arrays: tuple[np.ndarray, ...], headers: tuple[fits.Header, ...],
           sci_keywords: Mapping[str, object], region: tuple[slice, slice]) -> list[fits.ImageHDU]:
    sci, err, dq, samp, time = arrays
    sci_kw, err_kw = image_stats(sci[region], err[region], dq[region],
                                 int(headers[0].get("SDQFLAGS", DEFAULT_SDQFLAGS)) & 0xFFFF)
    # calwf3's IR statistics swap two groups (verified against calwf3.e): the SCI header's SNR*
    # keywords hold the ERR statistics and the ERR header's GOOD* keywords the signal-to-noise ones
    for stat in ("MEAN", "MIN", "MAX"):
        if f"GOOD{stat}" in err_kw:
            sci_kw[f"SNR{stat}"], err_kw[f"GOOD{stat}"] = err_kw[f"GOOD{stat}"], sci_kw[f"SNR{stat}"]
    h_sci, h_err = headers[0].copy(), headers[1].copy()
    h_sci.update(dict(sci_keywords))
    h_sci.update(sci_kw)
    h_err.update(err_kw)
    if "BUNIT" in sci_keywords:
        h_err["BUNIT"] = sci_keywords["BUNIT"]
    # no DATAMIN/DATAMAX: updateHdr computes them, but hstio reserves both and never writes them
    return [_hdu("SCI", extver, sci, h_sci, constant_ok=False), _hdu("ERR", extver, err, h_err, constant_ok=False),
            _hdu("DQ", extver, dq, headers[2], constant_ok=False),
            _hdu("SAMP", extver, samp, headers[3], constant_ok=True),   # hstio: a constant array is a PIXVALUE
            _hdu("TIME", extver, time, headers[4], constant_ok=True)]


def write_ima(ramp: Ramp, det: IRDetector, path: Path, *, switches: Mapping[str, str],
              updates: Mapping[str, object]) -> Path:
    hdus: list[fits.hdu.base.ExtensionHDU | fits.PrimaryHDU] = [
        _primary(ramp, switches, updates, path.name, ramp.nsamp)]
    for extver in range(1, ramp.nsamp + 1):
        k = ramp.nsamp - extver
        hdus.extend(_imset(extver, (ramp.sci[k], ramp.err[k], ramp.dq[k], ramp.samp[k], ramp.time[k]),
                           ramp.headers[k].all(), ramp.keywords[k], det.region))
    return write_file(fits.HDUList(hdus), path)


def write_flt(ramp: Ramp, det: IRDetector, arrays: tuple[np.ndarray, ...], path: Path, *,
              switches: Mapping[str, str], updates: Mapping[str, object]) -> Path:
    """One imset of R cut out of ``arrays`` (SCI, ERR, DQ, SAMP, TIME) with the last read's headers,
    LTV shifted by the trim."""
    rr = det.region
    last = ramp.nsamp - 1
    headers = tuple(h.copy() for h in ramp.headers[last].all())
    for h in headers:
        h["LTV1"] = float(h.get("LTV1", 0.0)) - det.trimx[0]
        h["LTV2"] = float(h.get("LTV2", 0.0)) - det.trimy[0]
        for key, d in (("CRPIX1", det.trimx[0]), ("CRPIX2", det.trimy[0])):
            if key in h:
                h[key] = float(h[key]) - d
    cut = tuple(np.ascontiguousarray(a[rr]) for a in arrays)
    full = (slice(None), slice(None))
    hdus: list[fits.hdu.base.ExtensionHDU | fits.PrimaryHDU] = [_primary(ramp, switches, updates, path.name, 1)]
    hdus.extend(_imset(1, cut, headers, ramp.keywords[last], full))
    return write_file(fits.HDUList(hdus), path)
