"""Accuracy of the built-in engine against the simulator's truth (WFC3/UVIS subarrays).

The simulator (``pipeline.simulate``) writes raw exposures, the reference files it used and a truth
file per exposure: the calibrated scene in electrons (trimmed chip), masks of the hot, bad, sink,
saturated, A-to-D-saturated and cosmic-ray pixels, and the star list. One downlink (a DITHER pair,
a CR-SPLIT pair and a single exposure) is built once per session and calibrated through
:func:`pipeline.science.calib.calibrate`; each test compares one aspect with the truth.

ACS/WFC is not covered here: the simulator's ACS OSCNTAB has no rows for its 512x512 subarrays
(calacs matches OSCNTAB rows by NX/NY), so those exposures stop at BLEVCORR with MissingReference;
ACS full frames calibrate (see docs/calib.md) but take too long for the test suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.science.calib import calibrate
from tests.calib_simdata import SimData, build

BIT = {"bad": 4, "hot": 16, "saturated": 256, "sink": 1024, "cosmic": 8192}
MASKS = ("HOT", "SATURATED", "ATOD", "COSMIC", "BAD", "SINK")


@dataclass
class Calibrated:
    data: SimData
    out: Path
    products: list[Path]
    crsplit: list[str]
    dither: list[str]

    def flt(self, member: str) -> fits.HDUList:
        return fits.open(self.out / f"{member}_flt.fits")

    def truth(self, member: str) -> fits.HDUList:
        return fits.open(self.data.truth_file(member))


@pytest.fixture(scope="module")
def calibrated(module_tmp) -> Calibrated:
    data = build(module_tmp("calib_sim") / "sim", size="subarray", instruments=("wfc3",),
                 associations=3, seed=1)
    out = data.root / "out"
    inputs: list[Path] = []
    crsplit: list[str] = []
    dither: list[str] = []
    for asn in data.associations():
        inputs.append(asn)
        members = [str(m).strip().lower() for m, t in zip(fits.getdata(asn, 1)["MEMNAME"],
                                                           fits.getdata(asn, 1)["MEMTYPE"], strict=True)
                   if str(t).strip().upper().startswith("EXP")]
        (crsplit if fits.getheader(data.raw(members[0])).get("CRSPLIT", 1) > 1 else dither).extend(members)
    grouped = set(crsplit) | set(dither)
    inputs += [data.raw(m) for m in data.members() if m not in grouped]
    products = calibrate(inputs, out, engine="builtin", environ={"CRDS_PATH": str(data.crds)})
    assert crsplit and dither, "the simulated downlink should hold a CR-SPLIT and a DITHER association"
    return Calibrated(data, out, products, crsplit, dither)


def _chip(flt: fits.HDUList, truth: fits.HDUList) -> tuple[np.ndarray, ...]:
    """SCI, ERR, DQ of the flt's first imset and the truth scene of the same chip (FLUXCORR applied)."""
    sci, err, dq = (flt[name, 1].data for name in ("SCI", "ERR", "DQ"))
    chip = flt["SCI", 1].header["CCDCHIP"]
    ext = next(h for h in truth if h.name == "SCENE" and h.header["CCDCHIP"] == chip)
    scene = ext.data.astype(np.float64)
    if flt[0].header.get("FLUXCORR") == "COMPLETE" and chip == 2:
        scene = scene * flt[0].header["PHTRATIO"]
    return sci.astype(np.float64), err.astype(np.float64), dq.astype(np.uint16), scene


def _mask(truth: fits.HDUList, name: str) -> np.ndarray:
    return truth[name.upper(), 1].data.astype(bool)


def _any_truth_mask(truth: fits.HDUList) -> np.ndarray:
    out = np.zeros(truth["HOT", 1].data.shape, bool)
    for name in MASKS:
        out |= _mask(truth, name)
    return out


def test_every_exposure_gives_its_products(calibrated: Calibrated) -> None:
    names = {p.name for p in calibrated.products}
    for member in calibrated.data.members():
        assert f"{member}_flt.fits" in names
    assert any(n.endswith("_crj.fits") for n in names)
    for product in calibrated.products:
        header = fits.getheader(product)
        assert header["CAL_ENG"] == "builtin"
        for switch in ("DQICORR", "BLEVCORR", "BIASCORR", "DARKCORR", "FLATCORR", "PHOTCORR"):
            assert header[switch] == "COMPLETE", (product.name, switch)


def test_bias_and_dark_residual_below_a_tenth_of_an_electron(calibrated: Calibrated) -> None:
    """Mean of flt - truth scene over clean pixels: what bias, dark and flat leave behind."""
    for member in calibrated.data.members():
        sci, err, dq, scene = _chip(calibrated.flt(member), truth := calibrated.truth(member))
        clean = (dq == 0) & ~_any_truth_mask(truth)
        resid = sci[clean] - scene[clean]
        assert abs(resid.mean()) < 0.1, (member, resid.mean())
        # and the ERR array describes the scatter (reference-file noise adds a little)
        chi2 = np.mean((resid / err[clean]) ** 2)
        assert 0.8 < chi2 < 1.4, (member, chi2)


@pytest.mark.parametrize("name", ["hot", "bad"])
def test_hot_and_bad_pixels_are_flagged_exactly_where_the_simulator_put_them(calibrated: Calibrated,
                                                                             name: str) -> None:
    for member in calibrated.data.members():
        truth = calibrated.truth(member)
        flagged = (calibrated.flt(member)["DQ", 1].data.astype(np.uint16) & BIT[name]) != 0
        np.testing.assert_array_equal(flagged, _mask(truth, name), err_msg=f"{member} {name}")


def test_sink_pixels_of_the_truth_are_flagged(calibrated: Calibrated) -> None:
    """Every truth sink pixel carries 1024; the flag also covers the sink's trail (calwf3 flags the
    pixels downstream of a sink whose value is below the sink's), which the truth does not list."""
    for member in calibrated.data.members():
        truth = _mask(calibrated.truth(member), "sink")
        flagged = (calibrated.flt(member)["DQ", 1].data.astype(np.uint16) & BIT["sink"]) != 0
        assert truth.any()
        assert not (truth & ~flagged).any(), member


def test_saturation_flags_lie_inside_the_truth_and_miss_only_bleed_trail_ends(calibrated: Calibrated) -> None:
    """calwf3 flags SCI > SATUFILE/mean_gain. The truth also marks the partly filled ends of the
    bleed trails, below the full-well level; those must touch a flagged pixel of their column."""
    for member in calibrated.data.members():
        truth = _mask(calibrated.truth(member), "saturated")
        flagged = (calibrated.flt(member)["DQ", 1].data.astype(np.uint16) & BIT["saturated"]) != 0
        assert flagged.any() and not (flagged & ~truth).any(), member
        missed = truth & ~flagged
        touching = np.zeros_like(flagged)
        touching[1:] |= flagged[:-1]
        touching[:-1] |= flagged[1:]
        assert not (missed & ~touching).any(), member


def test_cosmic_rays_of_cr_split_members_are_flagged(calibrated: Calibrated) -> None:
    """CRCORR flags each member's cosmic rays (8192, CRMASK) — all strong ones on the sky, and
    >= 98 % of all truth CR pixels. Pixels hit in both members of a pair cannot be recovered
    (the lower value is the guess), so they are left out of the strict check."""
    flts = {m: calibrated.flt(m) for m in calibrated.crsplit}
    truths = {m: calibrated.truth(m) for m in calibrated.crsplit}
    for member in calibrated.crsplit:
        others = [_mask(truths[o], "cosmic") for o in calibrated.crsplit if o != member]
        sci, err, dq, scene = _chip(flts[member], truths[member])
        cosmic = _mask(truths[member], "cosmic")
        flagged = (dq & BIT["cosmic"]) != 0
        # calwf3 unpacks its CR mask by whole bytes: the last nx % 8 columns never get 8192
        masked = slice(0, dq.shape[1] // 8 * 8)
        assert not flagged[:, masked.stop:].any(), member
        cosmic, flagged = cosmic[:, masked], flagged[:, masked]
        assert (cosmic & flagged).sum() >= 0.98 * cosmic.sum(), member
        alone = cosmic & ~np.logical_or.reduce([o[:, masked] for o in others])
        strong = alone & ((sci - scene) / err > 8)[:, masked] & (scene < 100)[:, masked]
        assert strong.sum() > 100
        assert not (strong & ~flagged).any(), member
    for member in calibrated.dither:  # single exposures: no CR rejection, no 8192
        assert not (calibrated.flt(member)["DQ", 1].data.astype(np.uint16) & BIT["cosmic"]).any()


def test_crj_is_the_sum_of_the_members_without_their_cosmic_rays(calibrated: Calibrated) -> None:
    crj_path = next(p for p in calibrated.products if p.name.endswith("_crj.fits"))
    with fits.open(crj_path) as crj:
        truths = [calibrated.truth(m) for m in calibrated.crsplit]
        chip = crj["SCI", 1].header["CCDCHIP"]
        scene = sum(next(h for h in t if h.name == "SCENE" and h.header["CCDCHIP"] == chip).data.astype(float)
                    for t in truths)
        if crj[0].header.get("FLUXCORR") == "COMPLETE" and chip == 2:
            scene = scene * crj[0].header["PHTRATIO"]
        sci, err, dq = (crj[n, 1].data.astype(float) for n in ("SCI", "ERR", "DQ"))
        both = np.logical_and.reduce([_mask(t, "cosmic") for t in truths])
        other = np.logical_or.reduce([_any_truth_mask(t) & ~_mask(t, "cosmic") for t in truths])
        good = (dq == 0) & ~both & ~other
        z = (sci - scene)[good] / err[good]
        assert abs((sci - scene)[good].mean()) < 0.1
        assert 0.8 < np.mean(z**2) < 1.3
        assert np.mean(np.abs(z) > 5) < 1e-3  # no cosmic-ray residue
        assert crj["SCI", 1].header["NCOMBINE"] == len(calibrated.crsplit) and "NCOMBINE" not in crj[0].header
        assert crj[0].header["EXPTIME"] == pytest.approx(sum(fits.getheader(calibrated.data.raw(m))["EXPTIME"]
                                                             for m in calibrated.crsplit))


def test_star_fluxes_are_recovered_within_three_sigma(calibrated: Calibrated) -> None:
    """Aperture sums (r = 4 px) in the flt against the truth scene, for stars whose aperture has
    no truth-masked pixel (a single exposure cannot remove its cosmic rays)."""
    radius = 4
    checked = 0
    for member in calibrated.data.members():
        truth = calibrated.truth(member)
        sci, err, _, scene = _chip(calibrated.flt(member), truth)
        masked = _any_truth_mask(truth)
        ny, nx = sci.shape
        yy, xx = np.mgrid[0:ny, 0:nx]
        for star in truth["STARS"].data:
            x, y = float(star["X_CHIP2"]), float(star["Y_CHIP2"])
            if not (radius + 1 <= x < nx - radius - 1 and radius + 1 <= y < ny - radius - 1):
                continue
            box = (slice(int(y) - radius - 1, int(y) + radius + 2), slice(int(x) - radius - 1, int(x) + radius + 2))
            ap = (xx[box] - x) ** 2 + (yy[box] - y) ** 2 <= radius**2
            if masked[box][ap].any():
                continue
            flux, true = sci[box][ap].sum(), scene[box][ap].sum()
            sigma = np.sqrt((err[box][ap] ** 2).sum())
            assert abs(flux - true) < 3 * sigma, (member, int(star["ID"]), flux, true, sigma)
            checked += 1
    assert checked >= 30
