"""An association's drizzle products side by side: ``_drz`` (from ``_flt``) and ``_drc`` (from ``_flc``).

With CTE correction on, MD makes two products from two independent input sets. AstroDrizzle runs on one
core, so on an MD node given two CPUs the two runs go in two processes at once: each is exactly the
run :func:`pipeline.science.drizzle.drizzle` makes alone (its own scratch directory, its own
drizzlepac), so no pixel changes; the node's wall time becomes the longer run instead of the sum.
What a sequential loop would show is kept: the warnings of each run are handed back and replayed in
set order, and when runs fail the error raised is the first set's (``flt`` before ``flc``). The node's
peak memory is the sum of the processes' peaks (noted for the memory history: ``usage.note_concurrent_peak``).

Processes: ``OWL_MD_PROCESSES``, else ``OMP_NUM_THREADS`` (HTCondor sets it to the CPUs the node was
given: the workflows ask for 2 for MD), else the CPUs this process may use; never more than there are
sets; fewer when the local executor says the node may keep fewer busy now (``OWL_CPUS_NOW_FILE``,
:func:`pipeline.core.hostenv.cpus_now`). 1 gives the sequential loop. With one set (no ``_flc``), or
more CPUs than sets, the CPUs left go to each run's per-image steps (:mod:`pipeline.science.drizzle_fork`).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from pipeline.core import hostenv, usage
from pipeline.core.names import DatasetName
from pipeline.science.calib import perchip
from pipeline.science.drizzle import DrizzleProduct, drizzle

PROCESSES_VARIABLE = "OWL_MD_PROCESSES"


def processes(environ: Mapping[str, str] | None = None) -> int:
    """AstroDrizzle processes an MD node may run at once: CA's rule (:func:`perchip.threads`) read with
    ``OWL_MD_PROCESSES`` in place of ``OWL_CALIB_THREADS``."""
    env = os.environ if environ is None else environ
    mine = {key: value for key, value in env.items() if key != perchip.THREADS_VARIABLE}
    if PROCESSES_VARIABLE in env:
        mine[perchip.THREADS_VARIABLE] = env[PROCESSES_VARIABLE]
    return perchip.threads(mine)


def side_by_side(sets: int, environ: Mapping[str, str] | None = None) -> int:
    """How many of ``sets`` input sets run at once: no more than the node's processes, and no more
    than it may keep busy now."""
    return min(sets, hostenv.cpus_now(processes(environ), environ))


def _held(inputs: list[Path], product_name: DatasetName, work: Path, cores: int, cache: Path | None,
          cpus: int) -> tuple[list[str], DrizzleProduct | None, BaseException | None, int, float]:
    """One set's drizzle with its warnings held: (warnings, product, error, worker pid, its peak RSS in MB)."""
    said: list[str] = []
    try:
        product, error = drizzle(inputs, product_name, work, cores=cores, cache=cache, log=said.append,
                                  processes=cpus), None
    except Exception as exc:  # re-raised by the parent, in set order
        product, error = None, exc
    return said, product, error, os.getpid(), usage.peak_rss_mb()


def drizzle_sets(sets: Mapping[str, list[Path]], product_name: DatasetName, work: Path, *, cores: int = 1,
                 cache: Path | None = None, log: Callable[[str], None] = lambda _text: None,
                 environ: Mapping[str, str] | None = None, workers: int | None = None) -> list[DrizzleProduct]:
    """:func:`drizzle` each input set (``{"flt": [...], "flc": [...]}``), ``workers`` of them side by side
    (default :func:`side_by_side`); products in the sets' order."""
    cpus = processes(environ)
    workers = side_by_side(len(sets), environ) if workers is None else workers
    if workers < 2:  # one set at a time: each may use the node's CPUs for its per-image steps
        return [drizzle(inputs, product_name, work, cores=cores, cache=cache, log=log, processes=cpus)
                for inputs in sets.values()]
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    try:
        futures = [pool.submit(_held, inputs, product_name, work, cores, cache, cpus // workers)
                   for inputs in sets.values()]
        outcomes = [f.result() for f in futures]
    except BrokenProcessPool as exc:
        raise MemoryError(f"an AstroDrizzle process of {product_name} died (killed, most likely out of memory): "
                          f"{exc}") from None
    except BaseException:  # interrupted (SIGTERM, Ctrl-C): the node ends now, its AstroDrizzle runs with it
        for child in multiprocessing.active_children():
            child.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    peaks: dict[int, float] = {}  # per worker: the workers ran at once, getrusage shows only the largest
    for *_, pid, peak in outcomes:
        peaks[pid] = max(peak, peaks.get(pid, 0.0))
    usage.note_concurrent_peak(usage.own_peak_rss_mb() + sum(peaks.values()))
    products = []
    for said, product, error, *_ in outcomes:
        for line in said:
            log(line)
        if error is not None:
            raise error
        products.append(product)
    return products
