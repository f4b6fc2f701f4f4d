"""A full-frame WFC3/UVIS raw with CTE trails (the simulator's 20-trap or realistic 999-trap model)
plus the references the CTE branch reads (PCTETAB, BIACFILE, DRKCFILE, CCDTAB, OSCNTAB, BIASFILE,
DARKFILE) in the real layouts, for the CTE benchmark and comparisons with calwf3. Stars sit on a
low sky, so trails matter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.simulate.ctefiles import add_trails, realistic_model, trap_model, write_pctetab
from tests.calib_synth import (
    Geometry,
    UvisSet,
    write_ccdtab,
    write_oscntab,
    write_raw,
    write_raw_reference,
    write_trimmed_reference,
)

ROOTNAME = "icte01abq"
BIAS = 2500.0
GAIN = 1.5
REFS = {"PCTETAB": "cte_cte.fits", "BIACFILE": "cte_bic.fits", "DRKCFILE": "cte_dkc.fits", "CCDTAB": "cte_ccd.fits",
        "OSCNTAB": "cte_osc.fits", "BIASFILE": "cte_bia.fits", "DARKFILE": "cte_drk.fits"}
NA = ("BPIXTAB", "FLSHFILE", "PFLTFILE", "DFLTFILE", "LFLTFILE", "SHADFILE", "IMPHTTAB", "SNKCFILE", "SATUFILE",
      "CRREJTAB")


def build(root: Path, *, seed: int = 5, nstars: int = 400, realistic: bool = False) -> Path:
    """Write the set into ``root`` (iref there) once; return the raw's path. ``realistic``: all 999
    traps of :func:`realistic_model` (calwf3's real cost) instead of the quick 20-trap table."""
    raw = root / f"{ROOTNAME}_raw.fits"
    if raw.is_file():
        return raw
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    g = Geometry(25, 2048, 30, 2051, 19)
    s = UvisSet(geo=g, expstart=57000.0, refs={**REFS, **{k: "N/A" for k in NA}})
    table = realistic_model() if realistic else trap_model()
    write_pctetab(root / REFS["PCTETAB"], table)
    sci = {}
    for chip in (1, 2):
        img = BIAS + rng.normal(0, 3.0 / GAIN, (g.ny, g.nx)) + 12.0 / GAIN
        for y, x in zip(rng.integers(0, 2070, nstars), rng.integers(25, 4180, nstars), strict=True):
            img[y, x] += rng.uniform(50, 20000) / GAIN
        sci[chip] = img
    cd, ab = add_trails(sci[2], sci[1], table, expstart=s.expstart, gain=GAIN, bias=(BIAS,) * 4)
    zero = {c: np.zeros((g.ny, g.nx)) for c in (1, 2)}
    write_raw_reference(root / REFS["BIACFILE"], s, zero, filetype="CTEBIAS")
    write_raw_reference(root / REFS["BIASFILE"], s, zero, filetype="BIAS", primary={"CCDGAIN": GAIN})
    for key, filetype in (("DRKCFILE", "CTEDARK"), ("DARKFILE", "DARK")):
        write_trimmed_reference(root / REFS[key], {c: np.zeros((2051, 4096)) for c in (1, 2)}, filetype=filetype)
    write_ccdtab(root / REFS["CCDTAB"], s)
    write_oscntab(root / REFS["OSCNTAB"], s)
    tmp = root / f"{ROOTNAME}_raw.tmp.fits"
    write_raw(tmp, s, {2: cd, 1: ab}, rootname=ROOTNAME,
              switches={k: "PERFORM" for k in ("PCTECORR", "BLEVCORR", "BIASCORR", "DARKCORR")},
              extra={"PCTENSMD": 0, "PCTETLEN": 0, "PCTENFOR": 0, "PCTENPAR": 0, "FIXROCR": 0, "PCTERNOI": 0.0})
    tmp.rename(raw)
    return raw
