"""Simulated exposures with their reference files assigned, for calibration accuracy tests and the
calibration benchmark: the simulator's CRDS cache (``pipeline.simulate.crdscache``), its downlink
written as FITS (``pipeline.simulate.downlink``, truth in ``raws/truth``), then bestrefs
(``pipeline.science.refs``) so the raws carry ``iref$``/``jref$`` names resolved from the cache.

Building is deterministic in (size, instruments, associations, seed); a finished build leaves a
``.complete`` marker so later runs reuse it.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SimData:
    root: Path
    crds: Path
    raws: Path
    truth: Path

    def raw(self, root: str) -> Path:
        return self.raws / f"{root}_raw.fits"

    def truth_file(self, root: str) -> Path:
        return self.truth / f"{root}_truth.fits"

    def members(self, prefix: str = "") -> list[str]:
        return sorted(p.name[:9] for p in self.raws.glob(f"{prefix}*_raw.fits"))

    def associations(self) -> list[Path]:
        return sorted(self.raws.glob("*_asn.fits"))


def build(root: Path, *, size: str = "subarray", instruments: tuple[str, ...] = ("wfc3",),
          associations: int = 3, seed: int = 1) -> SimData:
    """Build (or reuse) the cache, the raws and the truth under ``root``; return where they are."""
    root = Path(root)
    data = SimData(root, root / "crds", root / "raws", root / "raws" / "truth")
    recipe = {"size": size, "instruments": list(instruments), "associations": associations, "seed": seed}
    marker = root / ".complete"
    if marker.is_file() and json.loads(marker.read_text()) == recipe:
        return data
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    from pipeline.science import refs
    from pipeline.simulate.crdscache import build_reference_cache
    from pipeline.simulate.downlink import iter_downlink, write_fits

    build_reference_cache(data.crds, list(instruments), size="full" if size == "full" else "subarray")
    write_fits(iter_downlink(seed, size, associations, list(instruments)), data.raws)
    saved = os.environ.get("CRDS_PATH")
    os.environ["CRDS_PATH"] = str(data.crds)
    try:
        ctx = refs.load_context(data.crds)
        refs.assign_bestrefs(sorted(data.raws.glob("*_raw.fits")), ctx)
    finally:
        if saved is None:
            os.environ.pop("CRDS_PATH", None)
        else:
            os.environ["CRDS_PATH"] = saved
    marker.write_text(json.dumps(recipe))
    return data
