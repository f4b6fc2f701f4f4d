"""Raw-file headers of simulated WFC3/IR MULTIACCUM exposures, laid out like archive IR raws.

The primary header follows the groups of :mod:`pipeline.simulate.headers` (UVIS raws) with the IR
readout keywords (SAMP_SEQ, NSAMP, SAMPZERO, SUBTYPE); each read's SCI header carries SAMPNUM,
SAMPTIME, DELTATIM and a TAN WCS. ERR, DQ, SAMP and TIME are the constant extensions 2FITS writes
(:func:`pipeline.science.telemetry.rawfits.imset_companions`), so the raw made here is the raw 2FITS
rebuilds from the exposure's pod. Switches come from ``config/instruments/wfc3.toml`` ``[switches.IR]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from pipeline.core.config import load_instrument_defaults
from pipeline.science.telemetry.rawfits import calibration_switches, imset_companions
from pipeline.simulate.headers import OPUS_VER, PROCESSING_DELAY, _group, _put, _put_wcs, date_time, pi_of, put_pattern

#: IR plate scale (arcsec/pixel), rounded from the real 0.1355 x 0.1211 (the simulator's WCS is square).
PIXEL_SCALE = 0.128
#: ORIENTAT = PA_V3 + this (the IR detector's y axis relative to V3), degrees.
V3_TO_Y = -44.67


@dataclass(frozen=True)
class Visit:
    """Where and for whom an exposure is taken; ``shift`` is the dither offset in pixels."""

    ra_targ: float = 150.1
    dec_targ: float = 2.2
    pa_v3: float = 120.0
    targname: str = "IR-FIELD"
    proposid: int = 90001
    linenum: str = "01.001"
    asn_id: str | None = None
    asn_type: str | None = None
    asn_memtype: str | None = None
    pattern: tuple[str, int, int] = ("NONE", 0, 0)
    shift: tuple[float, float] = (0.0, 0.0)


def ir_switches(asn_type: str | None) -> dict[str, str]:
    """The IR calibration switches 2FITS assigns to an exposure of this association type."""
    return calibration_switches(load_instrument_defaults().get("wfc3", {}), "wfc3", "IR", asn_type)


def primary_header(root: str, visit: Visit, *, filt: str, aperture: str, subtype: str, samp_seq: str,
                   nsamp: int, sampzero: float, ccdgain: float, expstart: float, exptime: float) -> fits.Header:
    """Primary header of an IR raw (reference keywords are the RF stage's business)."""
    expend = expstart + exptime / 86400.0
    date_obs, time_obs = date_time(expstart)
    h = fits.Header()
    _put(h, [("NEXTEND", 5 * nsamp, "Number of standard extensions"),
             ("GROUPS", False, "image is in group format"),
             ("DATE", date_time(expend + PROCESSING_DELAY)[0], "date this file was written (yyyy-mm-dd)"),
             ("FILENAME", f"{root}_raw.fits", "name of file"),
             ("FILETYPE", "SCI", "type of data found in data file"),
             ("TELESCOP", "HST", "telescope used to acquire data"),
             ("INSTRUME", "WFC3", "identifier for instrument used to acquire data"),
             ("EQUINOX", 2000.0, "equinox of celestial coord. system")])
    _group(h, "DATA DESCRIPTION KEYWORDS")
    _put(h, [("ROOTNAME", root, "rootname of the observation set"),
             ("IMAGETYP", "EXT", "type of exposure identifier"),
             ("PRIMESI", "WFC3", "instrument designated as prime")])
    _group(h, "TARGET INFORMATION")
    _put(h, [("TARGNAME", visit.targname, "proposer's target name"),
             ("RA_TARG", visit.ra_targ, "right ascension of the target (deg) (J2000)"),
             ("DEC_TARG", visit.dec_targ, "declination of the target (deg) (J2000)")])
    _group(h, "PROPOSAL INFORMATION")
    first, last = pi_of(visit.proposid)
    _put(h, [("PROPOSID", visit.proposid, "PEP proposal identifier"),
             ("LINENUM", visit.linenum, "proposal logsheet line number"),
             ("PR_INV_L", last, "last name of principal investigator"),
             ("PR_INV_F", first, "first name of principal investigator"),
             ("PR_INV_M", "", "middle name / initial of principal investigat")])
    _group(h, "EXPOSURE INFORMATION")
    _put(h, [("DATE-OBS", date_obs, "UT date of start of observation (yyyy-mm-dd)"),
             ("TIME-OBS", time_obs, "UT time of start of observation (hh:mm:ss)"),
             ("EXPSTART", expstart, "exposure start time (Modified Julian Date)"),
             ("EXPEND", expend, "exposure end time (Modified Julian Date)"),
             ("EXPTIME", exptime, "exposure duration (seconds)--calculated"),
             ("EXPFLAG", "NORMAL", "Exposure interruption indicator")])
    _group(h, "POINTING INFORMATION")
    _put(h, [("PA_V3", visit.pa_v3, "position angle of V3-axis of HST (deg)")])
    _group(h, "DIAGNOSTIC KEYWORDS")
    _put(h, [("OPUS_VER", OPUS_VER, "data processing software system version"),
             ("CAL_VER", "", "CALWF3 code version")])
    _group(h, "SCIENCE INSTRUMENT CONFIGURATION")
    _put(h, [("OBSTYPE", "IMAGING", "observation type - imaging or spectroscopic"),
             ("OBSMODE", "MULTIACCUM", "operating mode"),
             ("NRPTEXP", 1, "number of repeat exposures in set: default 1"),
             ("SUBARRAY", aperture != "IR", "data from a subarray (T) or full frame (F)"),
             ("SUBTYPE", subtype, "Size/type of IR subarray"),
             ("DETECTOR", "IR", "detector in use"),
             ("FILTER", filt, "element selected from filter wheel"),
             ("APERTURE", aperture, "aperture name"),
             ("PROPAPER", aperture, "proposed aperture name"),
             ("SAMP_SEQ", samp_seq, "MultiAccum exposure time sequence name"),
             ("NSAMP", nsamp, "number of MULTIACCUM samples"),
             ("SAMPZERO", round(sampzero + 0.000291, 6), "sample time of the zeroth read (sec)")])
    _group(h, "CALIBRATION SWITCHES: PERFORM, OMIT, COMPLETE, SKIPPED")
    _put(h, [("WRTERR", True, "write out error array extension")])
    _put(h, [(k, v, "calibration switch") for k, v in ir_switches(visit.asn_type).items()])
    put_pattern(h, visit.pattern)
    _group(h, "ENGINEERING PARAMETERS")
    _put(h, [("CCDAMP", "ABCD", "CCD Amplifier Readout Configuration"),
             ("CCDGAIN", ccdgain, "commanded gain of CCD")])
    _group(h, "ASSOCIATION KEYWORDS")
    _put(h, [("ASN_ID", visit.asn_id.upper() if visit.asn_id else "NONE", "unique identifier assigned to association"),
             ("ASN_TAB", f"{visit.asn_id}_asn.fits" if visit.asn_id else "NONE", "name of the association table"),
             ("ASN_MTYP", visit.asn_memtype or "", "Role of the Member in the Association")])
    return h


def tangent_wcs(visit: Visit, size: int) -> WCS:
    """The raw pixels' TAN WCS: the target at the science area's centre, shifted by the dither."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    centre = (size - 1) / 2.0 + 1.0
    w.wcs.crpix = [centre, centre]
    w.wcs.crval = [visit.ra_targ, visit.dec_targ]
    theta = np.radians(visit.pa_v3 + V3_TO_Y)
    scale = PIXEL_SCALE / 3600.0
    w.wcs.cd = scale * np.array([[-np.cos(theta), np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    if visit.shift != (0.0, 0.0):  # the sky the first member saw at pixel p lies at p + shift here
        ra, dec = w.wcs_pix2world([[centre - visit.shift[0], centre - visit.shift[1]]], 1)[0]
        w.wcs.crval = [float(ra), float(dec)]
    return w


def read_header(root: str, extver: int, sampnum: int, samptime: float, deltatim: float, ltv: float,
                wcs: WCS) -> fits.Header:
    """SCI header of one read (EXTVER 1 = the last read)."""
    h = fits.Header()
    _put(h, [("INHERIT", True, "inherit the primary header"),
             ("EXTNAME", "SCI", "extension name"),
             ("EXTVER", extver, "extension version number"),
             ("ROOTNAME", root, "rootname of the observation set"),
             ("EXPNAME", root, "exposure identifier"),
             ("BUNIT", "COUNTS", "brightness units")])
    _group(h, "CCD CHIP IDENTIFICATION")
    _put(h, [("CCDCHIP", 1, "CCD chip (1 or 2)")])
    trimmed = wcs.deepcopy()  # _put_wcs writes CRPIX = given CRPIX + LTV
    trimmed.wcs.crpix = [wcs.wcs.crpix[0] - ltv, wcs.wcs.crpix[1] - ltv]
    orientat = float(np.degrees(np.arctan2(wcs.wcs.cd[0, 1], wcs.wcs.cd[1, 1])))
    _put_wcs(h, trimmed, ltv, ltv, orientat, (float(wcs.wcs.crval[0]), float(wcs.wcs.crval[1])))
    _group(h, "READOUT DEFINITION PARAMETERS")
    _put(h, [("SAMPNUM", sampnum, "MULTIACCUM sample number"),
             ("SAMPTIME", samptime, "total integration time (sec)"),
             ("DELTATIM", deltatim, "integration time of this sample (sec)")])
    _group(h, "IMAGE STATISTICS AND DATA QUALITY FLAGS")
    _put(h, [("SDQFLAGS", 31743, "serious data quality flags")])
    return h


def raw_hdulist(primary: fits.Header, reads: list[np.ndarray], times: list[float], ltv: float,
                wcs: WCS) -> fits.HDUList:
    """Primary + one imset (SCI, ERR, DQ, SAMP, TIME) per read, newest first."""
    n = len(reads)
    root = str(primary["ROOTNAME"])
    hdus: list = [fits.PrimaryHDU(header=primary)]
    for extver in range(1, n + 1):
        k = n - extver
        h = read_header(root, extver, k, times[k], times[k] - times[k - 1] if k else 0.0, ltv, wcs)
        hdus.append(fits.ImageHDU(data=reads[k], header=h))
        hdus += imset_companions(extver, h, reads[k].shape, True)
    return fits.HDUList(hdus)

