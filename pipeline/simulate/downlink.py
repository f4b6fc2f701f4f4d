"""A downlink: associations of simulated exposures, and writing them as FITS for users who start there."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from pipeline.core.asntable import build_asn_table
from pipeline.core.config import load_instrument_defaults
from pipeline.core.fsutil import atomic_write_fits
from pipeline.science.telemetry.rawfits import calibration_switches
from pipeline.simulate.associations import AssociationPlan, plan_downlink
from pipeline.simulate.detector import DETECTOR_SEED, Detector
from pipeline.simulate.exposure import SimulatedExposure, simulate_exposure
from pipeline.simulate.geometry import Readout
from pipeline.simulate.scene import make_star_field

#: Extra sky (arcsec) around the readout so dithered members see the same stars at their edges.
FIELD_MARGIN = 6.0


@dataclass
class SimulatedAssociation:
    name: str  # association name, or the exposure name of a singleton
    asn_type: str  # 'DITHER' | 'CR-SPLIT' | 'SINGLETON'
    members: list[SimulatedExposure] = field(default_factory=list)

    @property
    def is_singleton(self) -> bool:
        return self.asn_type == "SINGLETON"

    def asn_table(self) -> fits.HDUList | None:
        """The ``_asn.fits`` of the association (None for a singleton)."""
        if self.is_singleton:
            return None
        return build_asn_table(self.name, [m.rootname for m in self.members], self.asn_type,
                               header=self.members[0].raw[0].header)


def field_half_width(readout: Readout) -> float:
    """Half-size (arcsec) of the star field a readout needs, dithers included."""
    cam = readout.camera
    if readout.subarray:
        part = readout.chips[0]
        pixels = max(part.trimmed_shape)
    else:
        pixels = max(cam.nx, 2 * cam.ny + cam.chip_gap)
    return pixels * cam.pixel_scale / 2.0 + FIELD_MARGIN


def _simulate(plan: AssociationPlan, detectors: dict[str, Detector], switches: dict[str, str]) -> SimulatedAssociation:
    first = plan.members[0]
    det = detectors[first.instrument]
    rng = np.random.default_rng(np.random.SeedSequence(plan.field_seed))
    stars = make_star_field(rng, first.instrument, first.pointing.ra_targ, first.pointing.dec_targ,
                            field_half_width(first.readout))
    members = [simulate_exposure(spec, det, stars, switches) for spec in plan.members]
    return SimulatedAssociation(plan.name, plan.asn_type, members)


def iter_downlink(seed: int, size: str = "subarray", n_associations: int = 3,
                  instruments: Sequence[str] = ("wfc3", "acs"), *, detector_seed: int = DETECTOR_SEED,
                  progress: Callable[[AssociationPlan], None] | None = None,
                  wfc_readout: str = "DS_INT", recent: int = 0,
                  defaults: dict[str, dict[str, Any]] | None = None) -> Iterator[SimulatedAssociation]:
    """Simulate associations one at a time (a full-frame downlink does not fit comfortably in memory);
    the last ``recent`` are observed in the last weeks (see :func:`plan_downlink`).

    ``defaults`` are the instrument defaults 2FITS will use (a site's, default config/instruments):
    an exposure whose PCTECORR is PERFORM there is read out through the CTE trap model.
    """
    plans = plan_downlink(seed, size, n_associations, instruments, wfc_readout, recent)
    defaults = load_instrument_defaults() if defaults is None else defaults
    detectors = {inst: Detector(inst, detector_seed) for inst in {p.members[0].instrument for p in plans}}
    for plan in plans:
        if progress is not None:
            progress(plan)
        first = plan.members[0]
        switches = calibration_switches(defaults.get(first.instrument, {}), first.instrument,
                                        first.readout.camera.detector, plan.asn_type)
        yield _simulate(plan, detectors, switches)


def simulate_downlink(seed: int, size: str = "subarray", n_associations: int = 3,
                      instruments: Sequence[str] = ("wfc3", "acs"), *,
                      detector_seed: int = DETECTOR_SEED) -> list[SimulatedAssociation]:
    """Simulate a whole downlink: ``n_associations`` associations cycling through ``instruments``
    and, per instrument, a dithered pair, a CR-SPLIT pair and a singleton. Same seed, same bytes."""
    return list(iter_downlink(seed, size, n_associations, instruments, detector_seed=detector_seed))


def write_fits(associations: Iterable[SimulatedAssociation], directory: Path | str, *,
               truth_dir: Path | str | None = None) -> list[Path]:
    """Write ``<root>_raw.fits`` per exposure and ``<asn>_asn.fits`` per association into ``directory``,
    and ``<root>_truth.fits`` into ``truth_dir`` (default ``directory/truth``); return the raw/asn paths."""
    out = Path(directory)
    truth_out = Path(truth_dir) if truth_dir is not None else out / "truth"
    written = []
    for asn in associations:
        for member in asn.members:
            written.append(atomic_write_fits(member.raw, out / f"{member.rootname}_raw.fits"))
            atomic_write_fits(member.truth.to_hdulist(member.rootname), truth_out / f"{member.rootname}_truth.fits")
        table = asn.asn_table()
        if table is not None:
            written.append(atomic_write_fits(table, out / f"{asn.name}_asn.fits"))
    return written
