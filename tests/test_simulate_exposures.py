"""Simulated subarray exposures: names, determinism, headers, overscan, WCS across dithers, truth masks."""

from __future__ import annotations

import io

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from pipeline.core.names import DatasetName
from pipeline.simulate import simulate_downlink
from pipeline.simulate.detector import Detector

SEED = 7


@pytest.fixture(scope="module")
def downlink():
    return simulate_downlink(SEED, "subarray", 6, ("wfc3", "acs"))


def _exposures(downlink):
    return [m for asn in downlink for m in asn.members]


def _bytes(hdul: fits.HDUList) -> bytes:
    buf = io.BytesIO()
    hdul.writeto(buf)
    return buf.getvalue()


def test_associations_and_names(downlink):
    kinds = [(a.members[0].raw[0].header["INSTRUME"], a.asn_type) for a in downlink]
    assert kinds == [("WFC3", "DITHER"), ("ACS", "DITHER"), ("WFC3", "CR-SPLIT"), ("ACS", "CR-SPLIT"),
                     ("WFC3", "SINGLETON"), ("ACS", "SINGLETON")]
    for asn in downlink:
        letter = "i" if asn.members[0].raw[0].header["INSTRUME"] == "WFC3" else "j"
        for m in asn.members:
            name = DatasetName(m.rootname)
            assert name.is_exposure and name.transmission == "q" and name.instrument_letter == letter
            assert m.raw[0].header["ROOTNAME"] == m.rootname
        if asn.is_singleton:
            assert asn.name == asn.members[0].rootname and asn.asn_table() is None
            assert asn.members[0].raw[0].header["ASN_ID"] == "NONE"
        else:
            assert DatasetName(asn.name).is_association and asn.name.endswith("010") and len(asn.members) == 2
            table = asn.asn_table()["ASN"].data
            assert [n.lower() for n in table["MEMNAME"][:2]] == [m.rootname for m in asn.members]
            assert {m.raw[0].header["ASN_ID"] for m in asn.members} == {asn.name.upper()}


def test_same_seed_same_bytes_other_seed_other_data(downlink):
    again = simulate_downlink(SEED, "subarray", 2, ("wfc3", "acs"))
    for first, second in zip(_exposures(downlink[:2]), _exposures(again), strict=True):
        assert _bytes(first.raw) == _bytes(second.raw)
        assert np.array_equal(first.truth.chips[0].scene, second.truth.chips[0].scene)
    other = simulate_downlink(SEED + 1, "subarray", 1, ("wfc3",))
    assert other[0].name != downlink[0].name
    assert not np.array_equal(other[0].members[0].raw[1].data, downlink[0].members[0].raw[1].data)


PRIMARY_KEYS = ("ROOTNAME", "INSTRUME", "DETECTOR", "EXPTIME", "EXPSTART", "EXPEND", "DATE-OBS", "TIME-OBS",
                "CCDAMP", "CCDGAIN", "CCDOFSTA", "CCDOFSTB", "CCDOFSTC", "CCDOFSTD", "SUBARRAY", "APERTURE",
                "FLASHDUR", "FLASHSTA", "PA_V3", "RA_TARG", "DEC_TARG", "PROPOSID", "ASN_ID", "NEXTEND",
                "DQICORR", "BLEVCORR", "BIASCORR", "DARKCORR", "FLATCORR", "PHOTCORR", "OBSTYPE", "TARGNAME")
REFERENCE_KEYS = ("BIASFILE", "DARKFILE", "PFLTFILE", "CCDTAB", "OSCNTAB", "BPIXTAB", "IMPHTTAB", "SNKCFILE")


def test_headers_like_archive_raws(downlink):
    for m in _exposures(downlink):
        h = m.raw[0].header
        for key in PRIMARY_KEYS:
            assert key in h, f"{m.rootname}: {key} missing"
        assert ("FILTER" in h) == (h["INSTRUME"] == "WFC3")
        assert ("FILTER1" in h and "FILTER2" in h) == (h["INSTRUME"] == "ACS")
        assert not any(k in h for k in REFERENCE_KEYS), "reference keywords are RF's to fill"
        assert h["SUBARRAY"] is True and h["NEXTEND"] == 3
        assert h["EXPEND"] > h["EXPSTART"] and abs((h["EXPEND"] - h["EXPSTART"]) * 86400 - h["EXPTIME"]) < 1e-3
        assert h["CRCORR"] == ("PERFORM" if h["CRSPLIT"] == 2 else "OMIT")
        sci, err, dq = m.raw["SCI", 1], m.raw["ERR", 1], m.raw["DQ", 1]
        assert sci.data.dtype == np.uint16 and sci.header["BUNIT"] == "COUNTS"
        assert sci.header["EXTVER"] == 1 and sci.header["CCDCHIP"] in (1, 2)
        assert sci.header["LTM1_1"] == sci.header["LTM2_2"] == 1.0
        for hdu in (err, dq):
            assert hdu.header["NAXIS"] == 0 and hdu.data is None
            assert (hdu.header["NPIX1"], hdu.header["NPIX2"]) == (512, 512) and hdu.header["PIXVALUE"] == 0


def test_prescan_holds_bias_only(downlink):
    for m in _exposures(downlink):
        sci = m.raw["SCI", 1]
        det = Detector(m.spec.instrument)
        amp = det.gain_mode(m.spec.ccdgain).amps[m.spec.readout.ccdamp]
        prescan = sci.data[:, : int(sci.header["LTV1"])].astype(float)
        science = sci.data[:, int(sci.header["LTV1"]):].astype(float)
        residual = prescan - np.median(prescan, axis=1, keepdims=True)
        assert abs(np.std(residual) - amp.read_noise / amp.gain) < 0.35  # read noise, nothing else
        assert np.median(science) - np.median(prescan) > 10  # sky and dark only in the science pixels


def test_wcs_consistent_across_dithers(downlink):
    dither = next(a for a in downlink if a.asn_type == "DITHER")
    first, second = dither.members
    w1, w2 = (WCS(m.raw["SCI", 1].header) for m in dither.members)
    ltv = first.raw["SCI", 1].header["LTV1"], first.raw["SCI", 1].header["LTV2"]
    sky = w1.pixel_to_world_values(np.array([100.0, 300.0, 450.0]) + ltv[0], np.array([50.0, 250.0, 500.0]) + ltv[1])
    x1, y1 = w1.world_to_pixel_values(*sky)
    x2, y2 = w2.world_to_pixel_values(*sky)
    scale = first.spec.readout.camera.pixel_scale
    postarg = np.array(second.raw[0].header["POSTARG1"]), np.array(second.raw[0].header["POSTARG2"])
    np.testing.assert_allclose(x2 - x1, postarg[0] / scale, atol=2e-3)
    np.testing.assert_allclose(y2 - y1, postarg[1] / scale, atol=2e-3)
    # the stars are where the header WCS says: centroids of isolated stars in the noiseless truth
    for m in (first, second):
        truth = m.truth.chips[0]
        stars = m.truth.stars
        wcs = WCS(truth.wcs_header)
        x, y = wcs.world_to_pixel_values(stars["RA"], stars["DEC"])
        assert np.allclose(x, stars[f"X_CHIP{truth.ccdchip}"]) and np.allclose(y, stars[f"Y_CHIP{truth.ccdchip}"])
        scene = truth.scene - np.median(truth.scene)
        checked = 0
        for xs, ys in zip(x, y, strict=True):
            near = np.hypot(x - xs, y - ys)
            if not (12 < xs < scene.shape[1] - 12 and 12 < ys < scene.shape[0] - 12) or np.sort(near)[1] < 25:
                continue
            ix, iy = round(xs), round(ys)
            stamp = scene[iy - 10:iy + 11, ix - 10:ix + 11]
            if stamp.sum() < 2000 or truth.saturated[iy - 10:iy + 11, ix - 10:ix + 11].any():
                continue
            yy, xx = np.mgrid[-10:11, -10:11]
            assert abs((stamp * xx).sum() / stamp.sum() + ix - xs) < 0.02
            assert abs((stamp * yy).sum() / stamp.sum() + iy - ys) < 0.02
            checked += 1
        assert checked >= 2


def test_truth_masks(downlink):
    for m in _exposures(downlink):
        det = Detector(m.spec.instrument)
        part = m.spec.readout.chips[0]
        truth = m.truth.chips[0]
        assert truth.scene.shape == part.trimmed_shape and truth.scene.dtype == np.float32
        assert np.array_equal(truth.hot, det.dark_rate(part) > det.dark_model.hot_threshold)
        assert 0.003 < truth.hot.mean() < 0.02
        assert truth.saturated.any(), "bright stars saturate in every exposure"
        assert 0.001 < truth.cosmic.mean() < 0.05
        assert truth.bad.any() and truth.sink.any()
        raw_science = m.raw["SCI", 1].data[:, int(m.raw["SCI", 1].header["LTV1"]):]
        assert np.array_equal(truth.atod, raw_science >= 65535)
    acs_gain1 = next(m for m in _exposures(downlink) if m.spec.instrument == "acs" and m.spec.ccdgain == 1.0)
    assert acs_gain1.truth.chips[0].atod.any(), "ACS at gain 1 reaches the 16-bit ADC limit before full well"
    wfc3 = next(m for m in _exposures(downlink) if m.spec.instrument == "wfc3")
    assert not wfc3.truth.chips[0].atod.any(), "WFC3 at gain 1.5 saturates its full well long before the ADC"


def test_truth_file(downlink, tmp_path):
    m = downlink[0].members[0]
    hdul = m.truth.to_hdulist(m.rootname)
    hdul.writeto(tmp_path / f"{m.rootname}_truth.fits")
    with fits.open(tmp_path / f"{m.rootname}_truth.fits") as f:
        assert f["SCENE", 1].header["CTYPE1"] == "RA---TAN"
        assert {h.name for h in f} >= {"SCENE", "DARK", "HOT", "SATURATED", "ATOD", "COSMIC", "BAD", "SINK", "STARS"}
        assert len(f["STARS"].data) == len(m.truth.stars)
