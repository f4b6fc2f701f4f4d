"""Calibrated WFC3/UVIS exposures (``_flt``/``_flc``) with known stars, for drizzle and preview tests.

Each file has the structure calwf3 writes and drizzlepac reads: a primary header with the
exposure, gain, read-noise and association keywords, then ``SCI``/``ERR``/``DQ`` per chip (chip 2
first, as in WFC3 files) with a gnomonic (TAN) WCS, ``CCDCHIP``, ``IDCSCALE``, ``MEANDARK`` and the
subarray keywords. The sky holds stars at known RA/Dec, so a drizzled product can be checked
against the truth: each star must fall where the product's WCS puts its RA/Dec.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from scipy.special import erf

UVIS_SCALE = 0.0396  # arcsec per pixel
CHIP_GAP = 31  # rows between the two UVIS chips on the sky (about 1.2 arcsec)
PSF_SIGMA = 0.9  # pixels


@dataclass(frozen=True)
class Star:
    ra: float
    dec: float
    flux: float  # electrons


@dataclass(frozen=True)
class Field:
    """A patch of sky: pointing, orientation and stars."""

    ra: float = 265.17
    dec: float = -53.67
    orient: float = 30.0  # degrees east of north of the image y axis
    stars: tuple[Star, ...] = ()


def chip_wcs(field: Field, chip_index: int, shape: tuple[int, int], dither: tuple[float, float]) -> WCS:
    """TAN WCS of one chip: chip 2 (extension 1) below chip 1, a ``CHIP_GAP`` apart, both sharing the
    pointing; ``dither`` moves the pointing by (x, y) pixels."""
    ny, nx = shape
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [field.ra, field.dec]
    scale = UVIS_SCALE / 3600.0
    theta = np.radians(field.orient)
    w.wcs.cd = scale * np.array([[-np.cos(theta), np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    row0 = ny + CHIP_GAP / 2 if chip_index == 0 else -CHIP_GAP / 2  # reference point sits in the gap
    w.wcs.crpix = [nx / 2 + 0.5 + dither[0], row0 + 0.5 + dither[1]]
    return w


def star_field(field: Field, n: int, shape: tuple[int, int], seed: int = 1) -> Field:
    """``field`` with ``n`` stars scattered over the area both chips cover (minus a margin)."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    coords = []
    for chip in (0, 1):
        w = chip_wcs(field, chip, shape, (0.0, 0.0))
        x = rng.uniform(12, nx - 12, n // 2 + chip * (n % 2))
        y = rng.uniform(12, ny - 12, x.size)
        coords.extend(zip(*w.all_pix2world(x, y, 0), strict=True))
    fluxes = 10 ** rng.uniform(3.7, 5.0, len(coords))
    stars = tuple(Star(float(r), float(d), float(f)) for (r, d), f in zip(coords, fluxes, strict=True))
    return Field(field.ra, field.dec, field.orient, stars)


def _pixel_integral(centre: float, grid: np.ndarray) -> np.ndarray:
    """The Gaussian PSF integrated over each pixel along one axis (so centroids are unbiased)."""
    lo = (grid - 0.5 - centre) / (np.sqrt(2) * PSF_SIGMA)
    hi = (grid + 0.5 - centre) / (np.sqrt(2) * PSF_SIGMA)
    return 0.5 * (erf(hi) - erf(lo))


def _render(w: WCS, shape: tuple[int, int], stars: tuple[Star, ...]) -> np.ndarray:
    ny, nx = shape
    img = np.zeros(shape, np.float64)
    if not stars:
        return img
    x, y = w.all_world2pix([s.ra for s in stars], [s.dec for s in stars], 0)
    half = 6
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1]
    for xs, ys, s in zip(x, y, stars, strict=True):
        ix, iy = round(float(xs)), round(float(ys))
        if not (-half <= ix < nx + half and -half <= iy < ny + half):
            continue
        stamp = s.flux * _pixel_integral(xs, ix + xx) * _pixel_integral(ys, iy + yy)
        y0, y1, x0, x1 = iy - half, iy + half + 1, ix - half, ix + half + 1
        sy0, sx0 = max(0, -y0), max(0, -x0)
        sy1, sx1 = stamp.shape[0] - max(0, y1 - ny), stamp.shape[1] - max(0, x1 - nx)
        img[max(0, y0):min(ny, y1), max(0, x0):min(nx, x1)] += stamp[sy0:sy1, sx0:sx1]
    return img


def write_flt(
    path: Path,
    field: Field,
    *,
    shape: tuple[int, int] = (200, 256),
    dither: tuple[float, float] = (0.0, 0.0),
    exptime: float = 400.0,
    sky: float = 30.0,
    cosmic_rays: int = 0,
    asn_id: str = "NONE",
    seed: int = 0,
    filter_name: str = "F606W",
) -> Path:
    """Write a two-chip UVIS ``_flt``/``_flc`` (electrons) of ``field`` to ``path``; return it."""
    rng = np.random.default_rng(seed)
    rootname = path.name.split("_")[0].lower()
    ny, nx = shape
    prim = fits.Header()
    for key, value in {
        "NEXTEND": 6, "FILENAME": path.name, "FILETYPE": "SCI", "TELESCOP": "HST", "INSTRUME": "WFC3",
        "EQUINOX": 2000.0, "ROOTNAME": rootname, "IMAGETYP": "EXT", "TARGNAME": "SIM-FIELD",
        "RA_TARG": field.ra, "DEC_TARG": field.dec, "PROPOSID": 17001, "LINENUM": "01.001",
        "DATE-OBS": "2024-03-01", "TIME-OBS": "12:00:00", "EXPSTART": 60370.5,
        "EXPEND": 60370.5 + exptime / 86400, "EXPTIME": exptime, "EXPFLAG": "NORMAL", "DARKTIME": exptime + 3,
        "PA_V3": (field.orient - 44.7) % 360, "POSTARG1": 0.0, "POSTARG2": 0.0,
        "OPUS_VER": "owlpipe-test", "CAL_VER": "owl-builtin 0.1", "CSYS_VER": "owlpipe 0.1", "PROCTIME": 60371.0,
        "OBSTYPE": "IMAGING", "OBSMODE": "ACCUM", "SUBARRAY": False, "DETECTOR": "UVIS", "FILTER": filter_name,
        "APERTURE": "UVIS", "CRSPLIT": 1, "DRIZCORR": "PERFORM", "FLSHCORR": "OMIT", "PCTECORR": "OMIT",
        "MDRIZTAB": "N/A", "IDCTAB": "N/A", "CCDAMP": "ABCD", "CCDGAIN": 1.5,
        **{f"ATODGN{a}": 1.56 for a in "ABCD"}, **{f"READNSE{a}": 3.1 for a in "ABCD"},
        "ASN_ID": asn_id.upper(), "ASN_TAB": f"{asn_id.lower()}_asn.fits" if asn_id != "NONE" else "NONE",
        "ASN_MTYP": "EXP-DTH" if asn_id != "NONE" else "", "CRDS_CTX": "hst_0001.pmap",
        "PHOTFLAM": 1.8e-19, "PHOTZPT": -21.1, "PHOTPLAM": 5887.0, "PHOTBW": 670.0,
    }.items():
        prim[key] = value
    hdus: list[fits.hdu.base.ExtensionHDU] = []
    for index, ccdchip in enumerate((2, 1)):
        w = chip_wcs(field, index, shape, dither)
        signal = _render(w, shape, field.stars) + sky
        sci = rng.poisson(np.clip(signal, 0, None)).astype(np.float32) + rng.normal(0, 3.1, shape).astype(np.float32)
        dq = np.zeros(shape, np.int16)
        dq[rng.integers(0, ny, 5), rng.integers(0, nx, 5)] = 16  # hot pixels
        for _ in range(cosmic_rays):
            y, x = rng.integers(2, ny - 2), rng.integers(2, nx - 2)
            sci[y:y + 2, x] += np.float32(rng.uniform(2000, 8000))
        hdr = w.to_header()
        for key in ("WCSAXES", "MJDREF", "DATEREF", "MJD-OBS", "LONPOLE", "LATPOLE", "RADESYS"):
            hdr.remove(key, ignore_missing=True)
        cd = w.wcs.cd
        for (i, j), v in np.ndenumerate(cd):
            hdr[f"CD{i + 1}_{j + 1}"] = v
        for key in [k for k in hdr if k.startswith(("PC", "CDELT"))]:
            del hdr[key]
        hdr.update({
            "EXTNAME": "SCI", "EXTVER": index + 1, "ROOTNAME": rootname, "EXPNAME": rootname, "BUNIT": "ELECTRONS",
            "CCDCHIP": ccdchip, "LTV1": 0.0, "LTV2": 0.0, "LTM1_1": 1.0, "LTM2_2": 1.0,
            "ORIENTAT": field.orient, "VAFACTOR": 1.0, "IDCSCALE": UVIS_SCALE, "IDCTHETA": 45.0,
            "IDCXREF": nx / 2, "IDCYREF": ny / 2, **_V2V3[ccdchip],
            "MEANDARK": 1.0, "NGOODPIX": int((dq == 0).sum()), "SDQFLAGS": 31743, "GOODMIN": float(sci.min()),
            "GOODMAX": float(sci.max()), "CENTERA1": 2104, "CENTERA2": 1036, "SIZAXIS1": nx, "SIZAXIS2": ny,
            "BINAXIS1": 1, "BINAXIS2": 1, "PHOTMODE": f"WFC3 UVIS{ccdchip} {filter_name}", "PHOTFLAM": 1.8e-19,
            "WCSNAME": "OWL-SIM",
        })
        err = np.sqrt(np.clip(signal, 1, None) + 3.1 ** 2).astype(np.float32)
        ext = {"EXTVER": index + 1, "ROOTNAME": rootname, "BUNIT": "ELECTRONS"}
        hdus += [fits.ImageHDU(sci, hdr, name="SCI"),
                 fits.ImageHDU(err, fits.Header({**ext, **{k: hdr[k] for k in _WCS_KEYS}}), name="ERR"),
                 fits.ImageHDU(dq, fits.Header({**ext, **{k: hdr[k] for k in _WCS_KEYS}}), name="DQ")]
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([fits.PrimaryHDU(header=prim), *hdus]).writeto(path, overwrite=True)
    return path


#: Reference positions of the UVIS chips in the telescope's V2/V3 frame (arcsec, from real headers).
_V2V3 = {2: {"IDCV2REF": -27.4596, "IDCV3REF": -33.2604}, 1: {"IDCV2REF": 30.642796, "IDCV3REF": 25.242006}}
_WCS_KEYS = ("CTYPE1", "CTYPE2", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CD1_1", "CD1_2", "CD2_1", "CD2_2")


def measured_offsets(drz: Path, stars: tuple[Star, ...], box: int = 4) -> np.ndarray:
    """Distance (pixels) between each star's centroid in a drizzled product and where its WCS puts it.

    Only stars whose box lies fully on good (weighted) pixels are measured.
    """
    with fits.open(drz) as hdul:
        sci = hdul["SCI"].data.astype(np.float64)
        wht = hdul["WHT"].data
        w = WCS(hdul["SCI"].header)
    x, y = w.all_world2pix([s.ra for s in stars], [s.dec for s in stars], 0)
    out = []
    ny, nx = sci.shape
    for xs, ys in zip(x, y, strict=True):
        ix, iy = round(float(xs)), round(float(ys))
        if not (box <= ix < nx - box and box <= iy < ny - box):
            continue
        cut = sci[iy - box:iy + box + 1, ix - box:ix + box + 1]
        if (wht[iy - box:iy + box + 1, ix - box:ix + box + 1] <= 0).any():
            continue
        ring = np.concatenate([cut[0], cut[-1], cut[1:-1, 0], cut[1:-1, -1]])
        flux = np.clip(cut - np.median(ring), 0, None)
        yy, xx = np.mgrid[iy - box:iy + box + 1, ix - box:ix + box + 1]
        cx, cy = (flux * xx).sum() / flux.sum(), (flux * yy).sum() / flux.sum()
        out.append(np.hypot(cx - xs, cy - ys))
    return np.array(out)
