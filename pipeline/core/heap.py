"""Freed memory kept in the process for reuse: glibc's ``malloc`` told not to hand large blocks
back to the kernel, for the short-lived node and calibration processes.

A numpy array above 32 MiB (a full-frame WFC3 or ACS chip in float32 is 33.6 MB) is its own
``mmap``: freeing it unmaps it, and the next one is mapped afresh, so every page is faulted in and
zeroed by the kernel again. Calibration and AstroDrizzle make and drop such temporaries by the
hundred. With ``mmap`` off (``M_MMAP_MAX = 0``) and the heap trimmed only above 2 GiB, a freed
block stays in the heap and the next array reuses its pages. Measured on the 2-core benchmark VM
(where a page fault costs several microseconds): a full-frame UVIS CR-SPLIT pair through
``owl calibrate`` 5.6-5.9 s -> 4.1-4.2 s (page faults 1.3 M -> 0.5 M, system time 4.0-4.8 s ->
1.3-1.4 s, peak RSS within 5 %); AstroDrizzle on a full-frame pair: faults 2.1 M -> 0.4 M, system
time 4.6-9.2 s -> 2.3-2.6 s, but peak RSS 1.46 -> 1.89 GB, so the MD node keeps glibc's default
(``Stage.keeps_freed_memory``): its two processes would come within 0.3 GiB of its 4 GB request.

Only processes that end when their work ends call :func:`keep_freed_memory` (stage nodes,
``owl calibrate``): a long-running ``owl watch`` or ``owl serve`` would keep its peak for good.
An operator's own ``GLIBC_TUNABLES`` malloc settings win, and outside glibc nothing changes.
"""

from __future__ import annotations

import ctypes
import os

#: mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
#: Free memory at the top of the heap above this is given back (the largest value mallopt takes).
TRIM_THRESHOLD = 2**31 - 1


def keep_freed_memory(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Serve every allocation from the heap and keep what is freed there; True if glibc took it.
    Call it before the large arrays are made (blocks already mapped are unmapped when freed)."""
    if "glibc.malloc." in environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl without the symbol)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
