"""Synthetic observatory figures: one full-frame WFC3/UVIS exposure (2 chips of 4206 x 2070), a
subarray downlink and a subarray reference cache.

"Cold" includes computing the detector model (superbias pattern, dark, flat, full well) for the chips;
later exposures of the same readout reuse it ("warm"), which is the steady state of a downlink.
Goal: seconds, not minutes (vectorised numpy): warm under 5 s, cold under 15 s, on one core.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import Result, median_time, peak_rss_mb
from pipeline.core.config import load_instrument_defaults
from pipeline.science.telemetry.rawfits import calibration_switches
from pipeline.simulate import build_reference_cache, simulate_downlink
from pipeline.simulate.associations import plan_downlink
from pipeline.simulate.detector import Detector
from pipeline.simulate.downlink import field_half_width
from pipeline.simulate.exposure import simulate_exposure
from pipeline.simulate.scene import make_star_field


def run() -> list[Result]:
    plan = plan_downlink(1, "full", 1, ("wfc3",))[0]
    spec = plan.members[0]
    rng = np.random.default_rng(np.random.SeedSequence(plan.field_seed))
    stars = make_star_field(rng, "wfc3", spec.pointing.ra_targ, spec.pointing.dec_targ, field_half_width(spec.readout))
    switches = calibration_switches(load_instrument_defaults()["wfc3"], "wfc3", "UVIS", "DITHER")
    det = Detector("wfc3")

    t0 = time.perf_counter()
    simulate_exposure(spec, det, stars, switches)
    cold = time.perf_counter() - t0
    warm, warm_all = median_time(lambda: simulate_exposure(spec, det, stars, switches), repeats=3, warmup=0)

    downlink_s, _ = median_time(lambda: simulate_downlink(2, "subarray", 6), repeats=3)

    def cache() -> None:
        with tempfile.TemporaryDirectory(prefix="owl-bench-sim-") as tmp:
            build_reference_cache(Path(tmp) / "crds", size="subarray")

    cache_s, _ = median_time(cache, repeats=3, warmup=0)
    return [
        Result("simulate full-frame UVIS exposure, cold detector model", cold, "s", goal=15.0,
               details={"stars": len(stars)}),
        Result("simulate full-frame UVIS exposure, warm", warm, "s", goal=5.0, details={"runs": warm_all}),
        Result("simulate subarray downlink, 6 associations (10 exposures)", downlink_s, "s"),
        Result("build subarray CRDS cache (23 references, 2 instruments)", cache_s, "s"),
        Result("peak memory, simulator benchmark", peak_rss_mb(), "MiB"),
    ]
