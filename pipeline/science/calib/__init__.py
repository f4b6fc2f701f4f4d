"""Calibration of HST exposures: the built-in CCD engine (WFC3/UVIS, ACS/WFC) and delegates to
hstcal (calwf3.e, calacs.e) and calcos. See ``docs/calib.md``.
"""

from pipeline.science.calib.api import calibrate

__all__ = ["calibrate"]
