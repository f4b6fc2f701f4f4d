"""Before-calibration checks specific to WFC3/IR MULTIACCUM raws (ir-calibration.md §2-§3).

The reference table (what each IR switch needs) and the ramp layout: NEXTEND = 5 x NSAMP, each
read an imset of SCI, ERR, DQ, SAMP, TIME with SAMPTIME, and a DARKFILE made for the exposure's
sample sequence and subarray type (calwf3 aborts otherwise).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from pipeline.science.refs import locate_reference

if TYPE_CHECKING:
    from pipeline.science.checks.bc import RawFile

IR_MODE = ("WFC3", "IR")
IR_EXTNAMES = ("SCI", "ERR", "DQ", "SAMP", "TIME")
IR_REQUIRED = ("ROOTNAME", "FILTER", "EXPTIME", "EXPSTART", "EXPEND", "SUBARRAY", "CCDGAIN", "NSAMP", "SAMP_SEQ",
               "SUBTYPE")


def _text(value: object) -> str:
    return str(value).strip() if value is not None else ""


def check_ir_ramp(raw: RawFile) -> Iterator[tuple[str, str]]:
    if raw.mode != IR_MODE:
        return
    nsamp = raw.primary.get("NSAMP")
    if not isinstance(nsamp, int) or not 1 <= nsamp <= 16:
        yield "NSAMP", f"{nsamp!r} is not a number of reads 1..16"
        return
    names = [(_text(h.get("EXTNAME")).upper(), h.get("EXTVER", 1)) for h in raw.extensions]
    expected = [(name, ver) for ver in range(1, nsamp + 1) for name in IR_EXTNAMES]
    if names[:len(expected)] != expected:
        yield "NEXTEND", f"a MULTIACCUM raw with NSAMP={nsamp} has SCI/ERR/DQ/SAMP/TIME imsets 1..{nsamp}"
        return
    for ver, sci in enumerate(raw.sci_headers()[:nsamp], start=1):
        samptime = sci.get("SAMPTIME")
        if not isinstance(samptime, int | float) or samptime < 0:
            yield f"SCI,{ver}.SAMPTIME", f"missing or negative ({samptime!r})"
    yield from _dark_mode(raw)


def _dark_mode(raw: RawFile) -> Iterator[tuple[str, str]]:
    """calwf3 compares SAMP_SEQ and SUBTYPE over the length of the dark's values."""
    value = _text(raw.primary.get("DARKFILE"))
    if raw.switch("DARKCORR") != "PERFORM" or not value or value.upper() == "N/A":
        return
    path = locate_reference(value, raw.cache, raw.environ)
    if path is None or not path.is_file():
        return  # references-present reports it
    primary, _ = raw.reference_headers(path)
    for key in ("SAMP_SEQ", "SUBTYPE"):
        have, want = _text(primary.get(key)), _text(raw.primary.get(key))
        if want[:len(have)] != have:
            yield "DARKFILE", f"{path.name} is for {key}={have!r}, the data have {want!r}"
