"""Reference files for ACS/SBC and ACS/HRC in the real CDBS layouts (calacs reads them as it would
the archive's): tables with the real columns and extension names, images with SCI/ERR/DQ imsets.

Every file says in its DESCRIP/HISTORY that its values are simulated by owlpipe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from astropy.io import fits

SIMULATED = "owlpipe simulated values in the real CDBS layout"
MJD_GRID = (52000.0, 54000.0, 56000.0, 58000.0, 60000.0, 62000.0)


def primary(filetype: str, detector: str, name: str, descrip: str, *, useafter: str = "Mar 01 2002 00:00:00",
            pedigree: str = "INFLIGHT 01/03/2002 01/03/2002") -> fits.Header:
    h = fits.Header()
    h["FILENAME"] = name
    h["FILETYPE"] = filetype
    h["TELESCOP"] = "HST"
    h["INSTRUME"] = "ACS"
    h["DETECTOR"] = detector
    h["USEAFTER"] = useafter
    h["PEDIGREE"] = pedigree
    h["DESCRIP"] = f"{descrip} ({SIMULATED})"[:67]
    h["HISTORY"] = f"Made by owlpipe's synthetic observatory: {SIMULATED}."
    return h


def table(hdr: fits.Header, extname: str, columns: Sequence[fits.Column], **extra: object) -> fits.HDUList:
    t = fits.BinTableHDU.from_columns(list(columns), name=extname)
    for key, value in extra.items():
        t.header[key] = value
    hdr["NEXTEND"] = 1
    return fits.HDUList([fits.PrimaryHDU(header=hdr), t])


def image(hdr: fits.Header, sci: np.ndarray, *, err: np.ndarray | None = None, dq: np.ndarray | None = None,
          sci_keys: Mapping[str, object] | None = None) -> fits.HDUList:
    """One imset (CCDCHIP 1): SCI float32, ERR float32, DQ int16."""
    hdr["NEXTEND"] = 3
    hdus: list = [fits.PrimaryHDU(header=hdr)]
    for extname, data in (("SCI", sci.astype(np.float32)),
                          ("ERR", (np.zeros_like(sci) if err is None else err).astype(np.float32)),
                          ("DQ", (np.zeros(sci.shape, np.int16) if dq is None else dq).astype(np.int16))):
        hdu = fits.ImageHDU(data, name=extname)
        hdu.header["EXTVER"] = 1
        hdu.header["CCDCHIP"] = 1
        for key, value in (sci_keys or {}).items():
            hdu.header[key] = value
        hdus.append(hdu)
    return fits.HDUList(hdus)


def bpixtab(detector: str, name: str, runs: Sequence[tuple[int, int, int, int, int]], size: tuple[int, int],
            ccdamp: str = "N/A") -> fits.HDUList:
    """BPIXTAB: (PIX1, PIX2, LENGTH, AXIS, VALUE) runs, 1-based trimmed coordinates, all chips."""
    n = len(runs)
    col = lambda k: np.array([r[k] for r in runs], np.int16)  # noqa: E731
    columns = [fits.Column(name="CCDAMP", format="4A", array=np.array([ccdamp] * n)),
               fits.Column(name="PIX1", format="I", array=col(0)), fits.Column(name="PIX2", format="I", array=col(1)),
               fits.Column(name="LENGTH", format="I", array=col(2)), fits.Column(name="AXIS", format="I", array=col(3)),
               fits.Column(name="VALUE", format="I", array=col(4)),
               fits.Column(name="CCDCHIP", format="I", array=np.ones(n, np.int16)),
               fits.Column(name="CCDGAIN", format="I", array=np.full(n, -999, np.int16))]
    return table(primary("BAD PIXELS", detector, name, "Bad detector pixels"), "BPX", columns,
                 SIZAXIS1=size[0], SIZAXIS2=size[1])


def imphttab(detector: str, name: str, modes: Mapping[str, tuple[Callable[[float], float], float, float]],
             photzpt: float = -21.1) -> fits.HDUList:
    """IMPHTTAB with PHOTFLAM/PHOTPLAM/PHOTBW, one ``<mode>,mjd#`` row per obsmode interpolated on MJD.

    ``modes``: obsmode (``acs,sbc,f115lp``) -> (PHOTFLAM(mjd), PHOTPLAM, PHOTBW).
    """
    h = primary("IMAGE PHOTOMETRY TABLE", detector, name, "Image photometry table")
    h.update(PARNUM=1, PHOTZPT=photzpt, EXTRAP=True, DBTABLE="IMPHTTAB", SYNSWVER="owlpipe", ORIGIN="owlpipe simulate",
             GRAPHTAB="N/A", COMPTAB="N/A")
    grid = np.array(MJD_GRID)
    hdus: list = [fits.PrimaryHDU(header=h)]
    for k, ext in enumerate(("PHOTFLAM", "PHOTPLAM", "PHOTBW")):
        names = list(modes)
        values = [np.array([modes[m][0](t) if k == 0 else modes[m][k] for t in grid]) for m in names]
        n, vla = len(names), f"PD({grid.size})"
        columns = [fits.Column(name="OBSMODE", format="40A", array=np.array([f"{m},mjd#" for m in names])),
                   fits.Column(name="DATACOL", format="12A", array=np.array([f"{ext}1"] * n)),
                   fits.Column(name=ext, format="D", array=np.zeros(n)),
                   fits.Column(name=f"{ext}1", format=vla, array=np.array(values, dtype=object)),
                   fits.Column(name="PAR1NAMES", format="8A", array=np.array(["MJD#"] * n)),
                   fits.Column(name="PAR1VALUES", format=vla, array=np.array([grid] * n, dtype=object)),
                   fits.Column(name="NELEM1", format="I", array=np.full(n, grid.size)),
                   fits.Column(name="PEDIGREE", format="30A", array=np.array([h["PEDIGREE"]] * n)),
                   fits.Column(name="DESCRIP", format="67A", array=np.array([SIMULATED] * n))]
        hdus.append(fits.BinTableHDU.from_columns(columns, name=ext))
    hdus[0].header["NEXTEND"] = 3
    return fits.HDUList(hdus)


def raw_file(primary_header: fits.Header, data: np.ndarray, sci_keys: Mapping[str, object]) -> fits.HDUList:
    """An archive-layout raw: primary, SCI (counts) with its WCS and readout keywords, and empty
    ERR/DQ extensions (NPIX/PIXVALUE, the SCI WCS repeated)."""
    from pipeline.simulate.headers import constant_header

    sci = fits.ImageHDU(data, name="SCI")
    root = str(primary_header["ROOTNAME"])
    sci.header.insert("EXTNAME", ("INHERIT", True, "inherit the primary header"))  # as archive raws (and 2FITS)
    sci.header.update(EXTVER=1, ROOTNAME=(root, "rootname of the observation set"),
                      EXPNAME=(root, "exposure identifier"), BUNIT=("COUNTS", "brightness units"), WCSAXES=2,
                      **sci_keys)
    sci.header.update(RA_APER=sci.header["CRVAL1"], DEC_APER=sci.header["CRVAL2"], PA_APER=sci.header["ORIENTAT"],
                      VAFACTOR=1.0)
    ny, nx = data.shape
    return fits.HDUList([fits.PrimaryHDU(header=primary_header), sci,
                         *(fits.ImageHDU(header=constant_header(sci.header, e, (ny, nx), b))
                           for e, b in (("ERR", "COUNTS"), ("DQ", "UNITLESS")))])
