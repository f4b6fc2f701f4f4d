"""Freed memory kept in the process for reuse: glibc's ``malloc`` told not to hand large blocks
back to the kernel, for the short-lived node and calibration processes.

A numpy array above 32 MiB (a full-frame WFC3 or ACS chip in float32 is 33.6 MB) is its own
``mmap``: freeing it unmaps it, and the next one is mapped afresh, so every page is faulted in and
zeroed by the kernel again. Calibration and AstroDrizzle make and drop such temporaries by the
hundred. With ``mmap`` off (``M_MMAP_MAX = 0``) and heaps trimmed only above 2 GiB, a freed block
stays in its arena (the main heap, or a calibration thread's own 64 MiB heaps; a block too large for
those comes from the main heap) and the next array reuses its pages. The price: every arena keeps
its own peak, and ``np.zeros`` on reused memory has to clear it. Measured on the 2-core benchmark VM
(where a page fault costs several microseconds): a full-frame UVIS CR-SPLIT pair through
``owl calibrate`` 5.6-5.9 s -> 4.1-4.6 s (page faults 1.3 M -> 0.5 M, system time 4.0-4.8 s ->
1.4-1.6 s, peak RSS 1.55-1.65 -> 1.61-1.66 GB); a full-frame ACS/WFC exposure 1.43-1.49 s ->
0.99-1.00 s in one hour, unchanged within noise in another (the price of a fault varies), peak RSS
unchanged. AstroDrizzle on a full-frame pair: faults 2.1 M -> 0.4 M, system time
4.6-9.2 s -> 2.3-2.6 s, peak RSS 1.42 -> 1.85 GB in one process (MD's own figure for its two
processes, ``pipeline.science.forked``: 1.8 -> 2.1 GB; with its ``_flt`` and ``_flc`` sets side by side the
process tree's summed RSS 2.74 -> 3.26 GiB, inside the workflow's 4 GB request). Where two
associations' MD nodes share the machine, the faults cost most: the end-to-end benchmark's three
full-frame associations took 56.3-60.6 s against 59.5-62.7 s in four interleaved pairs of runs, MD's
system time 20-26 s -> 15-19 s in all.

Only processes that end when their work ends call :func:`keep_freed_memory` (stage nodes, ``owl
calibrate`` run as a command): a long-running ``owl watch`` or ``owl serve`` would keep its peak for
good. An operator's own setting of any of the three (``GLIBC_TUNABLES`` ``glibc.malloc.mmap_max``,
``trim_threshold``, ``mmap_threshold``, or the ``MALLOC_*_`` variables) leaves glibc's as it is,
and outside glibc nothing changes.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping

#: mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
#: Free memory at the top of a heap above this is given back (the largest value mallopt takes).
TRIM_THRESHOLD = 2**31 - 1
#: The operator's settings of what :func:`keep_freed_memory` changes: tunables, then the old variables.
_TUNABLES = ("glibc.malloc.mmap_max", "glibc.malloc.trim_threshold", "glibc.malloc.mmap_threshold")
_VARIABLES = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")


def operator_set(environ: Mapping[str, str]) -> bool:
    """Whether the environment already sets glibc's mmap or trim behaviour."""
    tunables = {item.split("=", 1)[0].strip() for item in environ.get("GLIBC_TUNABLES", "").split(":")}
    return bool(tunables.intersection(_TUNABLES)) or any(v in environ for v in _VARIABLES)


def keep_freed_memory(environ: Mapping[str, str] = os.environ) -> bool:
    """Serve every allocation from the heaps and keep what is freed there; True if glibc took it.
    Call it before the large arrays are made (blocks already mapped are unmapped when freed)."""
    if operator_set(environ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # not glibc: macOS, musl without it, Windows
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
