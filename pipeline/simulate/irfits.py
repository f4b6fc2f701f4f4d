"""``owl simulate --instruments wfc3ir --fits DIR``: WFC3/IR ramps as FITS with their references.

Exposures cycle through the sample sequences, NSAMP and apertures (full frame, or the square
subarrays for ``--size subarray``); the reference files go to ``DIR/iref/`` (point ``iref`` there)
and the truth (count rate, jump and saturation reads) to ``DIR/truth/``.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.simulate.ir import IRExposure, write_exposure
from pipeline.simulate.irmodel import SEQUENCES, detector_maps
from pipeline.simulate.irrefs import write_ir_references

NSAMPS = (16, 8, 12, 4, 14, 6)
FULL_APERTURES = ("IR", "IR", "IRSUB512")
SUB_APERTURES = ("IRSUB256", "IRSUB128", "IRSUB64")
FILTERS = ("F160W", "F110W", "F125W", "F140W", "F105W")


def ir_plan(seed: int, size: str, count: int) -> list[IRExposure]:
    apertures = FULL_APERTURES if size == "full" else SUB_APERTURES
    return [IRExposure(rootname=f"ira{seed % 1000:03d}{k % 100:02d}q", samp_seq=SEQUENCES[(seed + k) % len(SEQUENCES)],
                       nsamp=NSAMPS[k % len(NSAMPS)], aperture=apertures[k % len(apertures)],
                       filter=FILTERS[k % len(FILTERS)], expstart=56000.2 + 0.1 * k, seed=seed * 1000 + k)
            for k in range(count)]


def write_ir_fits(directory: Path, seed: int, size: str, count: int) -> list[Path]:
    """Raw files (and truth, references) for ``count`` IR exposures; returns the raw paths."""
    plan = ir_plan(seed, size, count)
    maps = detector_maps()
    refs = write_ir_references(maps, directory / "iref", darks=sorted({(e.samp_seq, e.subtype) for e in plan}),
                               filters=sorted({e.filter for e in plan}))
    raws = []
    (directory / "truth").mkdir(parents=True, exist_ok=True)
    for exp in plan:
        raw, truth = write_exposure(maps, exp, directory, refs)
        truth.replace(directory / "truth" / truth.name)
        raws.append(raw)
    return raws
