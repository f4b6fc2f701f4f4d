"""WFC3 IDCTABs (distortion polynomial coefficients) in the real STScI table layout.

The layout is the real ``w3m18525i_idc.fits`` (IR) / ``*_idc.fits`` (UVIS) one that stwcs's
``readIDCtab`` reads: primary keywords INSTRUME/DETECTOR/FILETYPE/NORDER, one row per chip, direction
and filter with DETCHIP, DIRECTION, FILTER, XSIZE, YSIZE, XREF, YREF, V2REF, V3REF, SCALE and the
order-4 coefficients CX10..CX44 / CY10..CY44 (arcsec; term ``ij`` multiplies x**j * y**(i-j)).

Values: the linear terms, reference pixels, V2/V3 and scales are the real ones recorded in archive
headers (OCX10/OCX11/OCY10/OCY11, IDCXREF, IDCV2REF … of ``ib4606cpq`` (IR, w3m18525i) and
``ib4606c5q`` (UVIS)); the IR higher-order terms are the real w3m18525i headerlet's SIP polynomial
(``ia1d23dmq_flt_hlet``) carried through those linear terms, an approximation. UVIS rows carry the
linear terms only. The pipeline records the IDCTAB (RF) but drizzles with ``updatewcs=False``, so
these coefficients are never applied to the simulator's pure-TAN WCS.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from astropy.io import fits

from pipeline.simulate.irmodel import IR_FILTERS
from pipeline.simulate.photometry import FILTERS

NORDER = 4


class Chip(NamedTuple):
    """One DETCHIP's geometry and linear terms (OCX10, OCX11, OCY10, OCY11)."""

    detchip: int
    size: tuple[int, int]
    ref: tuple[float, float]
    v2v3: tuple[float, float]
    scale: float
    linear: tuple[float, float, float, float]


CHIPS: dict[str, tuple[Chip, ...]] = {
    "IR": (Chip(1, (1014, 1014), (507.0, 507.0), (1.019, -0.507), 0.1282500028610229,
                (0.000776120403315872, 0.1354107111692429, 0.1209510564804077, -0.00042132250382564)),),
    "UVIS": (Chip(1, (4096, 2051), (2048.0, 1026.0), (30.642796, 25.242006), 0.03962000086903572,
                  (0.0001285237231059, 0.03954129666090012, 0.03936995193362236, 0.002580430591478944)),
             Chip(2, (4096, 2051), (2048.0, 1026.0), (-27.4596, -33.2604), 0.03962000086903572,
                  (0.000175079636392183, 0.03977800905704498, 0.03984111174941063, 0.002336987992748618))),
}

#: SIP A/B terms (pixels) of the real IR headerlet ``ia1d23dmq_flt_hlet.fits`` (WCSNAME IDC_w3m18525i).
IR_SIP_A = {(1, 1): 2.44489619913889e-05, (3, 0): -1.8769691205859e-10, (0, 4): -2.085205077147e-13,
            (0, 3): 2.65011000430244e-11, (4, 0): -3.1314754837293e-13, (2, 2): 5.99856272799014e-15,
            (1, 2): 5.07616164062598e-11, (3, 1): 5.25748787891111e-13, (2, 0): -1.8678411786277e-07,
            (2, 1): 9.33802326056672e-11, (1, 3): 5.55221560333543e-13, (0, 2): 4.73630640333079e-08}
IR_SIP_B = {(1, 3): -6.9677270201133e-15, (2, 1): -2.8558390691514e-10, (1, 1): -2.0379403931148e-07,
            (3, 0): 3.66824943640799e-11, (3, 1): 1.00607112230593e-13, (4, 0): -6.4384058620497e-13,
            (2, 0): 6.97816138011029e-06, (2, 2): -1.168362116087e-13, (1, 2): 2.35150691092754e-11,
            (0, 3): -2.0092851573342e-10, (0, 4): 7.52827599670567e-13, (0, 2): 2.99875048026693e-05}


def coefficients(detector: str, chip: Chip) -> dict[str, float]:
    """CX/CY ij for one row: linear terms as recorded, higher orders (IR) as X = L(x + A, y + B)."""
    cx10, cx11, cy10, cy11 = chip.linear
    out: dict[str, float] = {}
    for i in range(1, NORDER + 1):
        for j in range(i + 1):
            if i == 1:
                cx, cy = (cx10, cy10) if j == 0 else (cx11, cy11)
            elif detector == "IR":
                a, b = IR_SIP_A.get((j, i - j), 0.0), IR_SIP_B.get((j, i - j), 0.0)
                cx, cy = cx11 * a + cx10 * b, cy11 * a + cy10 * b
            else:
                cx = cy = 0.0
            out[f"CX{i}{j}"], out[f"CY{i}{j}"] = cx, cy
    return out


def idc_table(detector: str) -> fits.HDUList:
    """The IDCTAB of ``detector`` ('IR' or 'UVIS'): FORWARD rows per chip and simulated filter."""
    filters = sorted(IR_FILTERS) if detector == "IR" else sorted(FILTERS["wfc3"])
    rows = [(chip, f) for chip in CHIPS[detector] for f in filters]
    cols = [fits.Column(name="DETCHIP", format="I", array=np.array([c.detchip for c, _ in rows])),
            fits.Column(name="DIRECTION", format="8A", array=np.array(["FORWARD"] * len(rows))),
            fits.Column(name="FILTER", format="8A", array=np.array([f for _, f in rows])),
            fits.Column(name="XSIZE", format="I", array=np.array([c.size[0] for c, _ in rows])),
            fits.Column(name="YSIZE", format="I", array=np.array([c.size[1] for c, _ in rows])),
            fits.Column(name="XREF", format="D", array=np.array([c.ref[0] for c, _ in rows])),
            fits.Column(name="YREF", format="D", array=np.array([c.ref[1] for c, _ in rows])),
            fits.Column(name="V2REF", format="D", array=np.array([c.v2v3[0] for c, _ in rows])),
            fits.Column(name="V3REF", format="D", array=np.array([c.v2v3[1] for c, _ in rows])),
            fits.Column(name="SCALE", format="D", array=np.array([c.scale for c, _ in rows]))]
    coefs = [coefficients(detector, c) for c, _ in rows]
    for axis in ("CX", "CY"):
        cols += [fits.Column(name=k, format="D", array=np.array([r[k] for r in coefs]))
                 for k in coefs[0] if k.startswith(axis)]
    h = fits.Header()
    h["INSTRUME"] = "WFC3"
    h["DETECTOR"] = detector
    h["FILETYPE"] = "DISTORTION COEFFICIENTS"
    h["NORDER"] = (NORDER, "order of the distortion polynomial")
    h["PEDIGREE"] = "INFLIGHT 14/05/2009 14/05/2009"
    h["DESCRIP"] = f"WFC3/{detector} distortion coefficients (owlpipe simulated, real layout)"
    h["COMMENT"] = "owlpipe simulated reference file"
    h["NEXTEND"] = 1
    table = fits.BinTableHDU.from_columns(cols)
    return fits.HDUList([fits.PrimaryHDU(header=h), table])
