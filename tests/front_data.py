"""Small synthetic exposures and downlinks for the front-stage tests (no simulator needed).

They follow the raw-file layout (primary + SCI/ERR/DQ per chip, uint16 pixels) at a few dozen
pixels a side, so every test stays fast; the simulator round trip lives in its own test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.science.telemetry.dan import write_downlink


@dataclass
class Exposure:
    rootname: str
    raw: fits.HDUList
    truth: object = None


@dataclass
class Association:
    name: str
    asn_type: str
    members: list[Exposure] = field(default_factory=list)


def synthetic_raw(rootname: str, *, shape: tuple[int, int] = (37, 52), chips: int = 2,
                  instrument: str = "WFC3", seed: int = 0, asn_id: str = "NONE") -> fits.HDUList:
    """A raw-format exposure with random DN, realistic keywords and NAXIS=0 ERR/DQ."""
    rng = np.random.default_rng(seed)
    detector = "UVIS" if instrument == "WFC3" else "WFC"
    primary = fits.Header()
    for key, value in [("ROOTNAME", rootname), ("INSTRUME", instrument), ("DETECTOR", detector),
                       ("TELESCOP", "HST"), ("FILTER", "F606W"), ("EXPTIME", 30.0),
                       ("EXPSTART", 58000.25), ("EXPEND", 58000.25035), ("CCDAMP", "ABCD"),
                       ("CCDGAIN", 1.5), ("SUBARRAY", True), ("ASN_ID", asn_id.upper()),
                       ("TARGNAME", "NGC104"), ("PROPOSID", 11665), ("DARKCORR", "PERFORM"),
                       ("FLATCORR", "OMIT")]:
        primary[key] = value
    primary["HISTORY"] = "synthetic exposure for owlpipe front-stage tests"
    hdus: list[fits.hdu.base.ExtensionHDU | fits.PrimaryHDU] = [fits.PrimaryHDU(header=primary)]
    for chip in range(1, chips + 1):
        data = rng.integers(2000, 3000, shape, dtype=np.uint16)
        data[min(3, shape[0] - 1), min(5, shape[1] - 1)] = 65535
        sci = fits.ImageHDU(data, name="SCI", ver=chip)
        sci.header["CCDCHIP"] = 3 - chip
        sci.header["LTV1"] = 25.0
        sci.header["CRVAL1"] = 6.0 + chip * 1e-3
        hdus.append(sci)
        for extname in ("ERR", "DQ"):
            hdus.append(fits.ImageHDU(name=extname, ver=chip))
    return fits.HDUList(hdus)


def dither_pair(asn: str = "ib1f01010", instrument: str = "WFC3", seed: int = 0) -> Association:
    prefix = asn[:6]
    return Association(asn, "DITHER", [
        Exposure(f"{prefix}{s}q", synthetic_raw(f"{prefix}{s}q", instrument=instrument, seed=seed + i,
                                                asn_id=asn))
        for i, s in enumerate(("a1", "a2"))
    ])


def singleton(rootname: str = "ib1f02b1q", seed: int = 7) -> Association:
    return Association(rootname, "SINGLETON", [Exposure(rootname, synthetic_raw(rootname, seed=seed))])


def write_test_downlink(inbox: Path, downlink_id: str = "dltest-0001") -> Path:
    """One dither pair plus one singleton: three pods and the DAN."""
    return write_downlink([dither_pair(), singleton()], inbox, downlink_id)


def through_2fits(site, downlink: list, fits_dir: Path, downlink_id: str):  # type: ignore[no-untyped-def]
    """Write ``downlink`` as FITS into ``fits_dir`` and as pods into the site's inbox, run receipt,
    INGEST and 2FITS (each ``c``); yield (association, 2FITS raw, simulator raw) per member."""
    from pipeline.core.osf import Blackboard
    from pipeline.core.stage import run_stage
    from pipeline.simulate.downlink import write_fits
    from stages.dan_receipt import run as receive
    from stages.ingest import Ingest
    from stages.twofits import TwoFits

    write_fits(downlink, fits_dir)
    assert receive([str(write_downlink(downlink, site.areas.inbox, downlink_id))]) == 0
    bb = Blackboard(site.database_url)
    for asn in downlink:
        assert run_stage(Ingest, [asn.name]) == 0
        assert run_stage(TwoFits, [asn.name]) == 0
        assert bb.get(asn.name).status[:3] == "ccc"
        for member in asn.members:
            yield asn, site.areas.work / asn.name / f"{member.rootname}_raw.fits", \
                fits_dir / f"{member.rootname}_raw.fits"
