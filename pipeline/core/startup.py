"""Start-up of owlpipe's console scripts: the cyclic garbage collector held off while modules load.

Importing numpy, astropy, SQLAlchemy or drizzlepac creates a few hundred thousand objects that live
as long as the process, and the collector, counting them as new, scans them again and again while
they are being made: with it paused the imports of a CA node take ~20 % less time (0.21 -> 0.17 s)
and an MD node's drizzlepac ~0.25 s less (1.3 -> 1.07 s; issue 15's per-node budget). Once the
modules are in, :func:`loaded` moves every object there is to the permanent generation
(``gc.freeze``: module-level objects, never garbage) and turns the collector back on, so the work
itself is collected as usual and its collections no longer walk the modules.

Only a process that started through a console script (:func:`begin`) is touched: a test run or a
program using owlpipe as a library keeps its collector as it is.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

_began = False


def begin() -> None:
    """At a console script's entry: no collections until the command's modules are loaded."""
    global _began
    if gc.isenabled():
        gc.disable()
        _began = True


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
