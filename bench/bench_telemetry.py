"""Pod telemetry figures on one full-frame WFC3/UVIS exposure (2 chips of 4206 x 2070 uint16).

Goals (issue 3): encoding a pod and 2FITS-decoding it each under 1 s on one core. The exposure
is synthetic noise around a bias level: the codec's cost does not depend on pixel content.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from astropy.io import fits

from bench.common import Result, median_time, peak_rss_mb
from pipeline.config import load_instrument_defaults
from pipeline.fsutil import atomic_write_fits
from pipeline.telemetry import decode_pod, scan_pod, write_pod
from pipeline.telemetry.rawfits import calibration_switches, raw_hdulist, spt_hdulist

ROOTNAME = "ib1f01a1q"


def full_frame_uvis() -> fits.HDUList:
    rng = np.random.default_rng(42)
    primary = fits.PrimaryHDU()
    for key, value in [("ROOTNAME", ROOTNAME), ("INSTRUME", "WFC3"), ("DETECTOR", "UVIS"),
                       ("FILTER", "F606W"), ("EXPTIME", 500.0), ("EXPSTART", 58000.25),
                       ("CCDAMP", "ABCD"), ("CCDGAIN", 1.5), ("SUBARRAY", False)]:
        primary.header[key] = value
    hdus: list = [primary]
    for chip in (1, 2):
        data = (2500 + rng.normal(0, 20, (2070, 4206))).astype(np.uint16)
        sci = fits.ImageHDU(data, name="SCI", ver=chip)
        sci.header["CCDCHIP"] = 3 - chip
        hdus += [sci, fits.ImageHDU(name="ERR", ver=chip), fits.ImageHDU(name="DQ", ver=chip)]
    return fits.HDUList(hdus)


def run() -> list[Result]:
    raw = full_frame_uvis()
    defaults = load_instrument_defaults()["wfc3"]
    switches = calibration_switches(defaults, "wfc3", "UVIS", None)
    with tempfile.TemporaryDirectory(prefix="owl-bench-tel-") as tmp:
        folder = Path(tmp)
        encode_s, encode_all = median_time(lambda: write_pod(raw, folder), repeats=5)
        pod = folder / f"{ROOTNAME}.pod"
        scan_s, _ = median_time(lambda: scan_pod(pod), repeats=5)

        def two_fits() -> None:
            decoded = decode_pod(pod)
            atomic_write_fits(raw_hdulist(decoded, filename=f"{ROOTNAME}_raw.fits", switches=switches,
                                          header_defaults=defaults.get("header", {}),
                                          asn_keywords={"ASN_ID": "NONE"}), folder / f"{ROOTNAME}_raw.fits")
            atomic_write_fits(spt_hdulist(decoded, filename=f"{ROOTNAME}_spt.fits"), folder / f"{ROOTNAME}_spt.fits")

        decode_s, decode_all = median_time(two_fits, repeats=5)
        with fits.open(folder / f"{ROOTNAME}_raw.fits") as out:
            exact = all(np.array_equal(out["SCI", c].data, raw["SCI", c].data) for c in (1, 2))
        size = pod.stat().st_size
    details = {"pod_bytes": size, "peak_rss_mb": round(peak_rss_mb(), 1)}
    return [
        Result("pod encode + write, full-frame UVIS", encode_s, "s", goal=1.0,
               details={**details, "runs": encode_all}),
        Result("2FITS decode pod -> _raw + _spt, full-frame UVIS", decode_s, "s", goal=1.0,
               details={**details, "runs": decode_all, "pixels_exact": exact}),
        Result("pod validation (receipt scan), full-frame UVIS", scan_s, "s", details=details),
        Result("pod size, full-frame UVIS", size / 2**20, "MiB"),
    ]
