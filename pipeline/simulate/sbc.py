"""Simulated ACS/SBC exposures and their reference files (BPIXTAB, MLINTAB, DARKFILE, PFLTFILE, IMPHTTAB).

An SBC raw is 1024x1024 int16 photon counts: a dark floor, a sparse field of point sources and
a few sources bright enough to pass the local non-linearity limit; the whole field's rate goes
into GLOBRATE, and the detector's dead time removes counts as ``x exp(-tau x)`` does, so the
engine's GLINCORR has something to restore. Real SBC filters and the real raw keyword layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from pipeline.core.asntable import build_asn_table
from pipeline.core.fsutil import atomic_write_fits
from pipeline.simulate import acsrefs
from pipeline.simulate.headers import date_time

SIZE = 1024
#: Real SBC filters: PHOTFLAM at MJD 55000 (erg/cm2/A per count), PHOTPLAM, PHOTBW (A).
FILTERS: dict[str, tuple[float, float, float]] = {
    "F115LP": (2.5e-17, 1406.0, 300.0), "F122M": (8.8e-16, 1274.0, 120.0), "F125LP": (3.0e-17, 1439.0, 280.0),
    "F140LP": (8.1e-17, 1527.0, 250.0), "F150LP": (1.3e-16, 1611.0, 200.0), "F165LP": (6.5e-16, 1757.0, 160.0)}
#: MLINTAB values for SBC: global limit (counts/s), local limit (counts/s/pixel), dead time (s), flag radius.
GLOBAL_LIMIT, LOCAL_LIMIT, TAU, EXPAND = 200000.0, 100.0, 1.0e-7, 1.5
DARK_RATE = 1.2e-5  # counts/s/pixel
NAMES = {"BPIXTAB": "sbc_sim_bpx.fits", "MLINTAB": "sbc_sim_lin.fits", "DARKFILE": "sbc_sim_drk.fits",
         "PFLTFILE": "sbc_sim_pfl.fits", "IMPHTTAB": "sbc_sim_imp.fits"}


def sensitivity(filt: str, mjd: float) -> float:
    """PHOTFLAM drifting slowly with time (0.2 % per 1000 days), so the MJD interpolation matters."""
    return FILTERS[filt][0] * (1.0 + 2e-6 * (mjd - 55000.0))


def flat_field(seed: int) -> np.ndarray:
    """A smooth pixel-to-pixel response around 1 with a few dead (zero) pixels."""
    rng = np.random.default_rng(seed + 1)
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    flat = (1.0 + 0.05 * np.sin(3 * x) * np.cos(2 * y) + rng.normal(0, 0.01, (SIZE, SIZE))).astype(np.float32)
    flat[rng.integers(0, SIZE, 5), rng.integers(0, SIZE, 5)] = 0.0
    return flat


def write_references(refdir: Path, *, seed: int = 13) -> dict[str, Path]:
    """The five SBC reference files, in the real layouts, under ``refdir``."""
    refdir.mkdir(parents=True, exist_ok=True)
    paths = {k: refdir / v for k, v in NAMES.items()}
    runs = [(100, 200, 30, 1, 4), (512, 40, 50, 2, 16), (900, 900, 1, 1, 4), (1, 1024, 1024, 1, 4)]
    atomic_write_fits(acsrefs.bpixtab("SBC", NAMES["BPIXTAB"], runs, (SIZE, SIZE)), paths["BPIXTAB"])
    h = acsrefs.primary("LINEARITY", "SBC", NAMES["MLINTAB"], "MAMA linearity limits")
    cols = [fits.Column(name="DETECTOR", format="4A", array=np.array(["SBC"])),
            fits.Column(name="GLOBAL_LIMIT", format="D", array=np.array([GLOBAL_LIMIT])),
            fits.Column(name="LOCAL_LIMIT", format="D", array=np.array([LOCAL_LIMIT])),
            fits.Column(name="TAU", format="D", array=np.array([TAU])),
            fits.Column(name="EXPAND", format="E", array=np.array([EXPAND])),
            fits.Column(name="PEDIGREE", format="30A", array=np.array([h["PEDIGREE"]])),
            fits.Column(name="DESCRIP", format="67A", array=np.array([acsrefs.SIMULATED]))]
    atomic_write_fits(acsrefs.table(h, "MLIN", cols), paths["MLINTAB"])
    rng = np.random.default_rng(seed)
    dark = np.full((SIZE, SIZE), DARK_RATE, np.float32) * rng.uniform(0.8, 1.2, (SIZE, SIZE)).astype(np.float32)
    dark_dq = np.zeros((SIZE, SIZE), np.int16)
    dark_dq[300:303, 700] = 16  # hot pixels: their DQ reaches the flt although the dark subtracts nothing
    drk = acsrefs.primary("DARK", "SBC", NAMES["DARKFILE"], "SBC dark")
    drk.update(CCDAMP="N/A", CCDGAIN=-999.0)
    atomic_write_fits(acsrefs.image(drk, dark,
                                    dq=dark_dq, sci_keys={"BUNIT": "COUNTS/S"}), paths["DARKFILE"])
    flat = flat_field(seed)
    fh = acsrefs.primary("PIXEL-TO-PIXEL FLAT", "SBC", NAMES["PFLTFILE"], "SBC pixel-to-pixel flat")
    fh.update(FILTER1="ANY", FILTER2="N/A", CCDAMP="N/A", CCDGAIN=-999.0, FW1OFFST=0, FW2OFFST=0, FWSOFFST=0)
    atomic_write_fits(acsrefs.image(fh, flat, err=np.full(flat.shape, 0.002, np.float32)), paths["PFLTFILE"])
    modes = {f"acs,sbc,{f.lower()}": ((lambda t, f=f: sensitivity(f, t)), v[1], v[2]) for f, v in FILTERS.items()}
    atomic_write_fits(acsrefs.imphttab("SBC", NAMES["IMPHTTAB"], modes), paths["IMPHTTAB"])
    return paths


@dataclass
class SbcTruth:
    """What the simulator put in: true count rates (counts/s/pixel, before flat and dead time)."""

    rate: np.ndarray
    globrate_true: float
    bright: list[tuple[int, int]] = field(default_factory=list)

    def to_hdulist(self, rootname: str) -> fits.HDUList:
        """``<root>_truth.fits``: the true count rate per pixel."""
        hdu = fits.ImageHDU(self.rate.astype(np.float32), name="RATE")
        hdu.header["BUNIT"] = "COUNTS/S"
        return fits.HDUList([fits.PrimaryHDU(header=fits.Header([("ROOTNAME", rootname)])), hdu])


@dataclass
class SbcExposure:
    """One simulated SBC exposure as the downlink carries it."""

    rootname: str
    raw: fits.HDUList
    truth: SbcTruth


@dataclass
class SbcAssociation:
    """A dithered pair of SBC exposures (duck-types the downlink's SimulatedAssociation)."""

    name: str
    asn_type: str
    members: list[SbcExposure]

    @property
    def is_singleton(self) -> bool:
        return False

    def asn_table(self) -> fits.HDUList:
        return build_asn_table(self.name, [m.rootname for m in self.members], self.asn_type,
                               header=self.members[0].raw[0].header)


def association(seed: int, index: int = 1, asn_type: str = "DITHER") -> SbcAssociation:
    """An SBC association ``jsbc<nn>010`` of two 300 s F125LP exposures: DITHER moves the second by
    (5, 7) pixels; REPEAT keeps the pointing and asks for RPTCORR (calacs sums them with ACSSUM)."""
    name = f"jsbc{index:02d}010"
    repeat = asn_type == "REPEAT"
    members = []
    for k, shift in enumerate(((0, 0), (0, 0) if repeat else (5, 7)), start=1):
        root = f"jsbc{index:02d}{'r' if repeat else 'd'}{k}q"
        hdul, truth = make_raw(root, None, filt="F125LP", exptime=300.0, expstart=56000.25 + 0.01 * k,
                               seed=seed, noise_seed=seed + 100 * k if repeat else None, shift=shift,
                               asn=(name, "EXP-RPT" if repeat else "EXP-DTH"),
                               switches={"RPTCORR": "PERFORM"} if repeat else None, nrptexp=2 if repeat else 1)
        members.append(SbcExposure(root, hdul, truth))
    return SbcAssociation(name, asn_type, members)


def scene(seed: int, exptime: float, *, nsources: int = 60, nbright: int = 3,
          global_boost: float = 0.0) -> SbcTruth:
    """Point sources (Gaussian, sigma 1.2 pixels) on the dark floor; ``nbright`` above the local limit;
    ``global_boost`` spreads extra diffuse rate (counts/s over the detector) to approach the global limit."""
    rng = np.random.default_rng(seed)
    rate = np.full((SIZE, SIZE), DARK_RATE + global_boost / SIZE**2, np.float64)
    y, x = np.mgrid[-6:7, -6:7]
    psf = np.exp(-(x**2 + y**2) / (2 * 1.2**2))
    psf /= psf.sum()
    bright = []
    for k in range(nsources + nbright):
        cx, cy = rng.integers(20, SIZE - 20, 2)
        total = 2.5 * LOCAL_LIMIT / psf.max() if k < nbright else rng.uniform(0.05, 20.0)
        rate[cy - 6:cy + 7, cx - 6:cx + 7] += total * psf
        if k < nbright:
            bright.append((int(cx), int(cy)))
    return SbcTruth(rate=rate, globrate_true=float(rate.sum()), bright=bright)


def write_raw(path: Path, refs: dict[str, Path] | None, **kw: Any) -> SbcTruth:
    """A raw SBC exposure in the archive's layout written to ``path`` (see :func:`make_raw`)."""
    hdul, truth = make_raw(path.name.split("_")[0].lower(), refs, **kw)
    atomic_write_fits(hdul, path)
    return truth


def make_raw(root: str, refs: dict[str, Path] | None, *, filt: str = "F115LP", exptime: float = 100.0,
             expstart: float = 56000.25, seed: int = 1, global_boost: float = 0.0,
             switches: dict[str, str] | None = None, shift: tuple[int, int] = (0, 0),
             asn: tuple[str, str] = ("NONE", ""), nrptexp: int = 1,
             noise_seed: int | None = None) -> tuple[fits.HDUList, SbcTruth]:
    """A raw SBC exposure (HDUList) and its truth; reference keywords ``jref$<name>`` (``refs`` or
    :data:`NAMES`); ``shift`` dithers the scene by whole pixels; ``asn`` = (ASN_ID, ASN_MTYP);
    ``noise_seed`` draws other Poisson counts of the same scene (a repeat exposure)."""
    truth = scene(seed, exptime, global_boost=global_boost)
    truth.rate = np.roll(truth.rate, shift, axis=(0, 1))
    dead = np.exp(-TAU * truth.globrate_true)            # global dead-time loss
    flat = flat_field(13)
    rng = np.random.default_rng(seed + 100 if noise_seed is None else noise_seed)
    counts = rng.poisson(truth.rate * flat * exptime * dead).clip(0, 32767).astype(np.int16)
    p = fits.Header()
    p.update(SIMPLE=True, BITPIX=16, NAXIS=0, EXTEND=True, NEXTEND=3, ROOTNAME=root, FILENAME=f"{root}_raw.fits",
             FILETYPE="SCI", TELESCOP="HST", INSTRUME="ACS", DETECTOR="SBC", OBSTYPE="IMAGING", OBSMODE="ACCUM",
             IMAGETYP="EXT", APERTURE="SBC", TARGNAME="SIMULATED-UV-FIELD", FILTER1=filt, FILTER2="N/A",
             SUBARRAY=False,
             EXPTIME=exptime, EXPSTART=expstart, EXPEND=expstart + exptime / 86400.0, ASN_ID="NONE",
             NRPTEXP=nrptexp,
             CAL_VER="", PROPOSID=99999)
    sw = {"DQICORR": "PERFORM", "GLINCORR": "PERFORM", "LFLGCORR": "PERFORM", "DARKCORR": "PERFORM",
          "FLATCORR": "PERFORM", "PHOTCORR": "PERFORM", "CRCORR": "OMIT", "RPTCORR": "OMIT",
          "EXPSCORR": "OMIT", "DRIZCORR": "PERFORM", **(switches or {})}
    p["DATE-OBS"], p["TIME-OBS"] = date_time(expstart)
    p["PA_V3"] = (42.0, "position angle of V3-axis of HST (deg)")
    p.update(sw)
    for key in ("BPIXTAB", "MLINTAB", "DARKFILE", "PFLTFILE", "IMPHTTAB"):
        p[key] = f"jref${(refs or {}).get(key, Path(NAMES[key])).name}"
    p.update(DFLTFILE="N/A", LFLTFILE="N/A", CFLTFILE="N/A")
    keys = dict(LTV1=0.0, LTV2=0.0, LTM1_1=1.0, LTM2_2=1.0, SDQFLAGS=31743, CCDCHIP=1,
                GLOBRATE=(float(counts.sum()) / exptime, "global count rate (counts/s)"),
                CRPIX1=512.0 + shift[1], CRPIX2=512.0 + shift[0], CRVAL1=150.0, CRVAL2=2.2,
                CTYPE1="RA---TAN", CTYPE2="DEC--TAN",
                CD1_1=-9.3e-6, CD1_2=0.0, CD2_1=0.0, CD2_2=9.3e-6, ORIENTAT=0.0)
    if asn[0] != "NONE":
        p.update(ASN_ID=asn[0].upper(), ASN_TAB=f"{asn[0].lower()}_asn.fits", ASN_MTYP=asn[1])
    return acsrefs.raw_file(p, counts, keys), truth
