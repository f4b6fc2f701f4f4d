"""A full-frame ACS/WFC ``_blv_tmp`` (trimmed, in electrons: what ACSCCD hands to ACSCTE) with stars
on a low sky, plus the PCTETAB (the real 20-extension layout) and a WFC CCDTAB, for comparisons of
the built-in ACSCTE with calacs's acscte.e."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.simulate.ctefiles import write_acs_pctetab

ROOTNAME = "jcte01abq"
READNOISE = {"A": 4.6, "B": 3.9, "C": 4.25, "D": 4.05}
GAIN = 2.0


def write_ccdtab(path: Path) -> Path:
    """Two WFC rows (CCDCHIP 1 and 2, CCDAMP ABCD, gain 2), AMPX 2048, AMPY 2068."""
    cols = [fits.Column(name="CCDAMP", format="4A", array=["ABCD", "ABCD"]),
            fits.Column(name="CCDCHIP", format="I", array=[1, 2]),
            fits.Column(name="CCDGAIN", format="E", array=[GAIN, GAIN]),
            fits.Column(name="BINAXIS1", format="I", array=[1, 1]),
            fits.Column(name="BINAXIS2", format="I", array=[1, 1])]
    for a in "ABCD":
        cols += [fits.Column(name=f"CCDOFST{a}", format="I", array=[3, 3]),
                 fits.Column(name=f"CCDBIAS{a}", format="E", array=[2200.0, 2200.0]),
                 fits.Column(name=f"ATODGN{a}", format="E", array=[GAIN, GAIN]),
                 fits.Column(name=f"READNSE{a}", format="E", array=[READNOISE[a]] * 2)]
    cols += [fits.Column(name="AMPX", format="I", array=[2048, 2048]),
             fits.Column(name="AMPY", format="I", array=[2068, 2068]),
             fits.Column(name="SATURATE", format="E", array=[84700.0, 84700.0]),
             fits.Column(name="ATODSAT", format="J", array=[65535, 65535]),
             fits.Column(name="OVRHFLS", format="E", array=[0.0, 0.0]),
             fits.Column(name="OVRHUFLS", format="E", array=[0.0, 0.0])]
    primary = fits.PrimaryHDU()
    primary.header.update(INSTRUME="ACS", DETECTOR="WFC", FILETYPE="CCD PARAMETERS", PEDIGREE="INFLIGHT 01/01/2020",
                          USEAFTER="Mar 01 2002 00:00:00", DESCRIP="synthetic WFC CCD parameters")
    fits.HDUList([primary, fits.BinTableHDU.from_columns(cols, name="CCDTAB")]).writeto(path, overwrite=True)
    return path


def chip_image(rng: np.random.Generator, shape: tuple[int, int], *, sky: float, nstars: int,
               rn: float) -> np.ndarray:
    ny, nx = shape
    img = np.full(shape, sky)
    yy, xx = np.mgrid[-3:4, -3:4]
    psf = np.exp(-(xx ** 2 + yy ** 2) / (2 * 1.1 ** 2))
    psf /= psf.sum()
    for _ in range(nstars):
        y, x = rng.integers(4, ny - 4), rng.integers(4, nx - 4)
        img[y - 3:y + 4, x - 3:x + 4] += psf * 10 ** rng.uniform(2.0, 5.0)
    img = rng.poisson(np.maximum(img, 0)).astype(np.float64)
    return (img + rng.normal(0.0, rn, shape)).astype(np.float32)


def build(root: Path, *, shape: tuple[int, int] = (2048, 4096), expstart: float = 58500.0, seed: int = 3,
          nstars: int = 600, sky: float = 15.0, **pctetab: object) -> Path:
    """Write the blv, PCTETAB and CCDTAB into ``root`` once (the references named ``jref$...``: set
    ``jref`` to ``root/``); return the blv's path."""
    blv = root / f"{ROOTNAME}_blv_tmp.fits"
    if blv.is_file():
        return blv
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pcte = write_acs_pctetab(root / "wfc_cte.fits", **pctetab)  # type: ignore[arg-type]
    ccd = write_ccdtab(root / "wfc_ccd.fits")
    primary = fits.PrimaryHDU()
    primary.header.update(INSTRUME="ACS", DETECTOR="WFC", ROOTNAME=ROOTNAME.upper(), APERTURE="WFC",
                          OBSTYPE="IMAGING", FILTER1="F606W", FILTER2="CLEAR2L", EXPTIME=500.0,
                          EXPSTART=expstart, EXPEND=expstart + 0.006, NEXTEND=6, SUBARRAY=False, CCDAMP="ABCD",
                          CCDGAIN=GAIN, BINAXIS1=1, BINAXIS2=1, DQICORR="COMPLETE", ATODCORR="OMIT",
                          BLEVCORR="COMPLETE", BIASCORR="COMPLETE", PCTECORR="PERFORM", CRCORR="OMIT",
                          FLSHCORR="OMIT", DARKCORR="PERFORM", FLATCORR="OMIT", PHOTCORR="OMIT",
                          PCTETAB=f"jref${pcte.name}", CCDTAB=f"jref${ccd.name}")
    hdus: list = [primary]
    for extver, chip in ((1, 2), (2, 1)):
        rn = float(np.mean([READNOISE[a] for a in ("CD" if chip == 2 else "AB")]))
        sci = chip_image(rng, shape, sky=sky, nstars=nstars, rn=rn)
        err = np.sqrt(np.maximum(sci, 0) + rn * rn).astype(np.float32)
        for name, data in (("SCI", sci), ("ERR", err), ("DQ", np.zeros(shape, np.int16))):
            h = fits.ImageHDU(data, name=name, ver=extver)
            h.header.update(CCDCHIP=chip, LTV1=0.0, LTV2=0.0, BUNIT="ELECTRONS")
            hdus.append(h)
    fits.HDUList(hdus).writeto(blv, overwrite=True)
    return blv
