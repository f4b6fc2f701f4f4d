"""AstroDrizzle's final drizzle with its chips in forked processes, every pixel as in the one-process run.

The final drizzle adds every chip of every input to one output, one ``cdriz.tdriz`` call per chip
(~1.3 s for a full-frame WFC3/UVIS chip: ~5 s of a dither pair's MD), and ``tdriz`` holds the GIL.
``tdriz`` reads and writes an output pixel (data, weight, context) only when an input pixel's
footprint overlaps it, and what it writes depends only on the contributions that pixel has had, in
their order. Chips whose footprints on the output never meet (the two chips of a WFC3/UVIS or ACS/WFC
exposure lie on either side of the chip gap, in every dither smaller than the gap) can therefore be
drizzled at the same time, each group of chips in its own order: every output pixel still receives
the same contributions in the same order as when the chips go one after another.

How: while drizzlepac's ``run_driz`` runs the final drizzle, its ``do_driz`` calls are held. The
per-chip preparation (masks, weights, the CR bits written to the inputs' DQ) still runs here, in its
order. When the call of the chip whose product is written next comes (``doWrite``), or a batch of
:data:`HELD_PER_PROCESS` calls per process is full (their inputs are held in memory), each held chip's
footprint on the output is computed from its WCS as a superset (its outline mapped to the output,
widened by the kernel's reach and a margin, as one interval per output row); chips whose footprints
meet go in one group, in their order; the groups run at once, the first here on drizzlepac's output
arrays, the others in forked children on shared copies of their footprints, which are then copied
back. With a single group (one chip per input, a dither across the gap) or a WCS that will not map,
the calls run here, one after another, as installed. A failure stops the run as it would have, but
later: every chip's preparation (the CR bits in the inputs' DQ included) has run by then. The log
reads as the one-process run's: each call's records are replayed in call order, between the records
this process made around the calls.

Only with a fill value of INDEF (drizzlepac's default; a fill value makes every ``tdriz`` call write
every empty pixel) and drizzlepac's own WCS mapping (``wcsmap`` None); otherwise as installed.
``tests/test_md_parallel.py`` compares the products with the one-process run's, pixel for pixel.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import math
import mmap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.science.forked import fork_tasks, held_records, replay

#: The chip's outline is sampled every OUTLINE_STEP input pixels; a footprint row takes the columns of
#: every outline segment that reaches it, so a row may gain up to a segment's length.
OUTLINE_STEP = 2
#: Output pixels added beyond that and the kernel's reach: tdriz rounds to the nearest pixel, and
#: drizzlepac maps through a table interpolated every ``stepsize`` pixels (far below a pixel's error).
MARGIN = 2
#: How far each kernel reaches beyond an input pixel's centre, in input pixels per unit pixfrac
#: (``dobox``'s ``pfo``; gaussian at least 1.2 pixels); any other kernel: the largest, lanczos3's.
KERNEL_REACH = {"square": 0.5, "point": 0.5, "turbo": 0.5, "gaussian": 1.2, "lanczos2": 2.0, "lanczos3": 3.0}
OUTPUTS = ("outsci", "outwht", "outcon")
#: Held calls per process before they run: each holds its chip's data and weights (~70 MB for a
#: full-frame UVIS or WFC chip); batches run one after another, so every pixel's order is kept.
HELD_PER_PROCESS = 4


@dataclass
class Held:
    """One held ``do_driz`` call, with the log records made after it until the next (``after``) and,
    once run, its own (``records``)."""

    arguments: dict[str, Any]
    after: list[logging.LogRecord] = field(default_factory=list)
    records: list[logging.LogRecord] = field(default_factory=list)


@functools.cache
def tdriz_version() -> str:
    """What ``cdriz.tdriz`` returns as its version, a constant of the C module, from a one-pixel call:
    drizzlepac stores it with each chip before the held calls have run."""
    from drizzlepac import cdriz

    one = np.zeros((1, 1), dtype=np.float32)
    with held_records():   # what it logs is not this run's
        version, _, _ = cdriz.tdriz(one, np.ones_like(one), one.copy(), one.copy(), np.zeros((1, 1), np.int32), 1, 0,
                                    1, 1, 1, 1.0, 1.0, 1.0, "center", 1.0, "square", "cps", 1.0, 1.0, "INDEF",
                                    0, 0, 1, lambda x, y: (x, y))
    return version


def outline(input_wcs: Any, output_wcs: Any, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The closed outline of an input chip of ``shape`` (its pixels' outer edges, every OUTLINE_STEP
    pixels), in 0-based output pixel coordinates."""
    ny, nx = shape
    xs = np.append(np.arange(0.5, nx + 0.5, OUTLINE_STEP), nx + 0.5)
    ys = np.append(np.arange(0.5, ny + 0.5, OUTLINE_STEP), ny + 0.5)
    x = np.concatenate([xs, np.full(ys.size, nx + 0.5), xs[::-1], np.full(ys.size, 0.5), xs[:1]])
    y = np.concatenate([np.full(xs.size, 0.5), ys, np.full(xs.size, ny + 0.5), ys[::-1], ys[:1]])
    ra, dec = input_wcs.all_pix2world(x, y, 1)
    ox, oy = output_wcs.all_world2pix(ra, dec, 1)
    return np.asarray(ox, dtype=np.float64) - 1.0, np.asarray(oy, dtype=np.float64) - 1.0


def footprint(x: np.ndarray, y: np.ndarray, reach: float, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per output row, the first and last column (lo > hi: none) a chip with this outline can touch:
    every row between an outline segment's ends gets the segment's columns, so each row holds its
    whole cross-section; then ``reach`` pixels more each way, in columns and in rows (a chip just off
    the frame still reaches its edge rows)."""
    ny, nx = shape
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):  # an outline that does not map: anywhere
        return np.zeros(ny, dtype=np.int64), np.full(ny, nx - 1, dtype=np.int64)
    wide = math.ceil(reach)
    rows_all = ny + 2 * wide   # rows -wide .. ny - 1 + wide, indexed from 0
    x0, x1, y0, y1 = x[:-1], x[1:], y[:-1] + wide, y[1:] + wide
    first = np.clip(np.floor(np.minimum(y0, y1)), 0, rows_all - 1).astype(np.int64)
    last = np.clip(np.ceil(np.maximum(y0, y1)), 0, rows_all - 1).astype(np.int64)
    spans = last - first + 1
    rows = np.repeat(first, spans) + (np.arange(spans.sum()) - np.repeat(np.cumsum(spans) - spans, spans))
    keep = np.repeat((np.maximum(y0, y1) >= 0) & (np.minimum(y0, y1) <= rows_all - 1), spans)
    lo = np.full(rows_all, np.inf)
    hi = np.full(rows_all, -np.inf)
    np.minimum.at(lo, rows[keep], np.repeat(np.minimum(x0, x1), spans)[keep])
    np.maximum.at(hi, rows[keep], np.repeat(np.maximum(x0, x1), spans)[keep])
    window = 2 * wide + 1
    lo = np.lib.stride_tricks.sliding_window_view(np.pad(lo, wide, constant_values=np.inf), window).min(axis=1)
    hi = np.lib.stride_tricks.sliding_window_view(np.pad(hi, wide, constant_values=-np.inf), window).max(axis=1)
    lo, hi = lo[wide:wide + ny], hi[wide:wide + ny]   # the frame's own rows
    empty = ~np.isfinite(lo)
    lo = np.clip(np.floor(np.where(empty, nx, lo - reach)), 0, nx).astype(np.int64)
    hi = np.clip(np.ceil(np.where(empty, -1, hi + reach)), -1, nx - 1).astype(np.int64)
    return lo, hi


def chip_footprint(arguments: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The footprint of one ``do_driz`` call's chip (its arguments by name) on its output."""
    scale = arguments["output_wcs"].pscale / arguments["wcslin_pscale"]
    kernel = KERNEL_REACH.get(str(arguments["kernel"]).lower(), max(KERNEL_REACH.values()))
    reach = (kernel * max(float(arguments["pixfrac"]), 1.0) + OUTLINE_STEP) / scale + MARGIN
    x, y = outline(arguments["input_wcs"], arguments["output_wcs"], arguments["insci"].shape)
    return footprint(x, y, reach, arguments["outsci"].shape)


def meet(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
    """Whether two footprints share a pixel."""
    return bool(np.any(np.maximum(a[0], b[0]) <= np.minimum(a[1], b[1])))


def groups(footprints: list[tuple[np.ndarray, np.ndarray]], processes: int) -> list[list[int]]:
    """The chips (indices) in at most ``processes`` groups, no footprint of one group meeting one of
    another, each group in call order; one group when the footprints form one connected set."""
    parent = list(range(len(footprints)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(len(footprints)):
        for j in range(i):
            if root(i) != root(j) and meet(footprints[i], footprints[j]):
                parent[root(i)] = root(j)
    sets: dict[int, list[int]] = {}
    for i in range(len(footprints)):
        sets.setdefault(root(i), []).append(i)
    bins: list[list[int]] = [[] for _ in range(max(1, min(processes, len(sets))))]
    for members in sorted(sets.values(), key=len, reverse=True):
        min(bins, key=len).extend(members)
    return [sorted(b) for b in bins if b]


def covered(footprints: list[tuple[np.ndarray, np.ndarray]], shape: tuple[int, int]) -> np.ndarray:
    """The output pixels inside any of ``footprints``, as a mask."""
    mask = np.zeros(shape, dtype=bool)
    for lo, hi in footprints:
        for row in np.flatnonzero(lo <= hi):
            mask[row, lo[row]:hi[row] + 1] = True
    return mask


def _shared_copy(array: np.ndarray, where: np.ndarray) -> np.ndarray:
    """An array like ``array`` in memory shared with forked children, holding its values ``where``
    (2-D mask, broadcast over a 3-D array's planes); elsewhere zero and never touched."""
    buffer = mmap.mmap(-1, max(array.nbytes, 1))
    shared = np.frombuffer(buffer, dtype=array.dtype, count=array.size).reshape(array.shape)
    np.copyto(shared, array, where=where)
    return shared


def _run(do_driz: Callable[..., str], held: list[Held], outputs: dict[str, np.ndarray] | None = None) -> None:
    """The held calls in order (on ``outputs`` instead of their own output arrays, when given),
    each one's log records kept with it."""
    for call in held:
        with held_records() as call.records:
            do_driz(**{**call.arguments, **(outputs or {})})


def _run_here(do_driz: Callable[..., str], held: list[Held], outputs: dict[str, np.ndarray] | None = None
              ) -> tuple[list[list[logging.LogRecord]], BaseException | None]:
    """:func:`_run` in a child: its calls' records come back to the parent, with the error that
    stopped them (the failing call's records included)."""
    try:
        _run(do_driz, held, outputs)
    except Exception as exc:  # raised again by the parent after these records
        return [call.records for call in held], exc
    return [call.records for call in held], None


class FinalChips:
    """The hold on ``do_driz`` during one final drizzle (see the module's docstring)."""

    def __init__(self, adrizzle: Any, processes: int) -> None:
        self.processes = processes
        self.do_driz, self.run_driz_chip = adrizzle.do_driz, adrizzle.run_driz_chip
        self.parameters = inspect.signature(self.do_driz)
        self.chip_parameters = inspect.signature(self.run_driz_chip)
        self.held: list[Held] = []
        self.writing = False
        self.split = 0   # the most groups any flush ran in
        self.records: contextlib.ExitStack | None = None   # holding the records after the last held call

    def chip(self, *args: Any, **kwargs: Any) -> Any:
        """``run_driz_chip``, noting whether this chip's product is written after its drizzle."""
        bound = self.chip_parameters.bind(*args, **kwargs)
        self.writing = bool(bound.arguments["doWrite"])
        return self.run_driz_chip(*args, **kwargs)

    def hold(self, *args: Any, **kwargs: Any) -> str:
        """``do_driz``, held until the chip whose product is written next (or a batch is full); then
        all held run."""
        bound = self.parameters.bind(*args, **kwargs)
        bound.apply_defaults()
        self._stop_holding_records()
        self.held.append(Held(dict(bound.arguments)))
        if self.writing or len(self.held) >= HELD_PER_PROCESS * self.processes:
            self.flush()
        else:
            self.records = contextlib.ExitStack()
            self.held[-1].after = self.records.enter_context(held_records())
        return tdriz_version()

    def _stop_holding_records(self) -> None:
        if self.records is not None:
            self.records.close()
            self.records = None

    def _parallel(self, held: list[Held]) -> bool:
        """Whether the calls may run in groups: more than one, into the same output arrays, through
        drizzlepac's mapping, with no fill value."""
        first = held[0].arguments
        fill = first["fillval"]
        return (self.processes > 1 and len(held) > 1 and first["wcsmap"] is None
                and (fill is None or str(fill).strip().upper() in ("", "INDEF", "NONE"))
                and all(call.arguments[name] is first[name] for call in held for name in OUTPUTS))

    @staticmethod
    def _footprints(held: list[Held]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The calls' footprints; none (one call after another, as installed) when a WCS will not map."""
        try:
            return [chip_footprint(call.arguments) for call in held]
        except Exception:  # an output or chip WCS astropy cannot invert: drizzlepac's own path decides
            return []

    def flush(self) -> None:
        """Run the held calls (in groups at once when their footprints allow), then replay the log."""
        self._stop_holding_records()
        held, self.held = self.held, []
        try:
            footprints = self._footprints(held) if self._parallel(held) else []
            runs = groups(footprints, self.processes) if footprints else []
            if len(runs) < 2:
                _run(self.do_driz, held)
                return
            self.split = max(self.split, len(runs))
            self._run_groups(held, runs, footprints)
        finally:
            for call in held:
                replay(call.records)
                replay(call.after)

    def _run_groups(self, held: list[Held], runs: list[list[int]],
                    footprints: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """The first group here on the output arrays, the others in children on shared copies."""
        mine = held[0].arguments
        arrays = {name: mine[name] for name in OUTPUTS}
        elsewhere = covered([footprints[i] for run in runs[1:] for i in run], arrays["outsci"].shape)
        shared = {name: _shared_copy(array, elsewhere) for name, array in arrays.items()}
        tasks = [functools.partial(_run_here, self.do_driz, [held[i] for i in run], shared) for run in runs[1:]]
        _, outcomes = fork_tasks(tasks, lambda: _run(self.do_driz, [held[i] for i in runs[0]]))
        for run, outcome in zip(runs[1:], outcomes, strict=True):
            replay(outcome.records)
            if outcome.error is not None:
                raise outcome.error
            records, error = outcome.result
            for i, kept in zip(run, records, strict=True):
                held[i].records = kept
            if error is not None:
                raise error
        for name, array in arrays.items():
            np.copyto(array, shared[name], where=elsewhere)


@contextlib.contextmanager
def chips_in_processes(adrizzle: Any, processes: int) -> Iterator[FinalChips]:
    """Within the block (one final ``run_driz``), its chips drizzled as :class:`FinalChips` does;
    its ``split`` says in how many groups at most (0: one call after another)."""
    final = FinalChips(adrizzle, processes)
    adrizzle.do_driz, adrizzle.run_driz_chip = final.hold, final.chip
    try:
        yield final
        if final.held:   # no chip announced its write: run what is held all the same
            final.flush()
    finally:
        final._stop_holding_records()
        for call in final.held:   # an error before the flush: the log made meanwhile is not lost
            replay(call.after)
        adrizzle.do_driz, adrizzle.run_driz_chip = final.do_driz, final.run_driz_chip
