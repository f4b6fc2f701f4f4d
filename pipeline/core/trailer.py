"""Per-dataset trailers in the OPUS form, and their packaging as ``_trl.fits``.

Several processes (parallel CA nodes, hooks, the controller) append to one dataset's trailer, so
each line is written with a single ``write`` on an ``O_APPEND`` descriptor under an exclusive
``flock``: lines never interleave, and a reader never sees half a line.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: Severity → (letter, word) as OPUS writes them: ``2017181074130-I-INFO-text``.
SEVERITIES = {"info": ("I", "INFO"), "warn": ("W", "WARN"), "error": ("E", "ERROR")}
TRL_LINE_WIDTH = 132
_LINE_RE = re.compile(r"^(\d{13})-([IWE])-(INFO|WARN|ERROR)[- ](.*)$")


def opus_timestamp(t: float | None = None) -> str:
    """``YYYYDDDHHMMSS`` in UTC, the OPUS trailer time stamp."""
    return time.strftime("%Y%j%H%M%S", time.gmtime(time.time() if t is None else t))


def format_line(severity: str, text: str, t: float | None = None) -> str:
    """One trailer line; embedded newlines become separate continuation text on the same line."""
    letter, word = SEVERITIES[severity]
    flat = " ".join(text.splitlines()) if "\n" in text else text
    return f"{opus_timestamp(t)}-{letter}-{word}-{flat}"


@dataclass(frozen=True)
class TrailerLine:
    timestamp: str
    severity: str
    text: str


def parse_line(line: str) -> TrailerLine | None:
    """Parse an OPUS trailer line (both ``-I-INFO-`` and STScI's ``-I-INFO `` forms); None otherwise."""
    m = _LINE_RE.match(line)
    if not m:
        return None
    severity = {"I": "info", "W": "warn", "E": "error"}[m.group(2)]
    return TrailerLine(m.group(1), severity, m.group(4))


class Trailer:
    """Append-only trailer file for one dataset."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def _append(self, lines: Iterable[str]) -> None:
        data = "".join(line + "\n" for line in lines).encode()
        if not data:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        finally:
            os.close(fd)  # closing releases the lock

    def write(self, severity: str, text: str) -> None:
        self._append([format_line(severity, text)])

    def info(self, text: str) -> None:
        self.write("info", text)

    def warn(self, text: str) -> None:
        self.write("warn", text)

    def error(self, text: str) -> None:
        self.write("error", text)

    def block(self, severity: str, lines: Iterable[str]) -> None:
        """Append many lines at once (a traceback, a tool's captured log) without interleaving."""
        stamp = time.time()
        self._append(format_line(severity, line, stamp) for line in lines)

    def include(self, text: str, source: str) -> None:
        """Append another program's log verbatim, framed by INFO lines naming its source."""
        body = text.splitlines()
        self._append([format_line("info", f"---- begin {source} ----"), *body,
                      format_line("info", f"---- end {source} ----")])

    def lines(self) -> list[str]:
        if not self.path.exists():
            return []
        return self.path.read_text(errors="replace").splitlines()


def package_trailer(trailer_path: Path | str, out_fits: Path | str, *, dataset: str | None = None) -> Path:
    """Write a trailer as ``_trl.fits``: an ASCII table, one 132-character row per line, as STScI does.

    Longer lines are wrapped onto continuation rows so that nothing is cut off. The bytes are those
    astropy's ``TableHDU`` writes (``tests/test_trailer.py`` compares them), made here in plain Python
    (:mod:`pipeline.core.fitscards`): CL, which packages every trailer, imports neither numpy nor astropy.
    """
    from pipeline.core.fitscards import ascii_table, header_bytes
    from pipeline.core.fsutil import atomic_write

    rows: list[str] = []
    for line in Path(trailer_path).read_text(errors="replace").splitlines() or [""]:
        line = line.encode("ascii", "replace").decode()
        while len(line) > TRL_LINE_WIDTH:
            rows.append(line[:TRL_LINE_WIDTH])
            line = "    " + line[TRL_LINE_WIDTH:]
        rows.append(line)
    primary = [("SIMPLE", True, "conforms to FITS standard"), ("BITPIX", 8, "array data type"),
               ("NAXIS", 0, "number of array dimensions"), ("EXTEND", True, ""),
               ("DATE", time.strftime("%Y-%m-%d", time.gmtime()), "Creation date"),
               ("FILENAME", Path(out_fits).name, "Name of file")]
    if dataset:
        primary.append(("ROOTNAME", dataset, ""))
    with atomic_write(out_fits) as fh:
        fh.write(header_bytes(primary))
        for part in ascii_table(rows, TRL_LINE_WIDTH, column="TEXT_FILE", extname="TRL"):
            fh.write(part)
    return Path(out_fits)


def read_trl_fits(path: Path | str) -> list[str]:
    """Lines of a ``_trl.fits`` (ours or STScI's), trailing blanks stripped."""
    from astropy.io import fits

    with fits.open(path) as hdul:
        return [str(row[0]).rstrip() for row in hdul[1].data]
