"""AstroDrizzle's per-image steps in forked processes, every pixel as in the one-process run.

Two of AstroDrizzle's steps treat each input image on its own and gain from a second CPU: the separate
drizzle (each image's ``single_sci``/``single_wht`` is its own output) and ``driz_cr`` (each image's CR
mask from its own blotted median). drizzlepac runs them one image after the other when ``in_memory``
(its own ``num_cores`` path sends the in-memory images through a ``multiprocessing.Manager``, which on
2 CPUs is slower than one core), and ``cdriz`` never releases the GIL, so threads cannot share the work.
Blot is per image too, but ``cdriz.tblot`` took ~3x the CPU per chip with two processes at once than
alone (a loss in wall time), so it stays in one process.

On a node with 2 CPUs or more :func:`per_image_processes` splits the images of these steps into
contiguous groups (as many as it may keep CPUs busy when the step starts: the local executor gives a
node started beside another job fewer and raises them as jobs end), the first done in this process while
forked children do the others, each child
running drizzlepac's own function on its group and sending back what it added to its images (their
in-memory outputs and chip output names). Nothing is computed differently: an image's result depends
only on that image and on what the earlier steps left, which the children inherit by ``fork``.

What the one-process run shows is kept: the children's log records are replayed in image order after
this process's group (the trailer reads as the sequential one, only timestamps differ), and an error
raised for an image is raised here, after the records of the images before it. A child that dies
(killed, most likely out of memory) fails the run with :class:`MemoryError`. The node's memory is this
process's peak plus what each child grew beyond the memory it shared at the fork (noted for the memory
history: ``usage.note_concurrent_peak``); the children hold one image's step outputs each.

Only for the drizzlepac these were checked against (``drizzle_exact.CHECKED_DRIZZLEPAC``) and only with
drizzlepac's own ``num_cores`` = 1; otherwise AstroDrizzle runs as installed.
``tests/test_md_parallel.py`` compares the products with the one-process run's, pixel for pixel.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

from pipeline.core import hostenv
from pipeline.science import drizzle_exact, drizzle_final
from pipeline.science.forked import fork_tasks, replay

_MISSING = object()
#: What the fast paths say when the final drizzle's chips ran in more than one process.
FINAL_CHIPS = "final drizzle: chips apart on the output in their own processes"
#: What the fast paths say when the separate drizzle or driz_cr ran its images in that many processes.
PER_IMAGE = "separate drizzle, driz_cr: images in {} processes"
#: An image's additions: (its new in-memory outputs, per chip its new or changed output names).
Changes = tuple[dict[str, Any], list[dict[str, Any]]]


def split(items: list, groups: int) -> list[list]:
    """``items`` in at most ``groups`` contiguous runs of near-equal length (order kept)."""
    groups = max(1, min(groups, len(items)))
    size, extra = divmod(len(items), groups)
    runs, start = [], 0
    for i in range(groups):
        end = start + size + (1 if i < extra else 0)
        runs.append(items[start:end])
        start = end
    return runs


def _chips(image) -> list:
    return image.returnAllChips(extname=image.scienceExt)


def _snapshot(images: list) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    return [(dict(image.virtualOutputs), [dict(chip.outputNames) for chip in _chips(image)]) for image in images]


def _changes(images: list, before: list) -> list[Changes]:
    """What the step added to each image since ``before`` (:func:`_snapshot`)."""
    out = []
    for image, (outputs, names) in zip(images, before, strict=True):
        added = {k: v for k, v in image.virtualOutputs.items() if outputs.get(k, _MISSING) is not v}
        renamed = [{k: v for k, v in chip.outputNames.items() if was.get(k, _MISSING) != v}
                   for chip, was in zip(_chips(image), names, strict=True)]
        out.append((added, renamed))
    return out


def _apply(images: list, changes: list[Changes]) -> None:
    for image, (added, renamed) in zip(images, changes, strict=True):
        image.virtualOutputs.update(added)
        for chip, names in zip(_chips(image), renamed, strict=True):
            chip.outputNames.update(names)


def _changed_by(work: Callable[[list], None], images: list) -> list[Changes]:
    before = _snapshot(images)
    work(images)
    return _changes(images, before)


def run_split(images: list, work: Callable[[list], None], processes: int) -> int:
    """``work(images)`` with the images in up to ``processes`` contiguous groups at once (the first here;
    no more groups than the node may keep CPUs busy now, :func:`hostenv.cpus_now`), the others' results
    applied and their logs replayed in image order; returns the number of groups."""
    groups = split(images, hostenv.cpus_now(processes))
    if len(groups) < 2:
        work(images)
        return 1
    _, outcomes = fork_tasks([functools.partial(_changed_by, work, group) for group in groups[1:]],
                             lambda: work(groups[0]))
    for group, outcome in zip(groups[1:], outcomes, strict=True):
        replay(outcome.records)
        if outcome.error is not None:
            raise outcome.error
        _apply(group, outcome.result)
    return len(groups)


@contextlib.contextmanager
def per_image_processes(processes: int, cores: int = 1) -> Iterator[list[str]]:
    """Within the block, AstroDrizzle's separate drizzle and ``driz_cr`` run their images in up to
    ``processes`` processes, and the final drizzle its chips as far as their footprints allow (at each
    step no more processes than the node may keep busy then: :func:`hostenv.cpus_now`)
    (:mod:`pipeline.science.drizzle_final`); yields what was changed, growing as it is used (empty:
    one process, no split that used more than one, drizzlepac's own ``num_cores`` > 1, or a drizzlepac
    version these were not checked against; complete when the block has ended)."""
    used: list[str] = []
    most = 1  # the most processes a per-image split has used (said first in ``used`` when the block ends)

    def note(groups: int) -> None:
        nonlocal most
        most = max(most, groups)

    if processes < 2 or cores != 1 or drizzle_exact.drizzlepac_version() != drizzle_exact.CHECKED_DRIZZLEPAC:
        yield used
        return
    from drizzlepac import adrizzle, drizCR

    run_driz, run_driz_img = adrizzle.run_driz, adrizzle.run_driz_img
    rundrizCR, driz_cr = drizCR.rundrizCR, drizCR._driz_cr

    def separate(imageObjectList, output_wcs, paramDict, single, build, wcsmap=None):
        """``run_driz``; for the separate drizzle, its per-image calls held and then run split."""
        if not single:
            now = hostenv.cpus_now(processes)
            if now < 2:  # the chips one after another, as installed
                return run_driz(imageObjectList, output_wcs, paramDict, single, build, wcsmap=wcsmap)
            with drizzle_final.chips_in_processes(adrizzle, now) as final:
                result = run_driz(imageObjectList, output_wcs, paramDict, single, build, wcsmap=wcsmap)
            if final.split > 1 and FINAL_CHIPS not in used:
                used.append(FINAL_CHIPS)
            return result
        calls: list[tuple] = []
        adrizzle.run_driz_img = lambda *args: calls.append(args)
        try:
            run_driz(imageObjectList, output_wcs, paramDict, single, build, wcsmap=wcsmap)
        finally:
            adrizzle.run_driz_img = run_driz_img
        shared_buffers = any(args[13] is not None for args in calls)  # _outsci reused image after image
        by_image = {id(args[0]): args for args in calls}
        if shared_buffers or len(by_image) != len(calls):
            for args in calls:
                run_driz_img(*args)
            return None
        note(run_split([args[0] for args in calls],
                       lambda images: [run_driz_img(*by_image[id(i)]) for i in images], processes))
        return None

    step: dict[str, list | None] = {"images": None}

    def crrej(imgObjList, configObj, procSteps=None):
        """``rundrizCR`` with its images at hand for :func:`first_does_all`."""
        step["images"] = list(imgObjList)
        try:
            return rundrizCR(imgObjList, configObj, procSteps=procSteps)
        finally:
            step["images"] = None

    def first_does_all(sciImage, virtual_outputs, paramDict):
        """drizCR's per-image call (its serial loop): the first does every image of the step, split;
        the others find their image done."""
        images, step["images"] = step["images"], []
        if images is None:  # not called from rundrizCR: as installed
            return driz_cr(sciImage, virtual_outputs, paramDict)
        if images:
            note(run_split(images, lambda group: [driz_cr(i, i.virtualOutputs, paramDict) for i in group],
                           processes))
        return None

    adrizzle.run_driz = separate
    drizCR.rundrizCR, drizCR._driz_cr = crrej, first_does_all
    try:
        yield used
    finally:
        adrizzle.run_driz, adrizzle.run_driz_img = run_driz, run_driz_img
        drizCR.rundrizCR, drizCR._driz_cr = rundrizCR, driz_cr
        if most > 1:
            used.insert(0, PER_IMAGE.format(most))
