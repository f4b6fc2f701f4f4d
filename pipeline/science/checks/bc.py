"""Before-calibration checks: is this raw file fit to calibrate with the references its header names?

Each rule catches, before CA starts, something that would make calwf3/calacs (or our built-in engine,
which follows them) fail or silently do the wrong thing. The reference requirements are those of
ccd-calibration.md §5 (calwf3 UVIS: GetCCDRef, RefExist, the per-file re-checks) and §8 (calacs);
instruments and detectors without such a table get the generic "every named reference exists" rule.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.errors import BadInput
from pipeline.core.fitscards import header_values
from pipeline.core.names import BadName, rootname_of
from pipeline.science.checks.rules import Failure, Rule, run_rules
from pipeline.science.refs import IRAF_PREFIX, NA, locate_reference

#: A header as the rules read it: keyword -> value, the first of a repeated keyword.
Header = Mapping[str, Any]

#: WFC3/IR MULTIACCUM raws: their mode and the imset layout of each read.
IR_MODE = ("WFC3", "IR")
IR_EXTNAMES = ("SCI", "ERR", "DQ", "SAMP", "TIME")
IR_REQUIRED = ("ROOTNAME", "FILTER", "EXPTIME", "EXPSTART", "EXPEND", "SUBARRAY", "CCDGAIN", "NSAMP", "SAMP_SEQ",
               "SUBTYPE")

#: Detectors per instrument that owlpipe knows how to calibrate or delegate.
KNOWN_DETECTORS: dict[str, tuple[str, ...]] = {
    "WFC3": ("UVIS", "IR"),
    "ACS": ("WFC", "HRC", "SBC"),
    "COS": ("FUV", "NUV"),
    "STIS": ("CCD", "FUV-MAMA", "NUV-MAMA"),
}
CCD_DETECTORS = {("WFC3", "UVIS"), ("ACS", "WFC"), ("ACS", "HRC"), ("STIS", "CCD")}

#: Raw full-frame readout per chip (columns, rows), unbinned (detectors.md §9.4), and chips per file.
RAW_FULL_FRAME: dict[tuple[str, str], tuple[int, int, int]] = {
    ("WFC3", "UVIS"): (4206, 2070, 2),
    ("ACS", "WFC"): (4144, 2068, 2),
    ("ACS", "HRC"): (1062, 1044, 1),
}

SWITCH_VALUES = ("PERFORM", "OMIT", "COMPLETE", "SKIPPED")
PERFORM = "PERFORM"

#: Keywords calwf3/calacs read with no default (ccd-calibration.md §6 and §8 getacskeys.c).
REQUIRED_PRIMARY: dict[tuple[str, str], tuple[str, ...]] = {
    ("WFC3", "UVIS"): ("ROOTNAME", "FILTER", "EXPTIME", "EXPSTART", "EXPEND", "SUBARRAY", "CCDAMP",
                       "CCDGAIN", "FLASHSTA"),
    ("ACS", "WFC"): ("ROOTNAME", "EXPTIME", "EXPSTART", "EXPEND", "SUBARRAY", "CCDAMP"),
    ("ACS", "HRC"): ("ROOTNAME", "EXPTIME", "EXPSTART", "EXPEND", "SUBARRAY", "CCDAMP"),
    ("ACS", "SBC"): ("ROOTNAME", "EXPTIME", "EXPSTART", "EXPEND", "SUBARRAY"),
    IR_MODE: IR_REQUIRED,
}
_FLOAT_KEYWORDS = ("EXPTIME", "EXPSTART", "EXPEND", "CCDGAIN")


@dataclass(frozen=True)
class RefNeed:
    """One reference keyword a calibration switch needs (one row of §5's table or §8's list)."""

    keyword: str
    #: needed when any of these switches is PERFORM; empty = always
    switches: tuple[str, ...] = ()
    #: FILETYPE the file must carry (prefix match); None = not checked by calwf3/calacs
    filetype: str | None = None
    #: tables carry FILETYPE in the table extension, images in the primary header
    table: bool = False
    #: the keyword must exist but its value may be N/A
    na_ok: bool = False
    #: the keyword may be absent or N/A; a named file must still exist
    optional: bool = False
    #: data properties the file must agree with: DETECTOR, FILTER, CCDGAIN, CCDAMP, BINNING
    match: tuple[str, ...] = ()
    #: also needs these switches PERFORM / needs this switch not PERFORM
    requires: str | None = None
    unless: str | None = None
    #: a PEDIGREE of DUMMY is an error (other dummies make calwf3 skip the step quietly)
    dummy_is_error: bool = False
    #: one of P/D/LFLTFILE: together they need at least one real file
    flat: bool = False

    def needed(self, raw: RawFile) -> bool:
        on = not self.switches or any(raw.switch(s) == PERFORM for s in self.switches)
        if self.requires and raw.switch(self.requires) != PERFORM:
            return False
        if self.unless and raw.switch(self.unless) == PERFORM:
            return False
        if on and self.keyword == "CRREJTAB" and raw.detector != "IR":  # IR fits one ramp
            return raw.images_combined >= 2
        return on


_DET = ("DETECTOR",)
_WF3CCD = ("DQICORR", "ATODCORR", "BLEVCORR", "BIASCORR", "FLSHCORR")
_FLATS = (("PFLTFILE", "PIXEL-TO-PIXEL FLAT"), ("DFLTFILE", "DELTA FLAT"), ("LFLTFILE", "LARGE SCALE FLAT"))

_UVIS_NEEDS = (
    RefNeed("CCDTAB", (), "CCD PARAMETERS", table=True, match=_DET, dummy_is_error=True),
    RefNeed("OSCNTAB", _WF3CCD, "OVERSCAN", table=True, match=_DET),  # opened whenever WF3CCD runs
    RefNeed("BPIXTAB", ("DQICORR",), "BAD PIXELS", table=True, na_ok=True, match=_DET),
    RefNeed("SNKCFILE", ("DQICORR",)),
    RefNeed("BIASFILE", ("BIASCORR",), "BIAS", match=("CCDGAIN", "CCDAMP", "BINNING")),
    RefNeed("SATUFILE", ("BIASCORR",), optional=True, match=("BINNING",)),
    RefNeed("FLSHFILE", ("FLSHCORR",), "POST FLASH"),
    RefNeed("DARKFILE", ("DARKCORR",), "DARK", match=_DET),
    RefNeed("DRKCFILE", ("PCTECORR",), "CTEDARK", match=_DET),
    *(RefNeed(k, ("FLATCORR",), t, na_ok=True, flat=True, match=("FILTER", "DETECTOR")) for k, t in _FLATS),
    RefNeed("SHADFILE", ("SHADCORR",), "SHUTTER SHADING", match=_DET),
    RefNeed("IMPHTTAB", ("PHOTCORR",), table=True),
    RefNeed("ATODTAB", ("ATODCORR",), "ANALOG-TO-DIGITAL", table=True),
    RefNeed("CRREJTAB", ("CRCORR", "RPTCORR"), table=True),
    RefNeed("PCTETAB", ("PCTECORR",), table=True),
    RefNeed("BIACFILE", ("PCTECORR",)),
)

_ACS_CCD_NEEDS = (
    RefNeed("CCDTAB", (), "CCD PARAMETERS", table=True, match=_DET, dummy_is_error=True),
    RefNeed("BPIXTAB", ("DQICORR",), "BAD PIXELS", table=True, match=_DET),
    RefNeed("BIASFILE", ("BIASCORR",), "BIAS", match=("CCDGAIN", "CCDAMP", "BINNING")),
    RefNeed("SATUFILE", ("BIASCORR",), match=("BINNING",)),  # mandatory for calacs, no scalar fallback
    RefNeed("OSCNTAB", ("BLEVCORR",), "OVERSCAN", table=True, match=_DET),
    RefNeed("DARKFILE", ("DARKCORR",), "DARK", match=_DET, unless="PCTECORR"),
    RefNeed("DRKCFILE", ("DARKCORR",), "CTEDARK", match=_DET, requires="PCTECORR"),
    RefNeed("FLSHFILE", ("FLSHCORR",), "POST FLASH"),
    *(RefNeed(k, ("FLATCORR",), t, na_ok=True, flat=True, match=("FILTER", "DETECTOR")) for k, t in _FLATS),
    RefNeed("SHADFILE", ("SHADCORR",), "SHUTTER SHADING", match=_DET),
    RefNeed("IMPHTTAB", ("PHOTCORR",), table=True),
    RefNeed("SNKCFILE", ("SINKCORR",)),
    RefNeed("CRREJTAB", ("CRCORR", "RPTCORR"), table=True),
    RefNeed("PCTETAB", ("PCTECORR",), table=True),
    RefNeed("ATODTAB", ("ATODCORR",), "ANALOG-TO-DIGITAL", table=True),
)

_ACS_SBC_NEEDS = (
    RefNeed("BPIXTAB", ("DQICORR",), "BAD PIXELS", table=True, match=_DET),  # a real file for a MAMA
    RefNeed("DARKFILE", ("DARKCORR",), "DARK", match=_DET),
    *(RefNeed(k, ("FLATCORR",), t, na_ok=True, flat=True, match=("FILTER", "DETECTOR")) for k, t in _FLATS),
    RefNeed("IMPHTTAB", ("PHOTCORR",), table=True),
    RefNeed("MLINTAB", ("GLINCORR", "LFLGCORR"), table=True),
)

_IR_NEEDS = (
    RefNeed("CCDTAB", (), "CCD PARAMETERS", table=True, match=_DET, dummy_is_error=True),
    RefNeed("OSCNTAB", (), "OVERSCAN", table=True, match=_DET),  # opened by DoIR whatever the switches
    RefNeed("BPIXTAB", ("DQICORR",), "BAD PIXELS", table=True, na_ok=True, match=_DET),
    RefNeed("NLINFILE", ("NLINCORR", "ZSIGCORR"), "LINEARITY COEFFICIENTS", match=_DET),
    RefNeed("DARKFILE", ("DARKCORR",), "DARK", match=_DET),
    *(RefNeed(k, ("FLATCORR",), t, na_ok=True, flat=True, match=("FILTER", "DETECTOR")) for k, t in _FLATS),
    RefNeed("IMPHTTAB", ("PHOTCORR",), table=True),
    RefNeed("CRREJTAB", ("CRCORR",), "COSMIC RAY REJECTION", table=True, match=_DET, dummy_is_error=True),
)

#: (instrument, detector) → what each PERFORM switch needs.
REFERENCE_NEEDS: dict[tuple[str, str], tuple[RefNeed, ...]] = {
    ("WFC3", "UVIS"): _UVIS_NEEDS,
    ("ACS", "WFC"): _ACS_CCD_NEEDS,
    ("ACS", "HRC"): _ACS_CCD_NEEDS,
    ("ACS", "SBC"): _ACS_SBC_NEEDS,
    IR_MODE: _IR_NEEDS,
}


# ------------------------------------------------------------------------------------------ subject


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


@dataclass
class RawFile:
    """A raw exposure's headers (no pixels are read) and where its references should be."""

    path: Path
    primary: Header
    extensions: list[Header]
    cache: Path
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    #: exposures combined by CRCORR/RPTCORR (the association's member count); None = from the header
    members: int | None = None
    _reference_headers: dict[Path, tuple[Header, Header | None]] = field(
        default_factory=dict, init=False, repr=False)

    @classmethod
    def open(cls, path: Path, cache: Path, *, members: int | None = None,
             environ: Mapping[str, str] | None = None) -> RawFile:
        try:
            primary, *extensions = header_values(path, None)
        except OSError as exc:
            raise BadInput(f"{Path(path).name}: not a readable FITS file: {exc}", path=path) from None
        return cls(Path(path), primary, extensions, cache, dict(os.environ if environ is None else environ),
                   members)

    @property
    def instrument(self) -> str:
        return _text(self.primary.get("INSTRUME")).upper()

    @property
    def detector(self) -> str:
        return _text(self.primary.get("DETECTOR")).upper()

    @property
    def mode(self) -> tuple[str, str]:
        return (self.instrument, self.detector)

    def switch(self, name: str) -> str:
        """A calibration switch's value; a missing switch means OMIT (calwf3 §6)."""
        return _text(self.primary.get(name, "OMIT")).upper()

    @property
    def switches(self) -> dict[str, str]:
        return {k: _text(v).upper() for k, v in self.primary.items() if k.endswith("CORR")}

    @property
    def images_combined(self) -> int:
        if self.members is not None:
            return self.members
        counts = [self.primary.get("CRSPLIT", 1), self.primary.get("NRPTEXP", 1)]
        return max(int(c) if isinstance(c, int | float) else 1 for c in counts)

    def sci_headers(self) -> list[Header]:
        return [h for h in self.extensions if _text(h.get("EXTNAME")).upper() == "SCI"]

    def binning(self) -> tuple[int, int]:
        sci = self.sci_headers()
        source = sci[0] if sci else self.primary
        return (int(source.get("BINAXIS1", self.primary.get("BINAXIS1", 1))),
                int(source.get("BINAXIS2", self.primary.get("BINAXIS2", 1))))

    def reference_headers(self, path: Path) -> tuple[Header, Header | None]:
        """(primary, first extension) headers of a reference file, read once per check run."""
        if path not in self._reference_headers:
            primary, *rest = header_values(path, 2)
            self._reference_headers[path] = (primary, rest[0] if rest else None)
        return self._reference_headers[path]


# ------------------------------------------------------------------------------------------- rules


def check_instrument(raw: RawFile) -> Iterator[tuple[str, str]]:
    if not raw.instrument:
        yield "INSTRUME", "missing"
    elif raw.instrument not in KNOWN_DETECTORS:
        yield "INSTRUME", f"{raw.instrument!r} is not an instrument owlpipe calibrates ({', '.join(KNOWN_DETECTORS)})"
    else:
        try:
            from_name = rootname_of(raw.path).instrument.upper()
        except BadName:
            return
        if from_name != raw.instrument:
            yield "INSTRUME", f"{raw.instrument!r} but the file name's instrument letter means {from_name}"


def check_detector(raw: RawFile) -> Iterator[tuple[str, str]]:
    known = KNOWN_DETECTORS.get(raw.instrument)
    if known is None:
        return
    if not raw.detector:
        yield "DETECTOR", "missing"
    elif raw.detector not in known:
        yield "DETECTOR", f"{raw.detector!r} is not a {raw.instrument} detector ({', '.join(known)})"


def check_rootname(raw: RawFile) -> Iterator[tuple[str, str]]:
    value = _text(raw.primary.get("ROOTNAME")).lower()
    try:
        expected = rootname_of(raw.path).name
    except BadName as exc:
        yield "ROOTNAME", f"file name does not follow the HST convention: {exc}"
        return
    if value and value != expected:
        yield "ROOTNAME", f"{value!r} does not match the file name ({expected})"


def check_required_keywords(raw: RawFile) -> Iterator[tuple[str, str]]:
    for key in REQUIRED_PRIMARY.get(raw.mode, ("ROOTNAME",)):
        if key not in raw.primary or _text(raw.primary[key]) == "":
            yield key, "required keyword is missing or blank"
        elif key in _FLOAT_KEYWORDS and not isinstance(raw.primary[key], int | float):
            yield key, f"must be a number, got {raw.primary[key]!r}"
        elif key == "SUBARRAY" and not isinstance(raw.primary[key], bool):
            yield key, f"must be a logical T/F, got {raw.primary[key]!r}"


def check_switch_values(raw: RawFile) -> Iterator[tuple[str, str]]:
    for key, value in raw.switches.items():
        if value not in SWITCH_VALUES:
            yield key, f"{value!r} is not one of {'/'.join(SWITCH_VALUES)}"


def check_ccdamp(raw: RawFile) -> Iterator[tuple[str, str]]:
    if raw.mode not in CCD_DETECTORS or "CCDAMP" not in raw.primary:
        return
    amp = _text(raw.primary["CCDAMP"]).upper()
    if not amp or any(c not in "ABCD" for c in amp) or len(set(amp)) != len(amp):
        yield "CCDAMP", f"{amp!r} is not a set of amplifiers from A-D"


def check_exptime(raw: RawFile) -> Iterator[tuple[str, str]]:
    exptime, start, end = (raw.primary.get(k) for k in ("EXPTIME", "EXPSTART", "EXPEND"))
    if not all(isinstance(v, int | float) for v in (exptime, start, end)):
        return  # required-keywords reports missing or non-numeric values
    if exptime < 0:
        yield "EXPTIME", f"{exptime} s is negative"
    if end < start:
        yield "EXPEND", f"{end} is before EXPSTART {start}"
    elif exptime > (end - start) * 86400.0 + 1.0:
        yield "EXPTIME", f"{exptime} s is longer than EXPEND-EXPSTART ({(end - start) * 86400.0:.1f} s)"


def check_nextend(raw: RawFile) -> Iterator[tuple[str, str]]:
    present = len(raw.extensions)
    nextend = raw.primary.get("NEXTEND")
    if not isinstance(nextend, int):
        yield "NEXTEND", f"missing or not an integer ({nextend!r}); the file has {present} extension(s)"
        return
    if nextend != present:
        yield "NEXTEND", f"says {nextend} but the file has {present} extension(s)"
    if raw.instrument not in ("WFC3", "ACS") or raw.detector == "IR":
        return
    names = [(_text(h.get("EXTNAME")).upper(), h.get("EXTVER", 1)) for h in raw.extensions]
    imsets = present // 3
    expected = [(name, ver) for ver in range(1, imsets + 1) for name in ("SCI", "ERR", "DQ")]
    if present % 3 or names != expected:
        yield "EXTNAME", f"extensions are {names}, expected SCI/ERR/DQ triplets with EXTVER 1..{imsets}"
    full = RAW_FULL_FRAME.get(raw.mode)
    if full and raw.primary.get("SUBARRAY") is False and nextend != 3 * full[2]:
        yield "NEXTEND", (f"a full-frame {raw.detector} raw has {full[2]} chip(s), "
                          f"so NEXTEND={3 * full[2]}, not {nextend}")


def check_science_geometry(raw: RawFile) -> Iterator[tuple[str, str]]:
    full = RAW_FULL_FRAME.get(raw.mode)
    for i, sci in enumerate(raw.sci_headers(), start=1):
        shape = (sci.get("NAXIS1", 0), sci.get("NAXIS2", 0)) if sci.get("NAXIS", 0) == 2 else None
        if shape is None:
            yield f"SCI,{i}", "has no 2-D pixel data"
            continue
        if raw.mode in (("WFC3", "UVIS"), ("ACS", "WFC")) and "CCDCHIP" not in sci:
            yield f"SCI,{i}.CCDCHIP", "missing: the reference imset is chosen by CCDCHIP"
        if full is None:
            continue
        bx, by = raw.binning()
        expected = (full[0] // bx, full[1] // by)
        if raw.primary.get("SUBARRAY") is False and shape != expected:
            yield f"SCI,{i}", f"full-frame raw is {shape[0]}x{shape[1]}, expected {expected[0]}x{expected[1]}"
        elif shape[0] > expected[0] or shape[1] > expected[1]:
            yield f"SCI,{i}", f"{shape[0]}x{shape[1]} is larger than the detector readout {expected[0]}x{expected[1]}"


def _reference_value(raw: RawFile, keyword: str) -> str | None:
    """The header value, None when the keyword is absent."""
    return _text(raw.primary[keyword]) if keyword in raw.primary else None


def _is_na(value: str | None) -> bool:
    return value is None or value == "" or value.upper() == NA


def check_references_present(raw: RawFile) -> Iterator[tuple[str, str]]:
    needs = REFERENCE_NEEDS.get(raw.mode)
    if needs is None:
        yield from _generic_references_present(raw)
        return
    flats: list[str | None] = []
    for need in needs:
        if not need.needed(raw):
            continue
        value = _reference_value(raw, need.keyword)
        if need.flat:
            flats.append(value)
        if value is None and not need.optional:
            yield need.keyword, f"missing, but {_why(need, raw)} needs it"
        elif _is_na(value):
            if not (need.optional or need.na_ok):
                yield need.keyword, f"is {value or 'blank'!r}, but {_why(need, raw)} needs a file"
        else:
            path = locate_reference(value, raw.cache, raw.environ)
            if path is None or not path.is_file():
                yield need.keyword, f"{value} not found (looked for {path})"
    if flats and all(_is_na(v) for v in flats):
        yield "PFLTFILE", "FLATCORR=PERFORM needs at least one of PFLTFILE/DFLTFILE/LFLTFILE to name a file"


def _why(need: RefNeed, raw: RawFile) -> str:
    on = [s for s in need.switches if raw.switch(s) == PERFORM]
    return f"{on[0]}=PERFORM" if on else f"calibrating {raw.instrument}/{raw.detector}"


def _generic_references_present(raw: RawFile) -> Iterator[tuple[str, str]]:
    """No requirement table: every reference the header names with the instrument's prefix must exist."""
    prefix = IRAF_PREFIX.get(raw.instrument)
    if prefix is None:
        return
    for key, value in raw.primary.items():
        text = _text(value)
        if key.endswith(("FILE", "TAB")) and text.lower().startswith(prefix + "$"):
            path = locate_reference(text, raw.cache, raw.environ)
            if path is None or not path.is_file():
                yield key, f"{text} not found (looked for {path})"


def check_references_match(raw: RawFile) -> Iterator[tuple[str, str]]:
    for need in REFERENCE_NEEDS.get(raw.mode, ()):
        value = _reference_value(raw, need.keyword)
        if not need.needed(raw) or _is_na(value):
            continue
        path = locate_reference(value, raw.cache, raw.environ)
        if path is None or not path.is_file():
            continue  # references-present reports it
        primary, first = raw.reference_headers(path)
        yield from _match_reference(raw, need, path.name, primary, first)


def _match_reference(raw: RawFile, need: RefNeed, name: str, primary: Header,
                     first: Header | None) -> Iterator[tuple[str, str]]:
    key = need.keyword
    if need.dummy_is_error and _text(primary.get("PEDIGREE")).upper().startswith("DUMMY"):
        yield key, f"{name} has PEDIGREE=DUMMY, which is an error for {key}"
    if need.filetype:
        # tables: calwf3 reads FILETYPE from the table extension; accept the primary's if the
        # extension has none, as archive tables often carry it there only
        source = first if need.table and first is not None and "FILETYPE" in first else primary
        filetype = _text(source.get("FILETYPE")).upper()
        if not filetype:
            yield key, f"{name} has no FILETYPE (expected {need.filetype!r})"
        elif not filetype.startswith(need.filetype):
            yield key, f"{name} has FILETYPE={filetype!r}, expected {need.filetype!r}"
    if "DETECTOR" in need.match:
        ref_det = _text(primary.get("DETECTOR")).upper()
        if "DETECTOR" not in primary:
            yield key, f"{name} has no DETECTOR keyword"
        elif not raw.detector.startswith(ref_det):
            yield key, f"{name} is for DETECTOR={ref_det!r}, the data are {raw.detector!r}"
    if "FILTER" in need.match:
        for fkey in ("FILTER",) if raw.instrument == "WFC3" else ("FILTER1", "FILTER2"):
            want = _text(raw.primary.get(fkey)).upper()
            have = _text(primary.get(fkey)).upper()
            if have != "ANY" and have != want:
                yield key, f"{name} is for {fkey}={have or '(none)'!r}, the data have {want!r}"
    if "CCDGAIN" in need.match and isinstance(raw.primary.get("CCDGAIN"), int | float):
        gain = primary.get("CCDGAIN")
        if not isinstance(gain, int | float):
            yield key, f"{name} has no numeric CCDGAIN"
        elif gain != -1 and abs(float(gain) - float(raw.primary["CCDGAIN"])) > 1e-3:
            yield key, f"{name} is for CCDGAIN={gain}, the data have {raw.primary['CCDGAIN']}"
    if "CCDAMP" in need.match and "CCDAMP" in primary:
        have = _text(primary["CCDAMP"]).upper()
        want = _text(raw.primary.get("CCDAMP")).upper()
        if have not in ("ANY", "N/A", "SINGLE_AMP", "SINGLE_OR_ALL") and not set(want) <= set(have):
            yield key, f"{name} is for CCDAMP={have!r}, the data read out {want!r}"
    if "BINNING" in need.match:
        ref_sci = first if first is not None else primary
        have = (int(ref_sci.get("BINAXIS1", primary.get("BINAXIS1", 1))),
                int(ref_sci.get("BINAXIS2", primary.get("BINAXIS2", 1))))
        if have != raw.binning():
            yield key, f"{name} is binned {have[0]}x{have[1]}, the data {raw.binning()[0]}x{raw.binning()[1]}"


def check_ir_ramp(raw: RawFile) -> Iterator[tuple[str, str]]:
    """WFC3/IR MULTIACCUM layout (ir-calibration.md §2-§3): NEXTEND = 5 x NSAMP, each read an imset of
    SCI, ERR, DQ, SAMP, TIME with SAMPTIME, and a DARKFILE made for the sample sequence and subarray type."""
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



RULES: tuple[Rule[RawFile], ...] = (
    Rule("instrument-known", "INSTRUME is an instrument owlpipe calibrates and agrees with the file name",
         check_instrument),
    Rule("detector-known", "DETECTOR is one of the instrument's detectors", check_detector),
    Rule("rootname", "ROOTNAME matches the file name", check_rootname),
    Rule("required-keywords", "keywords calwf3/calacs read without a default are present and typed",
         check_required_keywords),
    Rule("switch-values", "every calibration switch is PERFORM, OMIT, COMPLETE or SKIPPED",
         check_switch_values),
    Rule("ccdamp", "CCDAMP names amplifiers A-D", check_ccdamp),
    Rule("exptime", "EXPTIME is non-negative and fits between EXPSTART and EXPEND", check_exptime),
    Rule("nextend", "NEXTEND equals the extensions present, as SCI/ERR/DQ imsets, one per chip",
         check_nextend),
    Rule("science-geometry", "SCI arrays exist, carry CCDCHIP and fit the detector readout",
         check_science_geometry),
    Rule("ir-ramp", "a WFC3/IR raw holds NSAMP SCI/ERR/DQ/SAMP/TIME imsets with SAMPTIME, and its dark is for "
         "its SAMP_SEQ and SUBTYPE", check_ir_ramp),
    Rule("references-present", "every reference a PERFORM switch needs is named and in the cache",
         check_references_present),
    Rule("references-match", "each needed reference has the right FILETYPE, DETECTOR, FILTER, CCDGAIN, "
         "CCDAMP and binning, and a CCDTAB is not a dummy", check_references_match),
)


def check_raw(path: Path, cache: Path, *, members: int | None = None,
              environ: Mapping[str, str] | None = None) -> list[Failure]:
    """All before-calibration failures of one raw file (empty when it is fit to calibrate)."""
    return run_rules(RULES, RawFile.open(path, cache, members=members, environ=environ), path)
