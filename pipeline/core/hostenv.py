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


#: Names a file holding how many of its CPUs a node may keep busy now (the local executor rewrites it
#: as other jobs start and end); absent on a pool, where a slot's CPUs are the node's throughout.
CPUS_NOW_VARIABLE = "OWL_CPUS_NOW_FILE"


def cpus_now(most: int, environ: Mapping[str, str] | None = None) -> int:
    """Of ``most`` CPUs, those this node may keep busy at this moment: the number in
    ``OWL_CPUS_NOW_FILE`` when it is lower (read at each split of work, so a node started beside
    another job gets the CPUs that job leaves), else ``most``."""
    path = (os.environ if environ is None else environ).get(CPUS_NOW_VARIABLE)
    if not path:
        return most
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return most
    return max(1, min(most, int(text))) if text.isdigit() else most


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


#: Where a container's memory limit is read (cgroup v2, then v1); "max" or a huge number means none.
CGROUP_MEMORY_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


def memory_mb() -> int | None:
    """The memory (MB) this machine gives its processes: physical memory, or the container's limit
    when that is lower (what a job may really use before the OOM killer comes); None if unknown."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):  # pragma: no cover - not POSIX
        total = 0
    for path in CGROUP_MEMORY_LIMITS:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and (total == 0 or 0 < int(text) < total):
            total = int(text)
        break
    return total // 2**20 or None
