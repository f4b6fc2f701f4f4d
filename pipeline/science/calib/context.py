"""What every calibration step needs: the exposure's switches, its keywords, references, a log.

Switch semantics are calwf3's: a missing switch means OMIT; only PERFORM, OMIT, COMPLETE and
SKIPPED are valid. A step that ran becomes COMPLETE; one that could not (dummy reference, zero flash
duration) becomes SKIPPED; OMIT stays OMIT.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astropy.io import fits

from pipeline.core.errors import BadInput, MissingReference
from pipeline.science.calib.imageio import RefImage
from pipeline.science.calib.refnames import is_na, require_reference

PERFORM, OMIT, COMPLETE, SKIPPED = "PERFORM", "OMIT", "COMPLETE", "SKIPPED"
VALID_SWITCHES = (PERFORM, OMIT, COMPLETE, SKIPPED)


def header_value(header: Mapping[str, Any], keyword: str, kind: type, *, default: Any = None,
                 path: Path | None = None) -> Any:
    """A primary-header value of the given type; absent without a default is :class:`BadInput`.

    This is hstcal's ``GetKey*`` with ``NO_DEFAULT`` / ``USE_DEFAULT``: the one-line error names the
    keyword, as calwf3's ``Keyword = ...`` message does.
    """
    if keyword not in header or header[keyword] is None:
        if default is None:
            raise BadInput(f"required keyword {keyword} is missing", path=path, keyword=keyword)
        return default
    value = header[keyword]
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().upper()
            if text in ("T", "TRUE", "YES"):
                return True
            if text in ("F", "FALSE", "NO"):
                return False
            raise ValueError(value)
        if kind is str:
            return str(value).strip()
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return kind(value)
    except (TypeError, ValueError):
        raise BadInput(f"keyword {keyword} = {value!r} is not a valid {kind.__name__}", path=path,
                       keyword=keyword) from None


@dataclass
class CalContext:
    """Per-exposure state shared by the steps of one engine run."""

    path: Path
    primary: fits.Header
    detector: str
    site: object | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    log_sink: Callable[[str, str], None] | None = None
    switches: dict[str, str] = field(default_factory=dict)
    refs: dict[str, RefImage] = field(default_factory=dict)
    ref_paths: dict[str, Path] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    #: Primary-header keywords the steps computed (PHOTFLAM of imset 1, ATODGNA..., PHTRATIO).
    primary_updates: dict[str, object] = field(default_factory=dict)
    #: calwf3's ``wf32d->chip1_flam``: chip 1's PHTFLAM1 as the IMPHTTAB gave it (a double, never
    #: rounded); FLUXCORR of a subarray divides by it instead of the header value.
    chip1_flam: float = 1.0
    #: Per thread: where log lines are held while chips are calibrated side by side (``perchip``).
    _held: threading.local = field(default_factory=threading.local, repr=False, compare=False)
    _refs_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    # ------------------------------------------------------------------------------------- logging
    def log(self, text: str) -> None:
        self.emit("info", text)

    def warn(self, text: str) -> None:
        self.emit("warn", text)

    def emit(self, severity: str, text: str) -> None:
        """One log line: to the history and the sink, or held back while this thread's lines are held."""
        held = getattr(self._held, "lines", None)
        if held is not None:
            held.append((severity, text))
            return
        self.history.append(text if severity == "info" else "WARNING: " + text)
        if self.log_sink is not None:
            self.log_sink(severity, text)

    @contextlib.contextmanager
    def holding_log(self) -> Iterator[list[tuple[str, str]]]:
        """Hold this thread's log lines in the yielded list (emit them later, in a chosen order)."""
        lines: list[tuple[str, str]] = []
        self._held.lines = lines
        try:
            yield lines
        finally:
            self._held.lines = None

    # ------------------------------------------------------------------------------------ keywords
    def key(self, keyword: str, kind: type, default: Any = None) -> Any:
        return header_value(self.primary, keyword, kind, default=default, path=self.path)

    # ------------------------------------------------------------------------------------ switches
    def read_switches(self, names: tuple[str, ...]) -> None:
        for name in names:
            raw = self.primary.get(name)
            value = OMIT if raw is None else str(raw).strip().upper()
            if value not in VALID_SWITCHES:
                raise BadInput(f"switch {name} = {raw!r} is not one of {', '.join(VALID_SWITCHES)}",
                               path=self.path, keyword=name)
            self.switches[name] = value

    def perform(self, name: str) -> bool:
        return self.switches.get(name) == PERFORM

    def refuse_both_cr_switches(self) -> None:
        """calwf3's GetCCDSws and calacs's GetFlags stop (HEADER_PROBLEM) before any work when RPTCORR
        and CRCORR are both PERFORM: they are exclusive."""
        if self.perform("RPTCORR") and self.perform("CRCORR"):
            raise BadInput("RPTCORR and CRCORR are both PERFORM: set one of them to OMIT", path=self.path,
                           keyword="RPTCORR")

    def done(self, name: str, state: str = COMPLETE) -> None:
        """Record a step's outcome; the product header gets it."""
        if self.switches.get(name) == PERFORM:
            self.switches[name] = state

    # ---------------------------------------------------------------------------------- references
    def reference_path(self, keyword: str, *, optional: bool = False) -> Path | None:
        if keyword not in self.ref_paths:
            path = require_reference(self.primary, keyword, site=self.site, environ=self.environ,
                                     optional=optional)
            if path is None:
                return None
            self.ref_paths[keyword] = path
        return self.ref_paths[keyword]

    def ref_image(self, keyword: str) -> RefImage:
        with self._refs_lock:   # chips in two threads open a reference file once
            if keyword not in self.refs:
                path = self.reference_path(keyword)
                assert path is not None
                self.refs[keyword] = RefImage.open(keyword, path)
            return self.refs[keyword]

    def has_value(self, keyword: str) -> bool:
        return keyword in self.primary and not is_na(self.primary[keyword])


# ----------------------------------------------------------------------------- reference checking


def _table_header(path: Path) -> tuple[fits.Header, fits.Header]:
    with fits.open(path, memmap=False) as hdul:
        return hdul[0].header.copy(), (hdul[1].header.copy() if len(hdul) > 1 else fits.Header())


def check_reference(ctx: CalContext, keyword: str, *, filetype: str | None, table: bool = False,
                    detector: bool = True, filters: tuple[str, ...] = (), gain: bool = False) -> None:
    """The FILETYPE/DETECTOR/FILTER/CCDGAIN checks of ``get*flags.c`` for one reference file.

    FILETYPE matches by prefix (table extension header for tables, primary for images); the file's
    DETECTOR must be a prefix of the science detector; FILTER* must match or be ANY; CCDGAIN must
    match or be -1. A mismatch is a :class:`MissingReference` naming the keyword, file and value.
    """
    path = ctx.reference_path(keyword)
    assert path is not None
    try:
        primary, ext = _table_header(path) if table else (ctx.ref_image(keyword).primary, None)
    except OSError as exc:
        raise MissingReference(f"{keyword} {path.name}: cannot read: {exc}", keyword=keyword, path=path) from None
    where = ext if table and ext is not None else primary
    if filetype is not None:
        actual = str(where.get("FILETYPE", primary.get("FILETYPE", ""))).strip().upper()
        if not actual.startswith(filetype):
            raise MissingReference(f"{keyword} {path.name}: FILETYPE '{actual}' is not '{filetype}'",
                                   keyword=keyword, path=path)
    if detector and "DETECTOR" in primary:
        det = str(primary["DETECTOR"]).strip().upper()
        if not ctx.detector.upper().startswith(det):
            raise MissingReference(f"{keyword} {path.name}: DETECTOR '{det}' does not match '{ctx.detector}'",
                                   keyword=keyword, path=path)
    for fkey in filters:
        want = str(ctx.primary.get(fkey, "")).strip().upper()
        have = str(primary.get(fkey, "ANY")).strip().upper()
        if have not in ("ANY", want):
            raise MissingReference(f"{keyword} {path.name}: {fkey} '{have}' does not match the data's '{want}'",
                                   keyword=keyword, path=path)
    if gain and "CCDGAIN" in primary:
        have_gain = float(primary["CCDGAIN"])
        want_gain = float(ctx.primary.get("CCDGAIN", 1.0))
        if have_gain != -1.0 and abs(have_gain - want_gain) > 1e-6:
            raise MissingReference(f"{keyword} {path.name}: CCDGAIN {have_gain:g} does not match the data's "
                                   f"{want_gain:g}", keyword=keyword, path=path)


def reference_is_dummy(ctx: CalContext, keyword: str) -> bool:
    """PEDIGREE beginning with DUMMY turns a step into a silent skip (``GetImageRef``)."""
    path = ctx.reference_path(keyword)
    if path is None:
        return False
    with fits.open(path, memmap=False) as hdul:
        return str(hdul[0].header.get("PEDIGREE", "")).strip().upper().startswith("DUMMY")
