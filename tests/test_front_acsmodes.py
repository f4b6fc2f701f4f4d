"""Telemetry for ACS/SBC and ACS/HRC: a raw goes into a pod and 2FITS gives it back, pixels and
flight keywords intact, with the detector's switch defaults from config/instruments/acs.toml."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.core.config import load_instrument_defaults
from pipeline.science.telemetry.decode import decode_pod
from pipeline.science.telemetry.encode import encode_exposure
from pipeline.science.telemetry.rawfits import calibration_switches, raw_hdulist
from pipeline.simulate import hrc, sbc


@pytest.mark.parametrize("detector", ["SBC", "HRC"])
def test_pod_round_trip(tmp_path: Path, detector: str) -> None:
    raw = tmp_path / f"j{detector.lower()}09abq_raw.fits"
    if detector == "SBC":
        sbc.write_raw(raw, None)
    else:
        hrc.write_raw(raw)
    with fits.open(raw) as original:
        decoded = decode_pod(encode_exposure(original), raw.name)
        defaults = load_instrument_defaults()["acs"]
        switches = calibration_switches(defaults, "ACS", detector, None)
        back = raw_hdulist(decoded, filename=raw.name, switches=switches, header_defaults={}, asn_keywords={})
        assert np.array_equal(back["SCI", 1].data, original["SCI", 1].data)
        assert back["SCI", 1].data.shape == ((1024, 1024) if detector == "SBC" else (1044, 1062))
        for key in ("DETECTOR", "FILTER1", "EXPTIME", "EXPSTART"):
            assert back[0].header[key] == original[0].header[key]
        if detector == "SBC":
            assert back["SCI", 1].header["GLOBRATE"] == original["SCI", 1].header["GLOBRATE"]
            assert back[0].header["GLINCORR"] == "PERFORM" and "BLEVCORR" not in back[0].header
        else:
            assert back[0].header["BLEVCORR"] == "PERFORM" and back[0].header["CCDAMP"] == "C"
