"""Start-up of owlpipe's console scripts: the cyclic garbage collector held off while modules load.

Importing numpy, astropy, SQLAlchemy or drizzlepac creates a few hundred thousand objects that live
as long as the process, and the collector, counting them as new, scans them again and again while
they are being made: with it paused the imports of a CA node take ~20 % less time (0.21 -> 0.17 s)
and an MD node's drizzlepac ~0.25 s less (1.3 -> 1.07 s; issue 15's per-node budget). Once the
modules are in, :func:`loaded` moves every object there is to the permanent generation
(``gc.freeze``: module-level objects, never garbage) and turns the collector back on, so the work
itself is collected as usual and its collections no longer walk the modules.

:func:`begin` also tells numpy not to ask for huge pages (``NUMPY_MADVISE_HUGEPAGE=0``, unless the
operator has set it; children such as the local executor's nodes inherit it). numpy marks every
array of 4 MiB or more with ``madvise(MADV_HUGEPAGE)``, and where the kernel's transparent huge
pages are ``madvise`` (Debian's default) each first touch of such an array may compact memory to
find a free 2 MiB page. On the 2-core Firecracker VMs owlpipe is benchmarked on, a node's arrays
then cost seconds of system time whenever the guest had handed its free memory back to the host:
500 MB of ``np.ones`` took 3.0-3.3 s of system time with numpy's request against 0.22-0.29 s
without, and ``owl calibrate`` on a full-frame ACS/WFC exposure 2.1-2.3 s against 1.1-1.4 s. The
calibration walks each array a few times, so the larger TLB reach is worth little. (Where huge pages
are ``always``, the kernel still uses them; only numpy's request is withdrawn.)

Only a process that started through a console script (:func:`begin`) is touched: a test run or a
program using owlpipe as a library keeps its collector and numpy's page policy as they are.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator

_began = False
_console = False


def begin() -> None:
    """At a console script's entry: no collections until the command's modules are loaded, and
    numpy told not to ask for huge pages (read by numpy when it is imported, and by children)."""
    global _began, _console
    _console = True
    os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
    if gc.isenabled():
        gc.disable()
        _began = True


def console_script() -> bool:
    """Whether this process started through a console script (:func:`begin`): process-wide
    settings such as :func:`pipeline.core.heap.keep_freed_memory` are only for such processes."""
    return _console


def loaded() -> None:
    """The modules are in: freeze what exists and collect from here on (when :func:`begin` paused).
    Once: a long-running command (``owl watch``) never freezes the objects of its later work."""
    global _began
    if _began:
        _began = False
        gc.freeze()
        gc.enable()


@contextlib.contextmanager
def loading() -> Iterator[None]:
    """Import modules inside the block with the collector paused, then :func:`loaded`; a no-op in a
    process that did not :func:`begin` or has loaded already."""
    if _began:
        gc.disable()
    try:
        yield
    finally:
        loaded()
