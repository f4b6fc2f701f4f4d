"""A process that ends right after heavy work: skip the interpreter's last garbage collections.

At exit CPython clears the modules and then collects, walking every object still tracked: after a
calibration (numpy, astropy with its units registry, headers) that walk is about 0.3 s of wall and
CPU time per process, measured on ``owl calibrate`` (docs/benchmarks.md, "CA against hstcal").
:func:`gc.freeze` at exit moves those objects out of the collector's sight, so the walk is skipped.
Everything else about the exit is unchanged: atexit handlers and thread joins run, modules are torn
down, objects freed by reference counting (files closed by their owners) are freed as before; only
garbage held in reference cycles is left to the operating system with the rest of the process.
"""

from __future__ import annotations

import atexit
import gc


def skip_exit_collection() -> None:
    """Freeze the heap at interpreter exit (registered once per process, however often called)."""
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
