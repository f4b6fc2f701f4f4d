"""WFC3/IR associations of a downlink: dithered pairs, singletons and REPEAT pairs of MULTIACCUM ramps.

They travel as pods like the CCD exposures (every read a SCI extension of the pod) and their
reference files join the site's CRDS cache as a WFC3 delivery (:func:`ensure_ir_references`), for
the few sample sequences and subarray types the downlink uses: a dark per mode and read count is
large (NSAMP full-frame imsets), so the cache carries only those.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.core.asntable import ASN_KINDS
from pipeline.core.names import DatasetName
from pipeline.simulate import crdscache
from pipeline.simulate.downlink import SimulatedAssociation
from pipeline.simulate.ir import IRExposure, IRTruth, simulate_ramp
from pipeline.simulate.irheaders import Visit
from pipeline.simulate.irmodel import FULL_SUBTYPE, SUBARRAYS, detector_maps

#: Association kinds of the IR downlink, in the order they cycle (REPEAT members are summed: RPTCORR).
IR_ASN_TYPES = ("DITHER", "SINGLETON", "REPEAT")
#: Aperture and sample sequences per downlink size (--size subarray keeps the demo quick).
APERTURE = {"full": "IR", "subarray": "IRSUB256"}
SEQUENCES = ("SPARS25", "STEP50")
NSAMP = {"full": 12, "subarray": 8}
FILTERS = ("F160W", "F110W")
IR_EPOCH_MJD = 56200.40
#: A sub-pixel dither of the IR line pattern (pixels).
DITHER_SHIFT = (3.5, 2.5)


@dataclass
class IRMember:
    """One simulated IR exposure as the downlink encoder and the FITS writer take it."""

    rootname: str
    raw: fits.HDUList
    truth: IRTruth


def _subtype(aperture: str) -> str:
    return SUBARRAYS[aperture][0] if aperture in SUBARRAYS else FULL_SUBTYPE


def downlink_modes(size: str) -> list[tuple[str, str]]:
    """(SAMP_SEQ, SUBTYPE) pairs whose darks the site needs: a full-frame cache serves subarrays too."""
    apertures = [APERTURE["subarray"]] + ([APERTURE["full"]] if size == "full" else [])
    return [(seq, _subtype(ap)) for seq in SEQUENCES for ap in apertures]


def plan_ir(seed: int, size: str, count: int) -> list[tuple[str, str, list[IRExposure]]]:
    """(association name, type, exposures) for ``count`` IR associations, names ``i<ppp>r<n>...``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 12]))
    program = "".join("0123456789abcdefghijklmnopqrstuvwxyz"[int(i)] for i in rng.integers(0, 36, 3))
    out = []
    start = IR_EPOCH_MJD + (seed % 100) * 1.0
    for index in range(count):
        asn_type = IR_ASN_TYPES[index % len(IR_ASN_TYPES)]
        obset = "r" + "0123456789abcdefghijklmnopqrstuvwxyz"[(index + 1) % 36]
        n = 1 if asn_type == "SINGLETON" else 2
        roots = [f"i{program}{obset}{'abcdefgh'[index // 36 % 8]}{k + 1}q" for k in range(n)]
        name = roots[0] if asn_type == "SINGLETON" else f"i{program}{obset}010"
        for r in [name, *roots]:
            DatasetName(r)
        ra, dec, pa = float(rng.uniform(0, 360)), float(rng.uniform(-60, 60)), float(rng.uniform(0, 360))
        seq = SEQUENCES[index % len(SEQUENCES)]
        dither = asn_type == "DITHER"
        exps = []
        for k, root in enumerate(roots):
            visit = Visit(ra_targ=ra, dec_targ=dec, pa_v3=pa, targname=f"IRFIELD-{program.upper()}-{obset.upper()}",
                          proposid=90000 + int(program, 36) % 9000, linenum=f"{index + 1:02d}.{k + 1:03d}",
                          asn_id=None if n == 1 else name, asn_type=asn_type,
                          asn_memtype=None if n == 1 else ASN_KINDS[asn_type][0],
                          pattern=("IR-DITHER-LINE", 2, k + 1) if dither else ("NONE", 0, 0),
                          shift=(DITHER_SHIFT[0] * k, DITHER_SHIFT[1] * k) if dither else (0.0, 0.0))
            exps.append(IRExposure(rootname=root, samp_seq=seq, nsamp=NSAMP[size], aperture=APERTURE[size],
                                   filter=FILTERS[index % len(FILTERS)], expstart=round(start, 8),
                                   seed=seed * 1000 + 10 * index + k, visit=visit,
                                   scene_seed=seed * 1000 + 10 * index))
            start += 0.02
        start += 0.9
        out.append((name, asn_type, exps))
    return out


def iter_ir_downlink(seed: int, size: str, count: int) -> Iterator[SimulatedAssociation]:
    """The IR associations one at a time, simulated on the standard IR detector."""
    maps = detector_maps()
    for name, asn_type, exps in plan_ir(seed, size, count):
        members = []
        for exp in exps:
            raw, truth = simulate_ramp(maps, exp)
            members.append(IRMember(exp.rootname, raw, truth))
        yield SimulatedAssociation(name, asn_type, members)  # type: ignore[arg-type]


def has_ir_references(crds_root: Path) -> bool:
    return any(crdscache.mappings_dir(crds_root).glob("hst_wfc3_nlinfile_*.rmap"))


def ensure_ir_references(crds_root: Path, size: str) -> str:
    """Deliver the IR references into the site's cache unless it has them; return the context."""
    from pipeline.simulate.ircrds import deliver_ir_references

    if has_ir_references(crds_root):
        return crdscache.latest_context(crds_root)
    return deliver_ir_references(crds_root, modes=downlink_modes(size), filters=FILTERS)
