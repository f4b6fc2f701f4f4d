"""MDRIZTAB reference files: AstroDrizzle's parameters per detector, filter and number of inputs.

Layout of the STScI tables (``ubi1853qi_mdz.fits`` and kin): a primary header with the CRDS selection
keywords (INSTRUME, DETECTOR, FILETYPE ``MULTIDRIZZLE PARAMETERS``, USEAFTER, PEDIGREE) and one binary
table whose first two columns, ``filter`` and ``numimages``, select a row and whose other columns are
AstroDrizzle parameters named as AstroDrizzle names them (lower case). Rows of one filter are in
ascending ``numimages``; drizzlepac's ``mdzhandler`` takes the rows of the inputs' filter (else
``ANY``) and the last one whose ``numimages`` the number of inputs reaches. Column formats are what
``mdzhandler`` parses: ``1L`` (logical), ``1J`` (integer), ``1E`` (real; NaN means "unset") and
``nA`` (text; blank means "unset").

The values are STScI's pipeline values per detector and number of inputs as drizzlepac ships them
(``pars/hap_pars/svm_parameters/<inst>/<det>/*_astrodrizzle_any_n<N>.json``, derived from the
operational MDRIZTABs): one image gets no cosmic-ray rejection, two use ``minmed``, six or more a
``median`` with a smaller final pixfrac. ACS/SBC (MAMA, no cosmic rays) has one row.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from astropy.io import fits

FILETYPE = "MULTIDRIZZLE PARAMETERS"
#: Detectors per instrument that have an MDRIZTAB (the real hst_0349 rmaps' match rows).
DETECTORS = {"WFC3": ("UVIS", "IR"), "ACS": ("WFC", "HRC", "SBC")}
#: First USEAFTER of each instrument's tables (as the real rmaps have them).
USEAFTER = {"WFC3": "Jan 01 2008 00:00:00", "ACS": "Jan 01 1991 00:00:00"}

#: Column -> FITS format, in table order (selection columns first).
COLUMNS: dict[str, str] = {
    "filter": "24A", "numimages": "1J",
    "build": "1L", "stepsize": "1J", "context": "1L", "crbit": "1J", "resetbits": "1J", "proc_unit": "8A",
    "static": "1L", "static_sig": "1E",
    "skysub": "1L", "skymethod": "16A", "skystat": "8A", "skywidth": "1E", "skylower": "1E", "skyupper": "1E",
    "skyclip": "1J", "skylsigma": "1E", "skyusigma": "1E", "use_static": "1L", "sky_bits": "1J",
    "driz_separate": "1L", "driz_sep_kernel": "8A", "driz_sep_wt_scl": "8A", "driz_sep_pixfrac": "1E",
    "driz_sep_bits": "1J",
    "median": "1L", "median_newmasks": "1L", "combine_maskpt": "1E", "combine_type": "8A",
    "combine_nsigma": "8A", "combine_nlow": "1J", "combine_nhigh": "1J", "combine_lthresh": "1E",
    "combine_hthresh": "1E", "combine_grow": "1J",
    "blot": "1L", "blot_interp": "8A", "blot_sinscl": "1E",
    "driz_cr": "1L", "driz_cr_corr": "1L", "driz_cr_snr": "16A", "driz_cr_grow": "1J", "driz_cr_ctegrow": "1J",
    "driz_cr_scale": "16A",
    "driz_combine": "1L", "final_wht_type": "8A", "final_kernel": "8A", "final_wt_scl": "8A",
    "final_pixfrac": "1E", "final_bits": "1J", "final_units": "8A", "final_wcs": "1L", "final_rot": "1E",
    "final_scale": "1E",
}

#: STScI's two-image CCD row (WFC3/UVIS, ACS/WFC); other rows are this with changes.
_CCD_PAIR: dict[str, Any] = {
    "build": True, "stepsize": 10, "context": True, "crbit": 4096, "resetbits": 4096, "proc_unit": "native",
    "static": True, "static_sig": 4.0,
    "skysub": True, "skymethod": "match", "skystat": "median", "skywidth": 0.1, "skylower": -100.0,
    "skyupper": math.nan, "skyclip": 5, "skylsigma": 4.0, "skyusigma": 4.0, "use_static": True, "sky_bits": 80,
    "driz_separate": True, "driz_sep_kernel": "square", "driz_sep_wt_scl": "exptime", "driz_sep_pixfrac": 1.0,
    "driz_sep_bits": 336,
    "median": True, "median_newmasks": True, "combine_maskpt": 0.3, "combine_type": "minmed",
    "combine_nsigma": "4 3", "combine_nlow": 0, "combine_nhigh": 1, "combine_lthresh": math.nan,
    "combine_hthresh": math.nan, "combine_grow": 1,
    "blot": True, "blot_interp": "poly5", "blot_sinscl": 1.0,
    "driz_cr": True, "driz_cr_corr": False, "driz_cr_snr": "3.5 3.0", "driz_cr_grow": 1, "driz_cr_ctegrow": 0,
    "driz_cr_scale": "1.5 1.2",
    "driz_combine": True, "final_wht_type": "EXP", "final_kernel": "square", "final_wt_scl": "exptime",
    "final_pixfrac": 1.0, "final_bits": 336, "final_units": "cps", "final_wcs": True, "final_rot": 0.0,
    "final_scale": math.nan,
}
_SINGLE = {"skysub": False, "driz_separate": False, "median": False, "blot": False, "driz_cr": False,
           "final_bits": 65535}
_MANY = {"combine_type": "median", "driz_cr_scale": "1.2 0.7", "final_pixfrac": 0.8}

#: (filter, numimages, changes to the two-image CCD row) per detector, in table order.
ROWS: dict[str, list[tuple[str, int, dict[str, Any]]]] = {
    "UVIS": [("ANY", 1, _SINGLE), ("ANY", 2, {}), ("ANY", 6, _MANY)],
    "WFC": [("ANY", 1, {**_SINGLE, "static": False, "sky_bits": 16, "driz_sep_kernel": "turbo"}),
            ("ANY", 2, {}), ("ANY", 6, _MANY)],
    "HRC": [("ANY", 1, {**_SINGLE, "static": False, "sky_bits": 16, "driz_sep_kernel": "turbo"}),
            ("ANY", 2, {"sky_bits": 64, "driz_sep_bits": 64, "final_bits": 64}),
            ("ANY", 6, {**_MANY, "sky_bits": 64, "driz_sep_bits": 64, "final_bits": 64})],
    "IR": [("ANY", 1, {**_SINGLE, "sky_bits": 16, "driz_sep_bits": 16, "final_bits": 528,
                       "driz_cr_snr": "5.0 4.0", "driz_cr_scale": "3.0 2.4"}),
           ("ANY", 2, {"sky_bits": 16, "driz_sep_bits": 65535, "driz_sep_kernel": "turbo", "final_bits": 528,
                       "driz_cr_snr": "5.0 4.0", "driz_cr_scale": "3.0 2.4"}),
           ("ANY", 4, {"sky_bits": 16, "driz_sep_bits": 528, "driz_sep_kernel": "turbo", "final_bits": 528,
                       "combine_type": "median", "driz_cr_snr": "5.0 4.0", "driz_cr_scale": "3.0 2.4"})],
    "SBC": [("ANY", 1, {"static": False, "skysub": False, "skystat": "mean", "sky_bits": 0, "driz_separate": False,
                        "driz_sep_bits": 0, "driz_sep_kernel": "turbo", "median": False, "median_newmasks": False,
                        "blot": False, "driz_cr": False, "driz_cr_scale": "1.2 0.7", "final_bits": 0,
                        "final_scale": 0.025})],
}


def rows(detector: str) -> list[dict[str, Any]]:
    """The table rows of one detector, every column filled."""
    out = []
    for filt, numimages, changes in ROWS[detector]:
        row = {"filter": filt, "numimages": numimages, **_CCD_PAIR, **changes}
        out.append({name: row[name] for name in COLUMNS})
    return out


def mdriz_table(instrument: str, detector: str, name: str, useafter: str | None = None) -> fits.HDUList:
    """One detector's MDRIZTAB as CDBS delivers it (``<name>`` is its CDBS file name)."""
    table_rows = rows(detector)
    h = fits.Header()
    h["FILENAME"] = (name, "name of file")
    h["FILETYPE"] = (FILETYPE, "type of data found in data file")
    h["TELESCOP"] = ("HST", "telescope used to acquire data")
    h["INSTRUME"] = (instrument, "identifier for instrument used to acquire data")
    h["DETECTOR"] = (detector, "detector in use")
    h["USEAFTER"] = (useafter or USEAFTER[instrument], "use after this date")
    h["PEDIGREE"] = ("INFLIGHT 01/01/2008 01/01/2008", "pedigree of reference file")
    h["DESCRIP"] = "AstroDrizzle pipeline parameters by filter and number of images (owlpipe simulated)"[:67]
    h["ORIGIN"] = ("owlpipe simulate", "FITS file originator")
    h["NEXTEND"] = (1, "number of extensions")
    h["COMMENT"] = "Values: STScI pipeline rows per number of inputs, as drizzlepac's hap_pars carry them."
    columns = [fits.Column(name=col, format=fmt, array=np.array([r[col] for r in table_rows]))
               for col, fmt in COLUMNS.items()]
    return fits.HDUList([fits.PrimaryHDU(header=h), fits.BinTableHDU.from_columns(columns, name="MDRIZTAB")])
