"""WFC3/IR MULTIACCUM calibration with the built-in engine: calwf3's WF3IR chain (``wf3ir/doir.c``).

A raw IR exposure is a ramp of NSAMP non-destructive reads. The chain (DQICORR, ZSIGCORR, BLEVCORR,
ZOFFCORR, NOISCORR, NLINCORR, DARKCORR, PHOTCORR, UNITCORR, CRCORR, FLATCORR) works on every read
and writes ``_ima`` (all reads) and ``_flt`` (the up-the-ramp fit). The arithmetic follows
``shared/reference/ir-calibration.md`` including its float32/double rounding points.
"""

from collections.abc import Mapping


def is_ir(primary: Mapping[str, object]) -> bool:
    """A WFC3/IR exposure (told here, so that callers need not import the IR engine to ask)."""
    return (str(primary.get("INSTRUME", "")).strip().upper() == "WFC3"
            and str(primary.get("DETECTOR", "")).strip() == "IR")
