"""What a downlink contains: associations (dithered pairs, CR-SPLIT pairs, singletons) and their names.

Names are valid ``ipppssoot``: one program per seed, one observation set per association, the
association named ``<i><ppp><ss>010`` and its members ``<i><ppp><ss><oo>q`` (solid-state recorder).
A singleton has no association table; its "association" is the exposure itself.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.core.names import DatasetName
from pipeline.simulate.geometry import camera_for, readout_for
from pipeline.simulate.pointing import Pointing
from pipeline.simulate.spec import ExposureSpec

ASN_TYPES = ("DITHER", "CR-SPLIT", "SINGLETON")
#: asn_type -> (member MEMTYPE, product MEMTYPE, product-name digit)
MEMTYPES = {"DITHER": ("EXP-DTH", "PROD-DTH", "0"), "CR-SPLIT": ("EXP-CRJ", "PROD-CRJ", "1")}

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
#: First exposure start per instrument: WFC3 in 2012, ACS after the Cycle 24 subarray change (2017).
EPOCH_MJD = {"wfc3": 56100.30, "acs": 57950.20}
DITHER_STEP = (0.2012, 0.1288)  # arcsec, a sub-pixel line dither
PATTERNS = {"wfc3": "UVIS-DITHER-LINE", "acs": "ACS-WFC-DITHER-LINE"}
OVERHEAD_S = 140.0
#: Days before today at which ``recent`` associations start: well inside a six-month exclusive period.
RECENT_DAYS = 20


def recent_epoch(now: float | None = None) -> float:
    """MJD ``RECENT_DAYS`` before ``now`` (default: the clock), at the same time of day as the fixed epochs."""
    today = int((time.time() if now is None else now) / 86400.0) + 40587  # MJD of the Unix epoch
    return today - RECENT_DAYS + 0.30


@dataclass(frozen=True)
class AssociationPlan:
    name: str
    asn_type: str
    members: tuple[ExposureSpec, ...]
    field_seed: tuple[int, ...]  # entropy of the star field shared by the members

    @property
    def product(self) -> str | None:
        """Name of the association product (``PROD-*`` row), None for singletons."""
        if self.asn_type == "SINGLETON":
            return None
        return self.name[:8] + MEMTYPES[self.asn_type][2]


def _b36(rng: np.random.Generator, n: int, first_letter: bool = False) -> str:
    chars = [_B36[rng.integers(10, 36) if (first_letter and i == 0) else rng.integers(0, 36)] for i in range(n)]
    return "".join(chars)


def plan_downlink(seed: int, size: str, n_associations: int, instruments: Sequence[str],
                  wfc_readout: str = "DS_INT", recent: int = 0, now: float | None = None) -> list[AssociationPlan]:
    """Associations cycling through the instruments and, per instrument, DITHER, CR-SPLIT, SINGLETON;
    ACS/WFC read out as ``wfc_readout`` (JWROTYPE: DS_INT, the post-SM4 standard, or CLAMP).

    The last ``recent`` associations are observed from :func:`recent_epoch` on (still in their
    program's exclusive period, so a demo archive has exclusive data); that date depends on the clock.
    """
    instruments = [i.lower() for i in instruments]
    for inst in instruments:
        camera_for(inst)
    if n_associations < 1:
        raise ValueError("a downlink needs at least one association")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    program = _b36(rng, 3)
    used_oo: set[str] = set()
    plans = []
    if not 0 <= recent <= n_associations:
        raise ValueError(f"recent={recent}: between 0 and the {n_associations} associations")
    next_start = dict(EPOCH_MJD)
    for index in range(n_associations):
        inst = instruments[index % len(instruments)]
        if index == n_associations - recent:
            next_start = {i: recent_epoch(now) for i in next_start}
        asn_type = ASN_TYPES[(index // len(instruments)) % len(ASN_TYPES)]
        camera = camera_for(inst)
        obset = _B36[(index + 1) // 36] + _B36[(index + 1) % 36]
        letter = camera.letter
        n_members = 1 if asn_type == "SINGLETON" else 2
        oos = []
        while len(oos) < n_members:
            oo = _b36(rng, 2, first_letter=True)
            if oo not in used_oo:
                used_oo.add(oo)
                oos.append(oo)
        members_names = [f"{letter}{program}{obset}{oo}q" for oo in oos]
        name = members_names[0] if asn_type == "SINGLETON" else f"{letter}{program}{obset}010"
        for n in [name, *members_names]:
            DatasetName(n)  # raises BadName if the plan ever produced an invalid name
        ra = float(rng.uniform(0.0, 360.0))
        dec = float(np.degrees(np.arcsin(rng.uniform(-0.85, 0.85))))
        pa_v3 = float(rng.uniform(0.0, 360.0))
        filt = "F814W" if asn_type == "CR-SPLIT" else "F606W"
        ccdgain = 1.0 if (inst == "acs" and asn_type == "SINGLETON") else (1.5 if inst == "wfc3" else 2.0)
        exptime = {"DITHER": 500.0, "CR-SPLIT": 400.0, "SINGLETON": 350.0}[asn_type]
        readout = readout_for(inst, size)
        members = []
        for k, member in enumerate(members_names):
            postarg = (DITHER_STEP[0] * k, DITHER_STEP[1] * k) if asn_type == "DITHER" else (0.0, 0.0)
            pattern = (PATTERNS[inst], 2, k + 1) if asn_type == "DITHER" else ("NONE", 0, 0)
            members.append(ExposureSpec(
                rootname=member, instrument=inst, readout=readout, ccdgain=ccdgain, filter=filt,
                exptime=exptime, expstart=round(next_start[inst], 8),
                pointing=Pointing(ra, dec, pa_v3, postarg), seed=(seed, index + 1, k + 1),
                targname=f"FIELD-{program.upper()}-{obset.upper()}", proposid=90000 + int(program, 36) % 9000,
                linenum=f"{index + 1:02d}.{k + 1:03d}",
                asn_id=None if asn_type == "SINGLETON" else name,
                asn_memtype=None if asn_type == "SINGLETON" else MEMTYPES[asn_type][0],
                crsplit=2 if asn_type == "CR-SPLIT" else 1, pattern=pattern, jwrotype=wfc_readout))
            next_start[inst] += (exptime + OVERHEAD_S) / 86400.0
        next_start[inst] += 0.9
        plans.append(AssociationPlan(name, asn_type, tuple(members), (seed, index + 1, 0)))
    return plans
