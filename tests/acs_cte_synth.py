"""A full-frame or one-amp subarray ACS/WFC ``_blv_tmp`` (trimmed, in electrons: what ACSCCD hands to ACSCTE) with stars
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


#: CCDTAB rows (CCDAMP, CCDCHIP, AMPX): both amps of a chip, then one amp as real WFC tables have
#: them (AMPX 4096 for the amp at the chip's left end, 0 for the one at its right end).
CCD_ROWS = (("ABCD", 1, 2048), ("ABCD", 2, 2048), ("A", 1, 4096), ("B", 1, 0), ("C", 2, 4096), ("D", 2, 0))


def write_ccdtab(path: Path) -> Path:
    """WFC rows of :data:`CCD_ROWS` (gain 2), AMPY 2068."""
    n = len(CCD_ROWS)
    cols = [fits.Column(name="CCDAMP", format="4A", array=[r[0] for r in CCD_ROWS]),
            fits.Column(name="CCDCHIP", format="I", array=[r[1] for r in CCD_ROWS]),
            fits.Column(name="CCDGAIN", format="E", array=[GAIN] * n),
            fits.Column(name="BINAXIS1", format="I", array=[1] * n),
            fits.Column(name="BINAXIS2", format="I", array=[1] * n)]
    for a in "ABCD":
        cols += [fits.Column(name=f"CCDOFST{a}", format="I", array=[3] * n),
                 fits.Column(name=f"CCDBIAS{a}", format="E", array=[2200.0] * n),
                 fits.Column(name=f"ATODGN{a}", format="E", array=[GAIN] * n),
                 fits.Column(name=f"READNSE{a}", format="E", array=[READNOISE[a]] * n)]
    cols += [fits.Column(name="AMPX", format="I", array=[r[2] for r in CCD_ROWS]),
             fits.Column(name="AMPY", format="I", array=[2068] * n),
             fits.Column(name="SATURATE", format="E", array=[84700.0] * n),
             fits.Column(name="ATODSAT", format="J", array=[65535] * n),
             fits.Column(name="OVRHFLS", format="E", array=[0.0] * n),
             fits.Column(name="OVRHUFLS", format="E", array=[0.0] * n)]
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
          nstars: int = 600, sky: float = 15.0, ccdamp: str = "ABCD", ltv1: float = 0.0,
          **pctetab: object) -> Path:
    """Write the blv, PCTETAB and CCDTAB into ``root`` once (the references named ``jref$...``: set
    ``jref`` to ``root/``); return the blv's path. ``ccdamp`` one letter: a one-amp subarray of
    ``shape`` on that amp's chip (SUBARRAY = T, LTV1 ``ltv1``), as ACSCCD leaves it (prescan trimmed)."""
    blv = root / f"{ROOTNAME}_blv_tmp.fits"
    if blv.is_file():
        return blv
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pcte = write_acs_pctetab(root / "wfc_cte.fits", **pctetab)  # type: ignore[arg-type]
    ccd = write_ccdtab(root / "wfc_ccd.fits")
    subarray = ccdamp != "ABCD"
    chips = ((1, 1 if ccdamp in "AB" else 2),) if subarray else ((1, 2), (2, 1))
    primary = fits.PrimaryHDU()
    primary.header.update(INSTRUME="ACS", DETECTOR="WFC", ROOTNAME=ROOTNAME.upper(),
                          APERTURE=f"WFC{chips[0][1]}{ccdamp}-SUB" if subarray else "WFC",
                          OBSTYPE="IMAGING", FILTER1="F606W", FILTER2="CLEAR2L", EXPTIME=500.0,
                          EXPSTART=expstart, EXPEND=expstart + 0.006, NEXTEND=3 * len(chips), SUBARRAY=subarray,
                          CCDAMP=ccdamp, CCDGAIN=GAIN, BINAXIS1=1, BINAXIS2=1, DQICORR="COMPLETE", ATODCORR="OMIT",
                          BLEVCORR="COMPLETE", BIASCORR="COMPLETE", PCTECORR="PERFORM", CRCORR="OMIT",
                          FLSHCORR="OMIT", DARKCORR="PERFORM", FLATCORR="OMIT", PHOTCORR="OMIT",
                          PCTETAB=f"jref${pcte.name}", CCDTAB=f"jref${ccd.name}")
    hdus: list = [primary]
    for extver, chip in chips:
        rn = float(np.mean([READNOISE[a] for a in ("CD" if chip == 2 else "AB") if a in ccdamp]))
        sci = chip_image(rng, shape, sky=sky, nstars=nstars, rn=rn)
        err = np.sqrt(np.maximum(sci, 0) + rn * rn).astype(np.float32)
        for name, data in (("SCI", sci), ("ERR", err), ("DQ", np.zeros(shape, np.int16))):
            h = fits.ImageHDU(data, name=name, ver=extver)
            h.header.update(CCDCHIP=chip, LTV1=ltv1, LTV2=0.0, BUNIT="ELECTRONS")
            hdus.append(h)
    fits.HDUList(hdus).writeto(blv, overwrite=True)
    return blv
