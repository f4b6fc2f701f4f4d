"""TAN-SIP pixel <-> sky (pipeline.science.tansip) against astropy.wcs, on real HST headers (4th-order SIP)
and the simulated chips, and the preview layout it gives against astropy's."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from pipeline.science import preview
from pipeline.science.tansip import TanSip
from tests.products_data import Field, chip_wcs

REAL = ["headers_only_samples/hst_11665_06_wfc3_uvis_f555w_ib4606c6_flc_sample.fits",
        "headers_only_samples/hst_11665_06_wfc3_ir_f110w_ib4606cp_flt_sample.fits",
        "headers_only_samples/ib3y01c6q_flt_11x11cutout.fits", "headers_only_samples/ia1d23dmq_flt_hlet.fits",
        "acs_hrc_j8bt/calibrated_stsci_headers_only/j8bt06nyq_flt_header_only_sip.fits"]


def _astropy(header: fits.Header) -> WCS:
    """astropy's WCS of the header with SIP only: the NPOL/D2IM lookup tables a real HST header names
    live in other extensions (or files), which neither a header alone nor the preview layout has."""
    lookup = ("CPDIS", "CPERR", "DP1", "DP2", "D2IM")
    header = fits.Header([card for card in header.cards if not card.keyword.startswith(lookup)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header, naxis=2)


def _headers(realdata) -> list[fits.Header]:
    headers = []
    for name in REAL:
        with fits.open(realdata / name) as hdul:
            headers.append(hdul[1].header.copy())
    headers.append(chip_wcs(Field(), 0, (2051, 4096), (3.5, 2.0)).to_header())   # plain TAN, rotated 30 degrees
    return headers


def test_pixels_to_sky_and_back_as_astropy(realdata):
    rng = np.random.default_rng(5)
    x, y = rng.uniform(-50, 4200, 200), rng.uniform(-50, 2100, 200)
    for header in _headers(realdata):
        ours, theirs = TanSip.from_header(header), _astropy(header)
        assert ours is not None and bool(ours.a) == (theirs.sip is not None)
        ra, dec = ours.pix2world(x, y)
        ra_a, dec_a = theirs.all_pix2world(x, y, 0)
        assert np.allclose(ra, ra_a, rtol=0, atol=1e-9) and np.allclose(dec, dec_a, rtol=0, atol=1e-9)
        bx, by = ours.world2pix(ra, dec)
        assert np.allclose(bx, x, rtol=0, atol=1e-6) and np.allclose(by, y, rtol=0, atol=1e-6)


def test_headers_that_are_not_tan_give_none():
    assert TanSip.from_header({"CTYPE1": "RA---SIN", "CTYPE2": "DEC--SIN"}) is None
    assert TanSip.from_header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 1.0}) is None
    singular = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 1, "CRPIX2": 1, "CRVAL1": 10, "CRVAL2": 5,
                "CD1_1": 1e-5, "CD1_2": 1e-5, "CD2_1": 1e-5, "CD2_2": 1e-5}
    assert TanSip.from_header(singular) is None


@pytest.mark.parametrize("dither", [(0.0, 0.0), (40.5, -17.25)])
def test_preview_layout_places_chips_as_astropy_does(dither):
    chips = []
    for index in (0, 1):
        header = chip_wcs(Field(), index, (120, 160), dither).to_header()
        header["CTYPE1"], header["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
        header.update({"A_ORDER": 2, "B_ORDER": 2, "A_2_0": 2e-6, "A_0_2": -1e-6, "B_1_1": 3e-6})
        chips.append(preview.Chip(header=header, shape=(120, 160), hdus=(None, None, None), mask_bits=0))
    preview.layout(chips)
    ref = _astropy(chips[0].header)
    ny, nx = chips[1].shape
    ra, dec = _astropy(chips[1].header).all_pix2world([(nx - 1) / 2], [(ny - 1) / 2], 0)
    cx, cy = ref.all_world2pix(ra, dec, 0)
    expected = (round(cx[0] - (nx - 1) / 2), round(cy[0] - (ny - 1) / 2))
    shift = min(0, expected[0]), min(0, expected[1])
    assert (chips[0].x0, chips[0].y0) == (-shift[0], -shift[1])
    assert (chips[1].x0, chips[1].y0) == (expected[0] - shift[0], expected[1] - shift[1])
