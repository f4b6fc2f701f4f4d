"""A usable process environment on a hostile pool node, settled before any third-party import.

Libraries write per-user files at import time under HOME (ccsdspy's config directory, astropy's and
matplotlib's caches): a job whose HOME is unset, missing or not writable would die on ``import``.
TMPDIR may name a directory that does not exist. Neither may crash a stage: HOME moves to a private
directory under the system's temporary directory, a bad TMPDIR is dropped, and :data:`NOTES` says what
was changed so the stage wrapper can write it to the trailer.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path


def _writable_dir(path: str | None) -> bool:
    try:
        return bool(path) and Path(path).is_dir() and os.access(path, os.W_OK | os.X_OK)
    except OSError:
        return False


def settle(environ: dict[str, str] | os._Environ = os.environ) -> list[str]:
    """Repair TMPDIR and HOME in ``environ`` where they are unusable; return what was done."""
    notes = []
    tmp = environ.get("TMPDIR")
    if tmp is not None and not _writable_dir(tmp):
        del environ["TMPDIR"]
        tempfile.tempdir = None  # recomputed without it
        notes.append(f"TMPDIR {tmp} is not a writable directory: ignored")
    home = environ.get("HOME")
    if not _writable_dir(home):
        private = Path(tempfile.gettempdir()) / f"owlpipe-home-{os.getuid()}"
        private.mkdir(mode=0o700, exist_ok=True)
        environ["HOME"] = str(private)
        why = "is not set" if not home else f"{home} is not a writable directory"
        notes.append(f"HOME {why}: per-user files go to {private}")
    return notes


#: What :func:`settle` changed in this process, one sentence each (empty on a normal machine).
NOTES: list[str] = settle()


def cpus(environ: Mapping[str, str] | None = None) -> int:
    """CPUs this process may keep busy: ``OMP_NUM_THREADS`` (HTCondor sets it to the slot's
    ``request_cpus``), else the CPUs it may run on."""
    value = (os.environ if environ is None else environ).get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1
