"""The synthetic observatory: WFC3/UVIS and ACS/WFC exposures, their truth, and the references that made them.

Real full-frame raws and bias/dark/flat images cannot be downloaded here, so owlpipe carries its own
observatory. Data and references come from one detector model (:mod:`.detector`) laid out on the
real raw geometry (:mod:`.geometry`), so calibrating the data with the references recovers the
simulated sky; see ``docs/simulator.md``.

* :func:`simulate_downlink` / :func:`iter_downlink` - associations of simulated exposures;
  :func:`write_fits` writes them as ``_raw.fits``/``_asn.fits`` (+ truth).
* :func:`build_reference_cache` - the reference files and a CRDS cache with context ``hst_0001.pmap``;
  :func:`bump_reference` - a reference delivery and the next context.
"""

from pipeline.simulate.crdscache import CacheError, build_reference_cache, bump_reference, cache_summary
from pipeline.simulate.detector import DETECTOR_SEED
from pipeline.simulate.downlink import SimulatedAssociation, iter_downlink, simulate_downlink, write_fits
from pipeline.simulate.exposure import ChipTruth, SimulatedExposure, TruthProducts

__all__ = [
    "DETECTOR_SEED", "CacheError", "ChipTruth", "SimulatedAssociation", "SimulatedExposure", "TruthProducts",
    "build_reference_cache", "bump_reference", "cache_summary", "iter_downlink", "simulate_downlink", "write_fits",
]
