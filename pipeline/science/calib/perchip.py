"""The chips of one exposure calibrated side by side, with the results of one after the other.

calwf3 and calacs work on one imset after the other on one core. A CA node has two (the machine class
the pipeline is sized for): the heavy work of a step is numpy loops over a whole chip, which run
without the GIL, so the two chips of a full frame go through a step in two threads at once.

What must not change is what a sequential run gives: every pixel is computed by the same operations
in either case (nothing is split or summed across threads), the log lines are held per chip and
emitted in imset order, and when chips fail the error raised is the first chip's in imset order (the
one a sequential run would have stopped at), with the lines logged before it. Whatever a step writes
into the exposure's shared state (``ctx.primary_updates``...) is written by the callers after the
map, in imset order.

Threads: ``OWL_CALIB_THREADS``, else ``OMP_NUM_THREADS`` (which HTCondor sets to the CPUs a job
was given, so a CA node that asked for one CPU stays on one), else the CPUs this process may use;
never more than there are chips. 1 gives the sequential run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from pipeline.core import hostenv
from pipeline.science.calib.context import CalContext

T = TypeVar("T")
R = TypeVar("R")

THREADS_VARIABLE = "OWL_CALIB_THREADS"


def threads(environ: Mapping[str, str] | None = None) -> int:
    """Threads for the chips of one exposure: ``OWL_CALIB_THREADS``, else ``OMP_NUM_THREADS``, else
    the usable CPUs."""
    env = os.environ if environ is None else environ
    value = env.get(THREADS_VARIABLE, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else hostenv.cpus(env)


def map_chips(ctx: CalContext, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[fn(item) for item in items]``, the items in threads (no more than the node may keep busy now:
    :func:`hostenv.cpus_now`), logs and errors as in that loop."""
    workers = min(len(items), hostenv.cpus_now(threads(ctx.environ), ctx.environ))
    if workers < 2:
        return [fn(item) for item in items]

    def held(item: T) -> tuple[list[tuple[str, str]], R | None, BaseException | None]:
        with ctx.holding_log() as lines:
            try:
                return lines, fn(item), None
            except BaseException as exc:  # re-raised below, in imset order
                return lines, None, exc

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="owl-chip") as pool:
        outcomes = list(pool.map(held, items))
    results: list[R] = []
    for lines, result, error in outcomes:
        for severity, text in lines:
            ctx.emit(severity, text)
        if error is not None:
            raise error
        results.append(result)  # type: ignore[arg-type]
    return results
