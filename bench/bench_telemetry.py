"""Pod telemetry figures on one full-frame WFC3/UVIS exposure (2 chips of 4206 x 2070 uint16).

Goals (issue 3): encoding a pod and 2FITS-decoding it each under 1 s on one core. The exposure
comes from the simulator (its own time is not measured here).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from astropy.io import fits

from bench.common import Result, median_time
from pipeline.core.config import load_instrument_defaults
from pipeline.core.fsutil import atomic_write_fits
from pipeline.science.telemetry import decode_pod, scan_pod, write_pod
from pipeline.science.telemetry.rawfits import calibration_switches, raw_hdulist, spt_hdulist
from pipeline.simulate import iter_downlink


def full_frame_uvis() -> fits.HDUList:
    """The first exposure of a one-association, full-frame WFC3 downlink."""
    asn = next(iter_downlink(seed=1, size="full", n_associations=1, instruments=("wfc3",)))
    return asn.members[0].raw


def run() -> list[Result]:
    raw = full_frame_uvis()
    rootname = raw[0].header["ROOTNAME"]
    defaults = load_instrument_defaults()["wfc3"]
    switches = calibration_switches(defaults, "wfc3", "UVIS", None)
    with tempfile.TemporaryDirectory(prefix="owl-bench-tel-") as tmp:
        folder = Path(tmp)
        encode_s, encode_all = median_time(lambda: write_pod(raw, folder), repeats=5)
        pod = folder / f"{rootname}.pod"
        scan_s, _ = median_time(lambda: scan_pod(pod), repeats=5)

        def two_fits() -> None:
            decoded = decode_pod(pod)
            atomic_write_fits(raw_hdulist(decoded, filename=f"{rootname}_raw.fits", switches=switches,
                                          header_defaults=defaults.get("header", {}),
                                          asn_keywords={"ASN_ID": "NONE"}), folder / f"{rootname}_raw.fits")
            atomic_write_fits(spt_hdulist(decoded, filename=f"{rootname}_spt.fits"), folder / f"{rootname}_spt.fits")

        decode_s, decode_all = median_time(two_fits, repeats=5)
        with fits.open(folder / f"{rootname}_raw.fits") as out:
            if not all(np.array_equal(out["SCI", c].data, raw["SCI", c].data) for c in (1, 2)):
                raise RuntimeError("2FITS pixels differ from the simulator's raw: the round trip is broken")
        size = pod.stat().st_size
    details = {"pod_bytes": size}
    return [
        Result("pod encode + write, full-frame UVIS", encode_s, "s", goal=1.0,
               details={**details, "runs": encode_all}),
        Result("2FITS decode pod -> _raw + _spt, full-frame UVIS", decode_s, "s", goal=1.0,
               details={**details, "runs": decode_all}),
        Result("pod validation (receipt scan), full-frame UVIS", scan_s, "s", details=details),
        Result("pod size, full-frame UVIS", size / 2**20, "MiB"),
    ]
