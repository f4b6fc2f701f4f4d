"""ACSSUM: the sum of a REPEAT association's calibrated MAMA exposures into ``<product>_sfl.fits``.

calacs runs it after ACS2D when RPTCORR = PERFORM and the association has >= 2 members
(``acssum.c``). The first ``_flt`` is the template; every later one (its imset of the same
CCDCHIP) is added line by line in float32: SCI summed, ERR squared, the variances summed and the
square root taken again, DQ OR-ed. The statistics use the *primary* SDQFLAGS (default 65535, i.e.
every bit, where ACS2D used the SCI header's). The primary header gets RPTCORR = COMPLETE, NCOMBINE,
the summed EXPTIME, the last member's EXPEND, the product's ROOTNAME (upper case) and ASN_MTYP; each
extension gets EXPNAME = the product's rootname.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pipeline.core.errors import BadInput
from pipeline.science.calib.context import PERFORM
from pipeline.science.calib.imageio import Exposure, read_exposure, read_primary
from pipeline.science.calib.products import write_product
from pipeline.science.calib.steps.stats import image_stats

LogSink = Callable[[str, str], None]
MAX_DQ = 65535


def wants_sum(flts: Sequence[Path]) -> bool:
    """RPTCORR = PERFORM in the first member and at least two members (``SciFlags``)."""
    return len(flts) >= 2 and str(read_primary(flts[0]).get("RPTCORR", "")).strip().upper() == PERFORM


def _required(exposure: Exposure, keyword: str) -> float:
    value = exposure.primary.get(keyword)
    if value is None:
        raise BadInput(f"required keyword {keyword} is missing (ACSSUM)", path=exposure.path, keyword=keyword)
    return float(value)


def sum_repeats(flts: Sequence[Path], out: Path, mtype: str, *, log: LogSink | None = None) -> Path:
    """Sum the members' ``_flt`` files into ``out`` (``<product>_sfl.fits``) as calacs's ACSSUM does."""
    first = read_exposure(flts[0])
    if "NRPTEXP" not in first.primary:
        raise BadInput("required keyword NRPTEXP is missing (ACSSUM)", path=first.path, keyword="NRPTEXP")
    if int(first.primary["NRPTEXP"]) != len(flts) and log:
        log("warn", f"{len(flts)} exposures will be summed, however, NRPTEXP was {first.primary['NRPTEXP']}.")
    sdqflags = int(first.primary.get("SDQFLAGS", MAX_DQ)) & 0xFFFF
    exptime = _required(first, "EXPTIME")
    expend = _required(first, "EXPEND")
    variances = [im.err * im.err for im in first.imsets]
    for path in flts[1:]:
        other = read_exposure(path)
        exptime += _required(other, "EXPTIME")
        expend = _required(other, "EXPEND")
        by_chip = {im.chip: im for im in other.imsets}
        for im, var in zip(first.imsets, variances, strict=True):
            add = by_chip.get(im.chip)
            if add is None or add.sci.shape != im.sci.shape:
                raise BadInput(f"no imset of CCDCHIP {im.chip} and shape {im.sci.shape} to sum", path=path,
                               keyword="CCDCHIP")
            im.sci += add.sci
            var += add.err * add.err
            im.dq |= add.dq
    root = out.name.split("_")[0].lower()
    for im, var in zip(first.imsets, variances, strict=True):
        im.err = np.sqrt(var)
        sci_kw, err_kw = image_stats(im.sci, im.err, im.dq, sdqflags)
        im.sci_header.update(sci_kw)
        im.err_header.update(err_kw)
        for hdr in (im.sci_header, im.err_header, im.dq_header):
            hdr["EXPNAME"] = root
    first.primary["HISTORY"] = "RPTCORR complete"
    first.primary["HISTORY"] = "Statistics computed after rptcorr."
    updates = {"RPTCORR": "COMPLETE", "NCOMBINE": len(flts), "EXPTIME": exptime, "EXPEND": expend,
               "ASN_MTYP": mtype, "ROOTNAME": root.upper()}
    if log:
        log("info", f"ACSSUM: {len(flts)} exposures summed into {out.name} (EXPTIME {exptime:g} s)")
    return write_product(first, out, switches={}, primary_updates=updates)
