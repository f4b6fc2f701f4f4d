"""Filters and inverse sensitivities, shared by the star field and the IMPHTTAB.

PHOTFLAM grows linearly with time (the detectors lose sensitivity slowly). The IMPHTTAB tabulates
that line on an MJD grid, so calwf3/calacs interpolation returns exactly what the scene was made
with, and star magnitudes in the truth catalogue convert to counts with the header PHOTFLAM.
Values are close to the real ones (ACS from the operational 08b18470j_imp.fits; WFC3 approximate).
"""

from __future__ import annotations

from dataclasses import dataclass

#: STMAG zero point (PHOTZPT).
PHOTZPT = -21.1
#: MJD grid of the IMPHTTAB parameterised rows (covers the instruments' operating lives).
MJD_GRID = (52334.0, 54000.0, 55000.0, 56000.0, 57000.0, 58000.0, 59000.0, 60000.0, 61000.0)
_MJD0 = 55000.0
#: Fractional sensitivity loss per year.
_DRIFT_PER_YEAR = 0.0015


@dataclass(frozen=True)
class Filter:
    """Photometric properties at ``_MJD0``; ``photflam[chip]`` per CCD chip (erg/s/cm2/A per e-/s)."""

    name: str
    photflam: dict[int, float]
    photplam: float  # pivot wavelength, Angstrom
    photbw: float  # RMS bandwidth, Angstrom
    sky_rate: float  # e-/s/pixel of zodiacal background


FILTERS: dict[str, dict[str, Filter]] = {
    "wfc3": {
        "F606W": Filter("F606W", {1: 1.120e-19, 2: 1.132e-19}, 5889.2, 658.2, 0.060),
        "F814W": Filter("F814W", {1: 1.496e-19, 2: 1.513e-19}, 8039.1, 666.8, 0.045),
    },
    "acs": {
        "F606W": Filter("F606W", {1: 7.846e-20, 2: 7.846e-20}, 5921.1, 672.3, 0.080),
        "F814W": Filter("F814W", {1: 7.080e-20, 2: 7.080e-20}, 8045.5, 706.6, 0.060),
    },
}

#: ACS filter-wheel pairs (FILTER1, FILTER2) for each bandpass name.
ACS_WHEELS = {"F606W": ("F606W", "CLEAR2L"), "F814W": ("CLEAR1L", "F814W")}


def filter_for(instrument: str, name: str) -> Filter:
    try:
        return FILTERS[instrument.lower()][name]
    except KeyError:
        raise ValueError(f"{instrument}: filter {name!r} not simulated "
                         f"(have {', '.join(FILTERS.get(instrument.lower(), {}))})") from None


def photflam(instrument: str, filter_name: str, chip: int, mjd: float) -> float:
    """Inverse sensitivity of ``chip`` at ``mjd``: linear in time (exact under IMPHTTAB interpolation)."""
    base = filter_for(instrument, filter_name).photflam[chip]
    return base * (1.0 + _DRIFT_PER_YEAR * (mjd - _MJD0) / 365.25)


def count_rate(stmag: float, instrument: str, filter_name: str, chip: int, mjd: float) -> float:
    """e-/s from an ST magnitude: ``F_lambda = 10**(-0.4 (m - PHOTZPT))`` divided by PHOTFLAM."""
    return 10.0 ** (-0.4 * (stmag - PHOTZPT)) / photflam(instrument, filter_name, chip, mjd)
