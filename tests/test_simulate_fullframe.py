"""One full-frame WFC3/UVIS exposure: overscan placement in real pixels, and the calwf3 chain
(virtual-overscan BLEVCORR with its row quirk, superbias, dark, mean-gain flat) giving back the sky."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.config import load_instrument_defaults
from pipeline.science.telemetry.rawfits import calibration_switches
from pipeline.simulate.associations import plan_downlink
from pipeline.simulate.detector import Detector
from pipeline.simulate.downlink import field_half_width
from pipeline.simulate.exposure import simulate_exposure
from pipeline.simulate.scene import make_star_field

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exposure():
    plan = plan_downlink(3, "full", 1, ("wfc3",))[0]
    spec = plan.members[0]
    rng = np.random.default_rng(np.random.SeedSequence(plan.field_seed))
    stars = make_star_field(rng, "wfc3", spec.pointing.ra_targ, spec.pointing.dec_targ, field_half_width(spec.readout))
    det = Detector("wfc3")
    switches = calibration_switches(load_instrument_defaults()["wfc3"], "wfc3", "UVIS", "DITHER")
    return simulate_exposure(spec, det, stars, switches), det


def test_full_frame_layout_in_pixels(exposure):
    exp, _ = exposure
    assert exp.raw[0].header["NEXTEND"] == 6 and exp.raw[0].header["SUBARRAY"] is False
    assert [exp.raw["SCI", v].header["CCDCHIP"] for v in (1, 2)] == [2, 1]
    assert [exp.raw["SCI", v].header["LTV2"] for v in (1, 2)] == [0.0, 19.0]
    for ver in (1, 2):
        data = exp.raw["SCI", ver].data.astype(float)
        assert data.shape == (2070, 4206)
        rows = slice(19, 2070) if ver == 2 else slice(0, 2051)
        prescan_a, virtual_a = data[rows, 5:20], data[rows, 2078:2100]
        virtual_b, prescan_b = data[rows, 2108:2128], data[rows, 4186:4201]
        science_a = data[rows, 100:2000]
        # overscan of one amplifier: the same bias level, no sky, no dark (means: the DN are integers)
        assert abs(prescan_a.mean() - virtual_a.mean()) < 0.2
        assert abs(prescan_b.mean() - virtual_b.mean()) < 0.2
        assert np.median(science_a) - virtual_a.mean() > 10
        gap_edge = slice(2051, 2070) if ver == 1 else slice(0, 19)  # top of ext 1, bottom of ext 4
        assert abs(data[gap_edge, 100:2000].mean() - data[gap_edge, 2078:2100].mean()) < 0.2


def test_calwf3_chain_recovers_the_sky_on_chip1(exposure):
    """BLEVCORR as calwf3 does it: median of the virtual overscan per row, a line fitted against
    ``row - TRIMY1`` but evaluated at the raw row; then the superbias carries the matching offset."""
    exp, det = exposure
    part = exp.spec.readout.chips[1]  # chip 1, extension 4: TRIMY1 = 19
    data = exp.raw["SCI", 2].data.astype(np.float64)
    truth = exp.truth.chip(1)
    mode = det.gain_mode(1.5)
    gains = det.amp_columns(part, 1.5, "gain", trimmed=True)
    trimy1, mid = 19, 2051 // 2
    j = np.arange(2051)
    for amp_cols in (slice(2078, 2100), slice(2108, 2128)):  # bias sections of amps A and B
        level = np.median(data[trimy1:, amp_cols], axis=1)
        slope, icpt = np.polyfit(j - mid, level, 1)
        fitted = slope * (np.arange(2070) - mid) + icpt  # evaluated at the raw row: the quirk
        side = part.col_right if amp_cols.start > 2100 else ~part.col_right
        data[:, side] -= fitted[:, None]
    data -= det.superbias(part, 1.5)
    science = part.trim(data)
    science -= det.dark_rate(part) * exp.spec.exptime / gains[None, :]
    calibrated = science * mode.mean_gain / det.pflat(part, exp.spec.filter, 1.5)
    good = ~(truth.hot | truth.saturated | truth.cosmic | truth.bad | truth.sink)
    residual = (calibrated - truth.scene)[good]
    sigma = np.sqrt(truth.scene + truth.dark + 3.1 ** 2)[good]
    assert abs(np.mean(residual / sigma)) < 0.02
    assert 0.97 < np.std(residual / sigma) < 1.05
