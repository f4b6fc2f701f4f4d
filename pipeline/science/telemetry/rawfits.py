"""Build ``_raw.fits`` and ``_spt.fits`` from a decoded pod, the way generic conversion does.

The pod supplies what the spacecraft knew (keywords, pixels, the engineering snapshot); the
ground adds what it decides: calibration switches and header defaults from
``config/instruments/<instrument>.toml``, association keywords, file keywords. ERR and DQ are
written as archive raws have them: NAXIS=0 extensions with NPIX1/NPIX2/PIXVALUE.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
from astropy.io import fits

from pipeline.core.errors import BadInput, Unsupported
from pipeline.science.telemetry.decode import DecodedPod

#: SCI WCS keywords repeated in the ERR and DQ headers of archive raw files.
WCS_KEYWORDS = (
    "WCSAXES", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CTYPE1", "CTYPE2", "CD1_1", "CD1_2", "CD2_1",
    "CD2_2", "LTV1", "LTV2", "LTM1_1", "LTM2_2", "ORIENTAT", "RA_APER", "DEC_APER", "PA_APER", "VAFACTOR",
)
#: Engineering snapshot fields → spt UDL keywords (name, comment).
ENGINEERING_KEYWORDS = {
    "NROWS": ("NROWS", "rows read out on board"),
    "NCOLS": ("NCOLS", "columns read out on board"),
    "PIXCRC": ("PIXCRC", "on-board CRC-32 of the chip's pixels"),
    "NSATPIX": ("NSATPIX", "on-board count of pixels at 65535 DN"),
    "PIXMIN": ("PIXMIN", "on-board minimum pixel value (DN)"),
    "PIXMAX": ("PIXMAX", "on-board maximum pixel value (DN)"),
    "PIXMEAN": ("PIXMEAN", "on-board mean pixel value (DN)"),
}
#: Detectors read out non-destructively (MULTIACCUM): every read is a SCI extension of the pod and an
#: imset SCI, ERR, DQ, SAMP, TIME of the raw (EXTVER 1 = the last read).
MULTIACCUM_DETECTORS = frozenset({"IR"})
#: Association types (pipeline.core.asntable.ASN_KINDS) whose members are combined by cosmic-ray rejection.
CR_COMBINED_TYPES = frozenset({"CR-SPLIT", "REPEAT"})


def opus_version() -> str:
    try:
        return f"owlpipe {version('owlpipe')}"
    except PackageNotFoundError:
        return "owlpipe"


def _file_keywords(header: fits.Header, filename: str, filetype: str, nextend: int) -> None:
    header["NEXTEND"] = (nextend, "Number of standard extensions")
    header["DATE"] = (time.strftime("%Y-%m-%d", time.gmtime()), "date this file was written (yyyy-mm-dd)")
    header["FILENAME"] = (filename, "name of file")
    header["FILETYPE"] = (filetype, "type of data found in data file")


def calibration_switches(instrument_defaults: Mapping[str, Any], instrument: str, detector: str,
                         asn_type: str | None) -> dict[str, str]:
    """The switch values for one exposure: detector defaults, then image combination for associations.

    CR-SPLIT members get ``CRCORR = PERFORM``; REPEAT members get ``RPTCORR = PERFORM`` where the
    instrument has that switch (ACS), else ``CRCORR``: real CR-SPLIT raws keep ``RPTCORR = OMIT``.
    """
    per_detector = instrument_defaults.get("switches", {})
    if detector not in per_detector:
        known = ", ".join(sorted(per_detector)) or "none"
        raise Unsupported(f"no calibration switch defaults for {instrument}/{detector} in "
                          f"config/instruments (detectors configured: {known})", keyword="DETECTOR")
    switches = {k: str(v) for k, v in per_detector[detector].items()}
    if asn_type in CR_COMBINED_TYPES:
        key = "RPTCORR" if asn_type == "REPEAT" and "RPTCORR" in switches else "CRCORR"
        if key in switches:
            switches[key] = "PERFORM"
    return switches


def constant_hdu(extname: str, chip: int, sci: fits.Header, shape: tuple[int, int],
                 pixvalue: float | int, bunit: str) -> fits.ImageHDU:
    """An ERR, DQ, SAMP or TIME extension laid out as in archive raws: identity, constant-array
    keywords, WCS (the simulator writes its raws with this too, so a raw survives its pod intact)."""
    h = fits.Header()
    h["INHERIT"] = (True, "inherit the primary header")
    h["EXTNAME"] = (extname, "extension name")
    h["EXTVER"] = (chip, "extension version number")
    for key in ("ROOTNAME", "EXPNAME"):
        if key in sci:
            h.append(_same_card(sci, key), end=True)
    h["BUNIT"] = (bunit, "brightness units")
    h["NPIX1"] = (shape[1], "length of constant array axis 1")
    h["NPIX2"] = (shape[0], "length of constant array axis 2")
    h["PIXVALUE"] = (pixvalue, "values of pixels in constant array")
    wcs = [key for key in WCS_KEYWORDS if key in sci]
    if wcs:
        h.append(fits.Card("", ""), end=True)
        h.append(fits.Card("", "/ World Coordinate System and Related Parameters"), end=True)
        h.append(fits.Card("", ""), end=True)
        for key in wcs:
            h.append(_same_card(sci, key), end=True)
    return fits.ImageHDU(header=h)


def _same_card(header: fits.Header, key: str) -> fits.Card:
    """A copy of a card with its text untouched (re-formatting a float could change its digits)."""
    return fits.Card.fromstring(header.cards[key].image)


def _place_switches(header: fits.Header, switches: Mapping[str, str]) -> None:
    """Set the switches where archive raws keep them: after ``WRTERR`` in the switch group, in order."""
    anchor = "WRTERR" if "WRTERR" in header else None
    for key, value in switches.items():
        if key in header:
            header[key] = value
        elif anchor is not None:
            header.insert(anchor, (key, value, "calibration switch"), after=True)
        else:
            header[key] = (value, "calibration switch")
        anchor = key


def raw_hdulist(decoded: DecodedPod, *, filename: str, switches: Mapping[str, str],
                header_defaults: Mapping[str, Any], asn_keywords: Mapping[str, str]) -> fits.HDUList:
    """Primary + (SCI, ERR, DQ) per chip, in the chip order the spacecraft sent (EXTVER); for a
    MULTIACCUM exposure (SCI, ERR, DQ, SAMP, TIME) per read."""
    primary = fits.PrimaryHDU(header=decoded.primary.copy())
    h = primary.header
    for key, value in header_defaults.items():
        if key not in h:
            h[key] = value
    multiaccum = is_multiaccum(h)
    _file_keywords(h, filename, "SCI", (5 if multiaccum else 3) * len(decoded.chips))
    h["OPUS_VER"] = (opus_version(), "data processing software system version")
    _place_switches(h, switches)
    for key, value in asn_keywords.items():
        h[key] = value
    hdus: list[fits.PrimaryHDU | fits.ImageHDU] = [primary]
    for chip, data in decoded.chips.items():
        sci = fits.ImageHDU(data.pixels, header=data.header.copy(), name="SCI", ver=chip)
        sci.header.setdefault("INHERIT", True)
        sci.header.setdefault("BUNIT", "COUNTS")
        shape = data.pixels.shape
        hdus += [sci, *imset_companions(chip, data.header, shape, multiaccum)]
    return fits.HDUList(hdus)


def is_multiaccum(primary: fits.Header) -> bool:
    """A WFC3/IR-style exposure: one SCI extension per non-destructive read."""
    return str(primary.get("DETECTOR", "")).strip().upper() in MULTIACCUM_DETECTORS


def imset_companions(chip: int, sci: fits.Header, shape: tuple[int, int],
                     multiaccum: bool) -> list[fits.ImageHDU]:
    """The constant extensions after one SCI: ERR and DQ, and for a MULTIACCUM read also SAMP (its
    read number, ``SAMPNUM``) and TIME (its time since the reset, ``SAMPTIME``), which calwf3 reads."""
    hdus = [constant_hdu("ERR", chip, sci, shape, 0.0, "COUNTS"), constant_hdu("DQ", chip, sci, shape, 0, "UNITLESS")]
    if multiaccum:
        for key in ("SAMPNUM", "SAMPTIME"):
            if key not in sci:
                raise BadInput(f"SCI,{chip} of a MULTIACCUM exposure has no {key}", keyword=key)
        hdus += [constant_hdu("SAMP", chip, sci, shape, int(sci["SAMPNUM"]), "UNITLESS"),
                 constant_hdu("TIME", chip, sci, shape, float(sci["SAMPTIME"]), "SECONDS")]
    return hdus


def spt_hdulist(decoded: DecodedPod, *, filename: str) -> fits.HDUList:
    """The support file: standard-header-packet keywords and one UDL extension per chip; WFC3 follows
    each UDL with a header-only SNAP1 of the same EXTVER, the pairs calwf3's ``mkspt.c`` copies into a
    CR-SPLIT's combined spt (it reads NEXTEND/2 pairs and crashes on a missing SNAP1)."""
    primary = fits.PrimaryHDU(header=decoded.support.copy())
    h = primary.header
    h.setdefault("ROOTNAME", decoded.rootname)
    h.setdefault("INSTRUME", decoded.pod.instrument)
    snapshots = decoded.pod.instrument.lower() == "wfc3"
    hdus: list[fits.PrimaryHDU | fits.ImageHDU] = [primary]
    for chip, data in decoded.chips.items():
        udl = fits.ImageHDU(data.words.view(np.int16), name="UDL", ver=chip)
        udl.header["INHERIT"] = True
        udl.header["ROOTNAME"] = decoded.rootname
        for field, (key, comment) in ENGINEERING_KEYWORDS.items():
            udl.header[key] = (data.engineering[field], comment)
        hdus.append(udl)
        if snapshots:
            snap = fits.ImageHDU(name="SNAP1", ver=chip)
            snap.header["INHERIT"] = True
            snap.header["ROOTNAME"] = decoded.rootname
            hdus.append(snap)
    _file_keywords(h, filename, "SPT", len(hdus) - 1)
    return fits.HDUList(hdus)


def check_identity(decoded: DecodedPod, dataset: str, instrument: str) -> None:
    """The pod must be the exposure the pipeline asked for, from the instrument its name implies."""
    inst = str(decoded.primary.get("INSTRUME", "")).strip().lower()
    if decoded.rootname != dataset:
        raise BadInput(f"pod for {dataset} holds exposure {decoded.rootname}", keyword="ROOTNAME")
    if inst != instrument:
        raise BadInput(f"{dataset}: INSTRUME {inst.upper() or '(missing)'} does not match the "
                       f"instrument of its name ({instrument.upper()})", keyword="INSTRUME")
