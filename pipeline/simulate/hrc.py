"""Simulated ACS/HRC exposures and reference files (CCDTAB, OSCNTAB, BIASFILE, DARKFILE, PFLTFILE,
SATUFILE, BPIXTAB, CRREJTAB, IMPHTTAB) in the real layouts, and the preparation of real HRC raws
whose image references are not available here.

Raw geometry (amp C): 1062x1044 with 19 physical prescan columns on the left (LTV1 = 19), 19
virtual overscan columns on the right and 20 virtual overscan rows on top.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from pipeline.core.fsutil import atomic_write_fits
from pipeline.simulate import acsrefs
from pipeline.simulate.headers import date_time

NX, NY, PRESCAN, OVERSCAN, VIRTUAL_ROWS, SIZE = 1062, 1044, 19, 19, 20, 1024
GAIN, READNOISE_E, BIAS_DN, FULL_WELL_E = 2.216, 4.7, 1134.0, 155000.0
DARK_RATE = 0.0025  # e-/s/pixel
#: Real HRC filters (FILTER1, FILTER2) -> PHOTFLAM at MJD 52500 (erg/cm2/A per e-), PHOTPLAM, PHOTBW.
FILTERS: dict[str, tuple[str, str, float, float, float]] = {
    "F330W": ("CLEAR1S", "F330W", 2.2e-18, 3362.7, 173.0), "F555W": ("F555W", "CLEAR2S", 3.0e-19, 5355.9, 360.0),
    "F606W": ("F606W", "CLEAR2S", 1.9e-19, 5888.0, 660.0), "F814W": ("CLEAR1S", "F814W", 4.6e-19, 8115.0, 700.0),
    "F250W": ("CLEAR1S", "F250W", 4.5e-18, 2716.0, 240.0)}
NAMES = {"CCDTAB": "hrc_sim_ccd.fits", "OSCNTAB": "hrc_sim_osc.fits", "BIASFILE": "hrc_sim_bia.fits",
         "DARKFILE": "hrc_sim_drk.fits", "PFLTFILE": "hrc_sim_pfl.fits", "SATUFILE": "hrc_sim_sat.fits",
         "BPIXTAB": "hrc_sim_bpx.fits", "CRREJTAB": "hrc_sim_crr.fits", "IMPHTTAB": "hrc_sim_imp.fits"}
#: The coronagraph's spot flat and spot-position table (real names end in _cfl and _csp).
CORON_NAMES = {"CFLTFILE": "hrc_sim_cfl.fits", "SPOTTAB": "hrc_sim_csp.fits"}
#: SPOTTAB rows (DATE 'dd/mm/yy', SHIFTX, SHIFTY): the spots drifted after launch.
SPOT_SHIFTS = (("01/03/02", 0.0, 0.0), ("15/06/02", 1.25, 0.5), ("01/01/03", 2.3, 1.7), ("01/06/04", 3.1, 2.35))
#: Occulting spots (x, y, radius in pixels) on the HRC: 1.8" and 3.0".
SPOTS = ((437.0, 640.0, 30.0), (710.0, 402.0, 50.0))
SIMULATED_IMAGES = ("CCDTAB", "OSCNTAB", "BIASFILE", "DARKFILE", "PFLTFILE", "SATUFILE", "IMPHTTAB")
#: HRC subarray apertures read by amp C from its corner: (image columns, rows). The raw keeps the
#: 19 physical prescan columns (LTV1 = 19) and has no virtual overscan.
SUBARRAYS: dict[str, tuple[int, int]] = {"HRC-512": (512, 512), "HRC-SUB1.5": (200, 200)}


def _cols(values: dict[str, tuple[str, list]]) -> list[fits.Column]:
    return [fits.Column(name=k, format=f, array=np.array(v)) for k, (f, v) in values.items()]


def ccdtab() -> fits.HDUList:
    """CCDTAB rows for amp C at gains 1, 2, 4 (CCDCHIP 1, unbinned, CCDOFST 3); AMPX = AMPY = 0."""
    gains = [1, 2, 4]
    n = len(gains)
    rows: dict[str, tuple[str, list]] = {"CCDAMP": ("4A", ["C"] * n), "CCDCHIP": ("I", [1] * n),
                                         "CCDGAIN": ("I", gains), "BINAXIS1": ("I", [1] * n),
                                         "BINAXIS2": ("I", [1] * n)}
    for a in "ABCD":
        rows[f"CCDOFST{a}"] = ("I", [3] * n)
        rows[f"CCDBIAS{a}"] = ("E", [BIAS_DN] * n)
        rows[f"ATODGN{a}"] = ("E", [GAIN * g / 2 if a == "C" else 0.0 for g in gains])
        rows[f"READNSE{a}"] = ("E", [READNOISE_E if a == "C" else 0.0] * n)
    rows.update(AMPX=("I", [0] * n), AMPY=("I", [0] * n), SATURATE=("E", [65535.0] * n),
                ATODSAT=("J", [65535] * n), OVRHFLS=("E", [0.0] * n), OVRHUFLS=("E", [0.0] * n))
    return acsrefs.table(acsrefs.primary("CCD PARAMETERS", "HRC", NAMES["CCDTAB"], "HRC CCD parameters"),
                         "CCDTAB", _cols(rows))


def oscntab() -> fits.HDUList:
    """OSCNTAB (ACS columns): trims, the physical (A) and virtual (B) serial bias columns, the parallel
    box; the full frame, then one row per subarray size (NX/NY of its raw), prescan bias columns only."""
    rows = [(NX, NY, PRESCAN, OVERSCAN, VIRTUAL_ROWS, PRESCAN + 1, PRESCAN + SIZE, SIZE + 3, NY - 2,
             PRESCAN + SIZE + 3, NX - 1)]
    rows += [(PRESCAN + nx, ny, PRESCAN, 0, 0, 0, 0, 0, 0, 0, 0) for nx, ny in SUBARRAYS.values()]
    n = len(rows)
    cols = dict(zip(("NX", "NY", "TRIMX1", "TRIMX2", "TRIMY2", "VX1", "VX2", "VY1", "VY2", "BIASSECTB1",
                     "BIASSECTB2"), zip(*rows, strict=True), strict=True))
    table = {"CCDAMP": ("4A", ["C"] * n), "CCDCHIP": ("I", [1] * n), "BINX": ("I", [1] * n), "BINY": ("I", [1] * n),
             "NX": ("I", list(cols["NX"])), "NY": ("I", list(cols["NY"])), "TRIMX1": ("I", list(cols["TRIMX1"])),
             "TRIMX2": ("I", list(cols["TRIMX2"])), "TRIMY1": ("I", [0] * n), "TRIMY2": ("I", list(cols["TRIMY2"])),
             "VX1": ("I", list(cols["VX1"])), "VX2": ("I", list(cols["VX2"])), "VY1": ("I", list(cols["VY1"])),
             "VY2": ("I", list(cols["VY2"])), "BIASSECTA1": ("I", [3] * n), "BIASSECTA2": ("I", [PRESCAN - 1] * n),
             "BIASSECTB1": ("I", list(cols["BIASSECTB1"])), "BIASSECTB2": ("I", list(cols["BIASSECTB2"]))}
    return acsrefs.table(acsrefs.primary("OVERSCAN", "HRC", NAMES["OSCNTAB"], "HRC overscan regions"),
                         "OSCNTAB", _cols(table))


def crrejtab() -> fits.HDUList:
    """CRREJTAB with the real HRC table's columns and values (n4e12510j)."""
    n = 7
    rows = {"CRSPLIT": ("I", list(range(2, 9))), "MEANEXP": ("E", [np.nan] * n), "SCALENSE": ("8A", ["30.0"] * n),
            "INITGUES": ("8A", ["minimum"] * n), "SKYSUB": ("4A", ["mode"] * n),
            "CRSIGMAS": ("16A", ["6.5,5.5,4.5"] * n), "CRRADIUS": ("E", [2.1] * n),
            "CRTHRESH": ("E", [0.5555555] * n), "BADINPDQ": ("I", [39] * n), "CRMASK": ("I", [1] * n),
            "CCDCHIP": ("I", [1] * n)}
    return acsrefs.table(acsrefs.primary("COSMIC RAY REJECTION", "HRC", NAMES["CRREJTAB"], "HRC CR rejection"),
                         "CRR", _cols(rows))


def flat_field(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    return (1.0 + 0.04 * np.cos(2.5 * x + 1.0) * np.sin(1.7 * y) + rng.normal(0, 0.008, (SIZE, SIZE))).astype(
        np.float32)


def spot_flat() -> np.ndarray:
    """The spot flat: 1 away from the occulting spots, down to ~0.3 in their cores (smooth edges)."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    flat = np.ones((SIZE, SIZE))
    for cx, cy, r in SPOTS:
        d = np.hypot(x - cx, y - cy)
        flat *= 1.0 - 0.7 / (1.0 + np.exp((d - r) / 3.0))
    return flat.astype(np.float32)


def write_coronagraph_references(refdir: Path) -> dict[str, Path]:
    """CFLTFILE (one imset, SCI only meaningful: calacs uses sqrt(SCI) as its error) and SPOTTAB."""
    paths = {k: refdir / v for k, v in CORON_NAMES.items()}
    ch = acsrefs.primary("SPOT FLAT", "HRC", CORON_NAMES["CFLTFILE"], "HRC coronagraphic spot flat")
    ch.update(FILTER1="ANY", FILTER2="ANY", OBSTYPE="CORONAGRAPHIC")
    atomic_write_fits(acsrefs.image(ch, spot_flat()), paths["CFLTFILE"])
    th = acsrefs.primary("SPOT POSITION TABLE", "HRC", CORON_NAMES["SPOTTAB"], "HRC coronagraphic spot positions")
    th["OBSTYPE"] = "CORONAGRAPHIC"
    dates, sx, sy = zip(*SPOT_SHIFTS, strict=True)
    atomic_write_fits(acsrefs.table(th, "SPOTTAB", _cols({"DATE": ("8A", list(dates)), "SHIFTX": ("E", list(sx)),
                                                         "SHIFTY": ("E", list(sy))})), paths["SPOTTAB"])
    return paths


def bias_structure(seed: int) -> np.ndarray:
    """Superbias residual (DN, raw format): column pattern and a few hot columns, ~0 mean."""
    rng = np.random.default_rng(seed + 7)
    cols = rng.normal(0.0, 0.8, NX).astype(np.float32)
    return np.broadcast_to(cols, (NY, NX)).copy()


def write_references(refdir: Path, *, seed: int = 113) -> dict[str, Path]:
    """All HRC reference files under ``refdir``; returns keyword -> path."""
    refdir.mkdir(parents=True, exist_ok=True)
    paths = {k: refdir / v for k, v in NAMES.items()}
    atomic_write_fits(ccdtab(), paths["CCDTAB"])
    atomic_write_fits(oscntab(), paths["OSCNTAB"])
    atomic_write_fits(crrejtab(), paths["CRREJTAB"])
    atomic_write_fits(acsrefs.bpixtab("HRC", NAMES["BPIXTAB"], [(200, 1, 1024, 2, 4), (700, 350, 4, 1, 16)],
                                      (SIZE, SIZE)), paths["BPIXTAB"])
    bh = acsrefs.primary("BIAS", "HRC", NAMES["BIASFILE"], "HRC superbias")
    bh.update(CCDAMP="C", CCDGAIN=2.0, BINAXIS1=1, BINAXIS2=1)
    keys = {"LTV1": float(PRESCAN), "LTV2": 0.0, "LTM1_1": 1.0, "LTM2_2": 1.0, "BUNIT": "COUNTS"}
    atomic_write_fits(acsrefs.image(bh, bias_structure(seed), err=np.full((NY, NX), 0.05, np.float32),
                                    sci_keys=keys), paths["BIASFILE"])
    rng = np.random.default_rng(seed)
    dark = (DARK_RATE * rng.gamma(4.0, 0.25, (SIZE, SIZE))).astype(np.float32)
    dark[rng.integers(0, SIZE, 40), rng.integers(0, SIZE, 40)] = 0.5  # hot pixels
    dh = acsrefs.primary("DARK", "HRC", NAMES["DARKFILE"], "HRC dark")
    dh.update(CCDAMP="C", CCDGAIN=2.0)
    atomic_write_fits(acsrefs.image(dh, dark, err=np.full(dark.shape, 1e-4, np.float32),
                                    sci_keys={"BUNIT": "ELECTRONS/S"}), paths["DARKFILE"])
    fh = acsrefs.primary("PIXEL-TO-PIXEL FLAT", "HRC", NAMES["PFLTFILE"], "HRC pixel-to-pixel flat")
    fh.update(FILTER1="ANY", FILTER2="ANY", CCDAMP="ANY", CCDGAIN=-999.0, FW1OFFST=0, FW2OFFST=0, FWSOFFST=0)
    atomic_write_fits(acsrefs.image(fh, flat_field(seed), err=np.full((SIZE, SIZE), 0.003, np.float32)),
                      paths["PFLTFILE"])
    sh = acsrefs.primary("FULL-WELL SATURATION LEVEL MAP", "HRC", NAMES["SATUFILE"], "HRC full-well saturation")
    atomic_write_fits(acsrefs.image(sh, np.full((NY, NX), FULL_WELL_E * 0.98, np.float32), sci_keys=keys),
                      paths["SATUFILE"])
    modes = {f"acs,hrc,{coron}{f.lower()}": ((lambda t, v=v: v[2] * (1.0 - 3e-6 * (t - 52500.0))), v[3], v[4])
             for f, v in FILTERS.items() for coron in ("", "coron,")}
    atomic_write_fits(acsrefs.imphttab("HRC", NAMES["IMPHTTAB"], modes), paths["IMPHTTAB"])
    write_coronagraph_references(refdir)  # named only by coronagraphic raws (see CORON_NAMES)
    return paths


@dataclass
class HrcTruth:
    """Electrons per trimmed pixel before flat, dark and noise; where CRs and saturation went."""

    electrons: np.ndarray
    cosmic_rays: np.ndarray
    saturated: np.ndarray

    def to_hdulist(self, rootname: str) -> fits.HDUList:
        """``<root>_truth.fits``: electrons per trimmed pixel, and where CRs and saturation went."""
        return fits.HDUList([fits.PrimaryHDU(header=fits.Header([("ROOTNAME", rootname)])),
                             fits.ImageHDU(self.electrons.astype(np.float32), name="ELECTRONS"),
                             fits.ImageHDU(self.cosmic_rays.astype(np.uint8), name="CR"),
                             fits.ImageHDU(self.saturated.astype(np.uint8), name="SATURATED")])


@dataclass
class HrcExposure:
    """One simulated HRC exposure as the downlink carries it."""

    rootname: str
    raw: fits.HDUList
    truth: HrcTruth


def association(seed: int, index: int = 1) -> Any:
    """A CR-SPLIT pair ``jhrc<nn>010`` (the typical HRC observation): two 150 s F555W exposures of the
    same field, their own noise and cosmic rays; a downlink ``SimulatedAssociation``."""
    from pipeline.core.config import load_instrument_defaults
    from pipeline.science.telemetry.rawfits import calibration_switches
    from pipeline.simulate.downlink import SimulatedAssociation

    name = f"jhrc{index:02d}010"
    switches = calibration_switches(load_instrument_defaults()["acs"], "ACS", "HRC", "CR-SPLIT")
    members = []
    for k in (1, 2):
        root = f"jhrc{index:02d}c{k}q"
        hdul, truth = make_raw(root, exptime=150.0, expstart=52500.3 + 0.003 * k, seed=seed * 10 + k,
                               star_seed=seed, crsplit=2, asn_id=name, asn_mtyp="EXP-CRJ", switches=switches)
        members.append(HrcExposure(root, hdul, truth))
    return SimulatedAssociation(name, "CR-SPLIT", members)  # type: ignore[arg-type]


def write_raw(path: Path, **kw: Any) -> HrcTruth:
    """A raw HRC exposure written to ``path`` (see :func:`make_raw`); the dark of ``path``'s sibling
    ``jref`` directory, when there is one, is the dark the exposure collects."""
    jref_dark = path.parent / "jref" / NAMES["DARKFILE"]
    dark = fits.getdata(jref_dark, 1) if jref_dark.is_file() else None
    hdul, truth = make_raw(path.name.split("_")[0].lower(), dark=dark, **kw)
    atomic_write_fits(hdul, path)
    return truth


def make_raw(root: str, *, filt: str = "F555W", exptime: float = 300.0, expstart: float = 52500.3, seed: int = 2,
             star_seed: int = 2, crsplit: int = 1, asn_id: str = "NONE", ncr: int = 400,
             aperture: str = "HRC", coronagraph: bool = False, dark: np.ndarray | None = None,
             asn_mtyp: str = "", switches: dict[str, str] | None = None) -> tuple[fits.HDUList, HrcTruth]:
    """A raw HRC exposure in the archive's layout (HDUList) and its truth; the reference keywords name
    :data:`NAMES` in jref. ``aperture`` one of :data:`SUBARRAYS` reads out only that corner of amp C
    (with its prescan); ``coronagraph`` observes through the occulting spots (OBSTYPE CORONAGRAPHIC,
    CFLTFILE/SPOTTAB); ``asn_id``/``asn_mtyp`` make it an association member; ``switches`` replaces
    the default calibration switches (2FITS's, for a downlink)."""
    rng = np.random.default_rng(seed)
    srng = np.random.default_rng(star_seed)
    e = np.full((SIZE, SIZE), 8.0 * exptime / 100.0)
    y, x = np.mgrid[-8:9, -8:9]
    psf = np.exp(-(x**2 + y**2) / (2 * 1.1**2))
    psf /= psf.sum()
    for k in range(150):
        cx, cy = srng.integers(10, SIZE - 10, 2)
        flux = 5e6 if k < 3 else srng.uniform(2e3, 2e5) * exptime / 100.0
        e[cy - 8:cy + 9, cx - 8:cx + 9] += flux * psf
    flat = flat_field(113)
    if coronagraph:
        flat = flat * spot_flat()
    signal = e * flat
    signal = signal + (DARK_RATE if dark is None else dark) * exptime
    obs = rng.poisson(signal).astype(np.float64)
    crs = np.zeros((SIZE, SIZE), bool)
    for _ in range(ncr):
        cx, cy = rng.integers(0, SIZE - 2, 2)
        obs[cy:cy + 2, cx] += rng.uniform(500, 5000)
        crs[cy:cy + 2, cx] = True
    saturated = obs >= FULL_WELL_E
    obs = np.minimum(obs, FULL_WELL_E)
    raw = np.full((NY, NX), BIAS_DN, np.float64) + bias_structure(113)
    raw[:SIZE, PRESCAN:PRESCAN + SIZE] += obs / GAIN
    raw += rng.normal(0.0, READNOISE_E / GAIN, raw.shape)
    dn = np.clip(np.rint(raw), 0, 65535).astype(np.uint16)
    sub = SUBARRAYS.get(aperture)
    if aperture != "HRC" and sub is None:
        raise ValueError(f"unknown HRC aperture {aperture!r}: expected HRC or one of {', '.join(SUBARRAYS)}")
    nx, ny = sub or (SIZE, SIZE)
    if sub:
        dn = dn[:ny, :PRESCAN + nx]
        e, crs, saturated = e[:ny, :nx], crs[:ny, :nx], saturated[:ny, :nx]
    f1, f2 = FILTERS[filt][:2]
    p = fits.Header()
    p.update(NEXTEND=(3, "Number of standard extensions"), ROOTNAME=root,
             FILENAME=(f"{root}_raw.fits", "name of file"), FILETYPE=("SCI", "type of data found in data file"),
             TELESCOP="HST", INSTRUME="ACS",
             DETECTOR="HRC", OBSTYPE="IMAGING", OBSMODE="ACCUM", IMAGETYP="EXT",
             APERTURE=aperture, TARGNAME="SIMULATED-CLUSTER",
             FILTER1=f1, FILTER2=f2, SUBARRAY=sub is not None, CCDAMP="C", CCDGAIN=2, CCDOFSTA=3, CCDOFSTB=3,
             CCDOFSTC=3,
             CCDOFSTD=3, BINAXIS1=1, BINAXIS2=1, EXPTIME=exptime, DARKTIME=exptime, EXPSTART=expstart,
             EXPEND=expstart + exptime / 86400.0, CRSPLIT=crsplit, ASN_ID=asn_id, FLASHDUR=0.0, PROPOSID=99999)
    p["DATE-OBS"], p["TIME-OBS"] = date_time(expstart)
    p["PA_V3"] = (42.0, "position angle of V3-axis of HST (deg)")
    p.update(CENTERA1=PRESCAN + nx // 2 + 1, CENTERA2=ny // 2 + 1, SIZAXIS1=nx, SIZAXIS2=ny)
    if switches is None:
        switches = {s: "PERFORM" for s in ("DQICORR", "BLEVCORR", "BIASCORR", "DARKCORR", "FLATCORR", "PHOTCORR",
                                           "EXPSCORR")}
        switches.update(ATODCORR="OMIT", FLSHCORR="OMIT", SHADCORR="OMIT",
                        CRCORR="PERFORM" if crsplit > 1 else "OMIT", RPTCORR="OMIT", DRIZCORR="PERFORM",
                        PCTECORR="OMIT")
    p.update(STATFLAG=(True, "Calculate statistics?"), WRTERR=(True, "write out error array extension"))
    p.update({k: (v, "calibration switch") for k, v in switches.items()})
    for key, name in NAMES.items():
        p[key] = f"jref${name}"
    p.update(DFLTFILE="N/A", LFLTFILE="N/A", CFLTFILE="N/A", SPOTTAB="N/A", FLSHFILE="N/A", SHADFILE="N/A")
    if coronagraph:
        p.update(OBSTYPE="CORONAGRAPHIC", APERTURE="HRC-CORON1.8",
                 **{k: f"jref${v}" for k, v in CORON_NAMES.items()})
    keys = dict(LTV1=float(PRESCAN), LTV2=0.0, LTM1_1=1.0, LTM2_2=1.0, SDQFLAGS=31743, CCDCHIP=1,
                CRPIX1=531.0, CRPIX2=512.0, CRVAL1=6.02, CRVAL2=-72.08, CTYPE1="RA---TAN", CTYPE2="DEC--TAN",
                CD1_1=-7.0e-6, CD1_2=1.8e-6, CD2_1=2.9e-6, CD2_2=6.6e-6, ORIENTAT=15.5)
    if asn_id != "NONE":
        p.update(ASN_ID=asn_id.upper(), ASN_TAB=f"{asn_id.lower()}_asn.fits", ASN_MTYP=asn_mtyp)
    return acsrefs.raw_file(p, dn, keys), HrcTruth(electrons=e * exptime / exptime, cosmic_rays=crs,
                                                   saturated=saturated)


def prepare_real_raw(raw: Path, dest: Path, refdir: Path, *, real_tables: dict[str, Path]) -> Path:
    """Copy a real HRC raw into ``dest`` and point it at what is available: the real tables given
    (BPIXTAB, CRREJTAB, ...) copied into ``refdir``, simulated files in the real layout for the rest;
    HISTORY says which references are simulated."""
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / raw.name
    shutil.copyfile(raw, out)
    out.chmod(0o644)
    for path in real_tables.values():
        shutil.copyfile(path, refdir / path.name)
        (refdir / path.name).chmod(0o644)
    with fits.open(out, mode="update") as h:
        p = h[0].header
        for key in SIMULATED_IMAGES:
            if key in real_tables:
                continue
            old = str(p.get(key, "N/A"))
            p[key] = f"jref${NAMES[key]}"
            p["HISTORY"] = f"{key} {old} not available: owlpipe simulated {NAMES[key]} (real layout) used"
        for key, path in real_tables.items():
            p[key] = f"jref${path.name}"
            p["HISTORY"] = f"{key}: real table {path.name}"
    return out


def write_mode_examples(directory: Path, *, seed: int = 1, aperture: str = "HRC", sbc_type: str = "REPEAT",
                        ) -> list[Path]:
    """FITS for a user comparing engines: the HRC and SBC references in ``directory/jref`` and, in
    ``directory``, one HRC raw of ``aperture`` and an SBC association of ``sbc_type`` (DITHER/REPEAT)."""
    from pipeline.simulate import sbc

    jref = directory / "jref"
    write_references(jref)
    sbc.write_references(jref)   # the SBC raws name these (sbc.NAMES) by default
    raw = directory / f"jhrc{seed % 100:02d}{'s' if aperture in SUBARRAYS else 'f'}1q_raw.fits"
    write_raw(raw, seed=seed, aperture=aperture)
    assoc = sbc.association(seed, seed % 100, sbc_type)
    written = [raw]
    for m in assoc.members:
        written.append(atomic_write_fits(m.raw, directory / f"{m.rootname}_raw.fits"))
    written.append(atomic_write_fits(assoc.asn_table(), directory / f"{assoc.name}_asn.fits"))
    return written
