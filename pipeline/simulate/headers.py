"""Raw-file headers laid out like archive ``_raw.fits`` files of WFC3/UVIS and ACS/WFC.

Groups and keyword order follow real raws (the ACS/HRC raws in ``realdata`` and the WFC3 headers in
``headers_only_samples``). Reference-file keywords are left out: the RF stage fills them from CRDS.
Calibration switches are the ones 2FITS writes (``pipeline.science.telemetry.rawfits.calibration_switches``
on ``config/instruments/<instrument>.toml``), so a raw made here equals the raw 2FITS makes from its pod.
"""

from __future__ import annotations

from collections.abc import Mapping

from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS

from pipeline.simulate.geometry import ChipReadout, Readout
from pipeline.simulate.photometry import ACS_WHEELS
from pipeline.simulate.spec import ExposureSpec

OPUS_VER = "OWLPIPE SIM 1.0"
#: Days between the end of an exposure and its raw file (fixed, so output is reproducible).
PROCESSING_DELAY = 0.05
#: ACS subarrays whose dark calacs scales with the DARKTIME overhead after Cycle 24 (calacs doDark).
ACS_DARK_SUBARRAYS = frozenset({
    "WFC1A-2K", "WFC1B-2K", "WFC2C-2K", "WFC2D-2K", "WFC1A-1K", "WFC1B-1K", "WFC2C-1K", "WFC2D-1K",
    "WFC1A-512", "WFC1B-512", "WFC2C-512", "WFC2D-512", "WFC1-IRAMPQ", "WFC1-MRAMPQ", "WFC2-ORAMPQ",
    "WFC1-POL0UV", "WFC1-POL0V", "WFC1-POL60UV", "WFC1-POL60V", "WFC1-POL120UV", "WFC1-POL120V", "WFC1-SMFL"})
SM4_MJD, CYCLE24_MJD = 54962.0, 57662.0


#: (first, last) names of simulated principal investigators; each program gets one (archive access, demo).
SIMULATED_PIS = (("Henrietta", "Leavitt"), ("Edwin", "Hubble"), ("Vera", "Rubin"), ("Cecilia", "Payne"),
                 ("Jocelyn", "Bell"), ("Nancy", "Roman"), ("Lyman", "Spitzer"), ("Annie", "Cannon"))


def pi_of(proposid: int) -> tuple[str, str]:
    """The simulated PI of a program (stable per proposal id)."""
    return SIMULATED_PIS[int(proposid) % len(SIMULATED_PIS)]


def _group(header: fits.Header, title: str) -> None:
    header.append(fits.Card("", ""), end=True)
    header.append(fits.Card("", f"/ {title}"), end=True)
    header.append(fits.Card("", ""), end=True)


def put_pattern(header: fits.Header, pattern: tuple[str, int, int]) -> None:
    """The PATTERN KEYWORDS group: pattern name, its number of points, this exposure's position."""
    name, npts, step = pattern
    _group(header, "PATTERN KEYWORDS")
    _put(header, [("PATTERN1", name, "primary pattern type"),
                  ("P1_NPTS", npts, "number of points in primary pattern"),
                  ("PATTSTEP", step, "position number of this point in the pattern")])


def _put(header: fits.Header, cards: list[tuple]) -> None:
    for card in cards:
        header.append(fits.Card(*card), end=True)


def date_time(mjd: float) -> tuple[str, str]:
    """DATE-OBS and TIME-OBS (UT, whole seconds) of an MJD."""
    iso = Time(mjd, format="mjd", scale="utc").isot
    return iso[:10], iso[11:19]


def acs_dark_overhead_applies(readout: Readout, expstart: float) -> bool:
    """calacs adds the CCDTAB DARKTIME overhead to full frames after SM4 and to listed subarrays after Cycle 24."""
    if not readout.subarray:
        return expstart >= SM4_MJD
    return readout.aperture in ACS_DARK_SUBARRAYS and expstart >= CYCLE24_MJD


def cte_corrected(spec: ExposureSpec, switches: Mapping[str, str]) -> bool:
    """Whether the exposure goes through the CTE branch (then its pixels carry CTE trails): UVIS and
    ACS/WFC, full frame or subarray."""
    if str(switches.get("PCTECORR", "OMIT")).upper() != "PERFORM":
        return False
    return spec.instrument == "wfc3" or spec.readout.camera.detector == "WFC"


def primary_header(spec: ExposureSpec, switches: Mapping[str, str]) -> fits.Header:
    """Primary header of a raw file for an :class:`~pipeline.simulate.exposure.ExposureSpec`."""
    ro: Readout = spec.readout
    cam = ro.camera
    date_obs, time_obs = date_time(spec.expstart)
    h = fits.Header()
    _put(h, [
        ("NEXTEND", 3 * len(ro.chips), "Number of standard extensions"),
        ("GROUPS", False, "image is in group format"),
        ("DATE", date_time(spec.expend + PROCESSING_DELAY)[0], "date this file was written (yyyy-mm-dd)"),
        ("FILENAME", f"{spec.rootname}_raw.fits", "name of file"),
        ("FILETYPE", "SCI", "type of data found in data file"),
    ])
    _put(h, [("TELESCOP", "HST", "telescope used to acquire data"),
             ("INSTRUME", cam.instrument, "identifier for instrument used to acquire data"),
             ("EQUINOX", 2000.0, "equinox of celestial coord. system")])
    _group(h, "DATA DESCRIPTION KEYWORDS")
    _put(h, [("ROOTNAME", spec.rootname, "rootname of the observation set"),
             ("IMAGETYP", "EXT", "type of exposure identifier"),
             ("PRIMESI", cam.instrument, "instrument designated as prime")])
    _group(h, "TARGET INFORMATION")
    _put(h, [("TARGNAME", spec.targname, "proposer's target name"),
             ("RA_TARG", spec.pointing.ra_targ, "right ascension of the target (deg) (J2000)"),
             ("DEC_TARG", spec.pointing.dec_targ, "declination of the target (deg) (J2000)")])
    _group(h, "PROPOSAL INFORMATION")
    _put(h, [("PROPOSID", spec.proposid, "PEP proposal identifier"),
             ("LINENUM", spec.linenum, "proposal logsheet line number"),
             ("PR_INV_L", pi_of(spec.proposid)[1], "last name of principal investigator"),
             ("PR_INV_F", pi_of(spec.proposid)[0], "first name of principal investigator"),
             ("PR_INV_M", "", "middle name / initial of principal investigat")])
    _group(h, "EXPOSURE INFORMATION")
    _put(h, [("FGSLOCK", "FINE", "commanded FGS lock (FINE,COARSE,GYROS,UNKNOWN)"),
             ("GYROMODE", "T", "number of gyros scheduled, T=3+OBAD"),
             ("REFFRAME", "ICRS", "guide star catalog version"),
             ("MTFLAG", False, "moving target flag; T if it is a moving target"),
             ("DATE-OBS", date_obs, "UT date of start of observation (yyyy-mm-dd)"),
             ("TIME-OBS", time_obs, "UT time of start of observation (hh:mm:ss)"),
             ("EXPSTART", spec.expstart, "exposure start time (Modified Julian Date)"),
             ("EXPEND", spec.expend, "exposure end time (Modified Julian Date)"),
             ("EXPTIME", spec.exptime, "exposure duration (seconds)--calculated"),
             ("EXPFLAG", "NORMAL", "Exposure interruption indicator"),
             ("QUALCOM1", "", ""), ("QUALCOM2", "", ""), ("QUALCOM3", "", ""), ("QUALITY", "", ""),
             ("DARKTIME", spec.darktime, "fiducial pixel dark time (secs)")])
    _group(h, "POINTING INFORMATION")
    _put(h, [("PA_V3", spec.pointing.pa_v3, "position angle of V3-axis of HST (deg)")])
    _group(h, "TARGET OFFSETS (POSTARGS)")
    _put(h, [("POSTARG1", spec.pointing.postarg[0], "POSTARG in axis 1 direction"),
             ("POSTARG2", spec.pointing.postarg[1], "POSTARG in axis 2 direction")])
    _group(h, "DIAGNOSTIC KEYWORDS")
    _put(h, [("OPUS_VER", OPUS_VER, "data processing software system version"),
             ("CAL_VER", "", f"CAL{'WF3' if cam.instrument == 'WFC3' else 'ACS'} code version"),
             ("PROCTIME", spec.expend + PROCESSING_DELAY, "Pipeline processing time (MJD)")])
    _group(h, "SCIENCE INSTRUMENT CONFIGURATION")
    _put(h, [("OBSTYPE", "IMAGING", "observation type - imaging or spectroscopic"),
             ("OBSMODE", "ACCUM", "operating mode"),
             ("CTEIMAGE", "NONE", "type of Charge Transfer Image, if applicable"),
             ("SCLAMP", "NONE", "lamp status, NONE or name of lamp which is on"),
             ("NRPTEXP", 1, "number of repeat exposures in set: default 1"),
             ("SUBARRAY", ro.subarray, "data from a subarray (T) or full frame (F)"),
             ("DETECTOR", cam.detector, "detector in use")])
    if cam.instrument == "WFC3":
        _put(h, [("FILTER", spec.filter, "element selected from filter wheel")])
    else:
        f1, f2 = ACS_WHEELS[spec.filter]
        _put(h, [("FILTER1", f1, "element selected from filter wheel 1"),
                 ("FW1OFFST", 0, "computed filter wheel offset"),
                 ("FILTER2", f2, "element selected from filter wheel 2"),
                 ("FW1ERROR", False, "filter wheel position error flag"),
                 ("FW2OFFST", 0, "computed filter wheel offset"),
                 ("FW2ERROR", False, "filter wheel position error flag"),
                 ("FWSOFFST", 0, "computed filter wheel offset"),
                 ("FWSERROR", False, "filter wheel position error flag"),
                 ("LRFWAVE", 0.0, "proposed linear ramp filter wavelength")])
    _put(h, [("APERTURE", ro.aperture, "aperture name"),
             ("PROPAPER", ro.aperture, "proposed aperture name"),
             ("DIRIMAGE", "NONE", "direct image for grism or prism exposure"),
             ("CTEDIR", "NONE", "CTE measurement direction: serial or parallel"),
             ("CRSPLIT", spec.crsplit, "number of cosmic ray split exposures")])
    _group(h, "CALIBRATION SWITCHES: PERFORM, OMIT, COMPLETE, SKIPPED")
    _put(h, [("WRTERR", True, "write out error array extension")])
    _put(h, [(key, value, "calibration switch") for key, value in switches.items()])
    if cam.detector == "UVIS":  # as in archive raws, whatever PCTECORR; 0: calwf3 takes the PCTETAB's values
        _group(h, "PIXEL-BASED CTE CORRECTION PARAMETERS")
        _put(h, [("PCTETLEN", 0, "max length of CTE trail"), ("PCTERNOI", 0.0, "read noise amplitude"),
                 ("PCTENFOR", 0, "iterations of the CTE forward model"),
                 ("PCTENPAR", 0, "iterations of the parallel transfer"),
                 ("PCTENSMD", 0, "read noise mitigation algorithm"), ("FIXROCR", 0, "fix readout cosmic rays")])
    if cam.instrument == "ACS":
        if "RPTCORR" not in switches:
            _put(h, [("RPTCORR", "OMIT", "add individual repeat observations")])
        _group(h, "COSMIC RAY REJECTION ALGORITHM PARAMETERS")
        _put(h, [("MEANEXP", 0.0, "reference exposure time for parameters"),
                 ("SCALENSE", 0.0, "multiplicative scale factor applied to noise"),
                 ("INITGUES", "", "initial guess method (MIN or MED)"),
                 ("SKYSUB", "", "sky value subtracted (MODE or NONE)"),
                 ("SKYSUM", 0.0, "sky level from the sum of all constituent image"),
                 ("CRSIGMAS", "", "statistical rejection criteria"),
                 ("CRRADIUS", 0.0, "rejection propagation radius (pixels)"),
                 ("CRTHRESH", 0.0, "rejection propagation threshold"),
                 ("BADINPDQ", 0, "data quality flag bits to reject"),
                 ("REJ_RATE", 0.0, "rate at which pixels are affected by cosmic ray"),
                 ("CRMASK", False, "flag CR-rejected pixels in input files (T/F)")])
    if cam.instrument == "WFC3":
        _group(h, "CHARGE INJECTION PARAMETERS")
        _put(h, [("CHINJECT", "NONE", "Charge Injection Mode")])
    put_pattern(h, spec.pattern)
    _group(h, "POST FLASH PARAMETERS")
    _put(h, [("FLASHDUR", 0.0, "Exposure time in seconds: 0.1 to 409.5"),
             ("FLASHCUR", "OFF", "Post flash current: OFF, LOW, MED, HIGH"),
             ("FLASHSTA", "NOT PERFORMED", "Status: SUCCESSFUL, ABORTED, NOT PERFORMED"),
             ("SHUTRPOS", "A", "Shutter position: A or B")])
    _group(h, "ENGINEERING PARAMETERS")
    _put(h, [("CCDAMP", ro.ccdamp, "CCD Amplifier Readout Configuration"),
             ("CCDGAIN", spec.ccdgain, "commanded gain of CCD")])
    _put(h, [(f"CCDOFST{a}", 3, f"commanded CCD bias offset for amplifier {a}") for a in "ABCD"])
    if cam.instrument == "ACS":
        _put(h, [("JWROTYPE", spec.jwrotype, "CCD readout type")])
    _group(h, "CALIBRATED ENGINEERING PARAMETERS")
    _put(h, [(f"ATODGN{a}", 0.0, f"calibrated gain for amplifier {a}") for a in "ABCD"])
    _put(h, [(f"READNSE{a}", 0.0, f"calibrated read noise for amplifier {a}") for a in "ABCD"])
    _put(h, [(f"BIASLEV{a}", 0.0, f"bias level for amplifier {a}") for a in "ABCD"])
    _group(h, "ASSOCIATION KEYWORDS")
    asn = spec.asn_id.upper() if spec.asn_id else "NONE"
    _put(h, [("ASN_ID", asn, "unique identifier assigned to association"),
             ("ASN_TAB", f"{spec.asn_id}_asn.fits" if spec.asn_id else "NONE", "name of the association table"),
             ("ASN_MTYP", spec.asn_memtype or "", "Role of the Member in the Association")])
    return h


def sci_header(spec: ExposureSpec, part: ChipReadout, wcs: WCS, orientat: float,
               aperture_sky: tuple[float, float]) -> fits.Header:
    """Keywords of a raw SCI extension (the WCS refers to raw pixels: CRPIX = trimmed CRPIX + LTV)."""
    ltv1, ltv2 = part.ltv
    h = fits.Header()
    _put(h, [("INHERIT", True, "inherit the primary header"),
             ("EXTNAME", "SCI", "extension name"),
             ("EXTVER", part.extver, "extension version number"),
             ("ROOTNAME", spec.rootname, "rootname of the observation set"),
             ("EXPNAME", spec.rootname, "exposure identifier"),
             ("BUNIT", "COUNTS", "brightness units")])
    _group(h, "CCD CHIP IDENTIFICATION")
    _put(h, [("CCDCHIP", part.chip, "CCD chip (1 or 2)")])
    _put_wcs(h, wcs, ltv1, ltv2, orientat, aperture_sky)
    _group(h, "READOUT DEFINITION PARAMETERS")
    (c1, c2), (s1, s2) = part.centera, part.sizaxis
    _put(h, [("CENTERA1", c1, "subarray axis1 center pt in unbinned dect. pix"),
             ("CENTERA2", c2, "subarray axis2 center pt in unbinned dect. pix"),
             ("SIZAXIS1", s1, "subarray axis1 size in unbinned detector pixels"),
             ("SIZAXIS2", s2, "subarray axis2 size in unbinned detector pixels"),
             ("BINAXIS1", 1, "axis1 data bin size in unbinned detector pixels"),
             ("BINAXIS2", 1, "axis2 data bin size in unbinned detector pixels")])
    _group(h, "PHOTOMETRY KEYWORDS")
    _put(h, [("PHOTMODE", "", "observation con"), ("PHOTFLAM", 0.0, "inverse sensitivity, ergs/cm2/Ang/electron"),
             ("PHOTZPT", 0.0, "ST magnitude zero point"), ("PHOTPLAM", 0.0, "Pivot wavelength (Angstroms)"),
             ("PHOTBW", 0.0, "RMS bandwidth of filter plus detector")])
    _group(h, "REPEATED EXPOSURES INFO")
    _put(h, [("NCOMBINE", 1, "number of image sets combined during CR rejecti")])
    _group(h, "DATA PACKET INFORMATION")
    _put(h, [("FILLCNT", 0, "number of segments containing fill"),
             ("ERRCNT", 0, "number of segments containing errors"),
             ("PODPSFF", False, "podps fill present (T/F)"),
             ("STDCFFF", False, "science telemetry fill data present (T=1/F=0)"),
             ("STDCFFP", "0x5569", "science telemetry fill pattern (hex)")])
    _group(h, "IMAGE STATISTICS AND DATA QUALITY FLAGS")
    _put(h, [("NGOODPIX", 0, "number of good pixels"), ("SDQFLAGS", 31743, "serious data quality flags"),
             ("GOODMIN", 0.0, "minimum value of good pixels"), ("GOODMAX", 0.0, "maximum value of good pixels"),
             ("GOODMEAN", 0.0, "mean value of good pixels"), ("SOFTERRS", 0, "number of soft error pixels (DQF=1)"),
             ("SNRMIN", 0.0, "minimum signal to noise of good pixels"),
             ("SNRMAX", 0.0, "maximum signal to noise of good pixels"),
             ("SNRMEAN", 0.0, "mean value of signal to noise of good pixels"),
             ("MEANDARK", 0.0, "average of the dark values subtracted"),
             ("MEANBLEV", 0.0, "average of all bias levels subtracted"),
             ("MEANFLSH", 0.0, "Mean number of counts in post flash exposure")])
    return h


def _put_wcs(h: fits.Header, wcs: WCS, ltv1: float, ltv2: float, orientat: float,
             aperture_sky: tuple[float, float]) -> None:
    _group(h, "World Coordinate System and Related Parameters")
    cd = wcs.wcs.cd
    crpix1, crpix2 = wcs.wcs.crpix
    _put(h, [("WCSAXES", 2, "number of World Coordinate System axes"),
             ("CRPIX1", float(crpix1 + ltv1), "x-coordinate of reference pixel"),
             ("CRPIX2", float(crpix2 + ltv2), "y-coordinate of reference pixel"),
             ("CRVAL1", float(wcs.wcs.crval[0]), "first axis value at reference pixel"),
             ("CRVAL2", float(wcs.wcs.crval[1]), "second axis value at reference pixel"),
             ("CTYPE1", "RA---TAN", "the coordinate type for the first axis"),
             ("CTYPE2", "DEC--TAN", "the coordinate type for the second axis"),
             ("CD1_1", float(cd[0, 0]), "partial of first axis coordinate w.r.t. x"),
             ("CD1_2", float(cd[0, 1]), "partial of first axis coordinate w.r.t. y"),
             ("CD2_1", float(cd[1, 0]), "partial of second axis coordinate w.r.t. x"),
             ("CD2_2", float(cd[1, 1]), "partial of second axis coordinate w.r.t. y"),
             ("LTV1", ltv1, "offset in X to subsection start"),
             ("LTV2", ltv2, "offset in Y to subsection start"),
             ("LTM1_1", 1.0, "reciprocal of sampling rate in X"),
             ("LTM2_2", 1.0, "reciprocal of sampling rate in Y"),
             ("ORIENTAT", orientat, "position angle of image y axis (deg. e of n)"),
             ("RA_APER", aperture_sky[0], "RA of aperture reference position"),
             ("DEC_APER", aperture_sky[1], "Declination of aperture reference position"),
             ("PA_APER", orientat, "Position Angle of reference aperture center (de"),
             ("VAFACTOR", 1.0, "velocity aberration plate scale factor")])


def constant_header(sci: fits.Header, extname: str, shape: tuple[int, int], bunit: str) -> fits.Header:
    """ERR or DQ of an archive raw: no data, NPIX1/NPIX2/PIXVALUE, the SCI WCS repeated."""
    h = fits.Header()
    _put(h, [("INHERIT", True, "inherit the primary header"),
             ("EXTNAME", extname, "extension name"),
             ("EXTVER", sci["EXTVER"], "extension version number"),
             ("ROOTNAME", sci["ROOTNAME"], "rootname of the observation set"),
             ("EXPNAME", sci["EXPNAME"], "exposure identifier"),
             ("BUNIT", bunit, "brightness units"),
             ("NPIX1", shape[1], "length of constant array axis 1"),
             ("NPIX2", shape[0], "length of constant array axis 2"),
             ("PIXVALUE", 0 if extname == "DQ" else 0.0, "values of pixels in constant array")])
    _group(h, "World Coordinate System and Related Parameters")
    for key in ("WCSAXES", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CTYPE1", "CTYPE2", "CD1_1", "CD1_2",
                "CD2_1", "CD2_2", "LTV1", "LTV2", "LTM1_1", "LTM2_2", "ORIENTAT", "RA_APER", "DEC_APER",
                "PA_APER", "VAFACTOR"):
        h.append(fits.Card(key, sci[key], sci.comments[key]), end=True)
    return h
