"""Work in forked children with their log records held and sent back (AstroDrizzle's steps in MD).

A child inherits everything by ``fork``; what it logs is kept (rendered, so it pickles) and sent back
with its result or error, for the parent to replay where the one-process run would have logged it. A
child that dies (killed, most likely out of memory) fails the work with :class:`MemoryError`; the
node's memory is this process's peak plus what each child grew beyond the memory it shared at the
fork (noted for the memory history: ``usage.note_concurrent_peak``).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from pipeline.core import usage

#: How long a child that has sent its outcome gets to exit by itself before it is terminated.
EXIT_GRACE_S = 10.0


def _portable(record: logging.LogRecord) -> logging.LogRecord:
    """The record with its message rendered, so it pickles whatever its arguments were."""
    record.msg, record.args = record.getMessage(), None
    if record.exc_info:
        record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        record.exc_info = None
    return record


def _rss_mb() -> float:
    """This process's resident memory now (Linux; 0 elsewhere)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


@contextlib.contextmanager
def held_records() -> Iterator[list[logging.LogRecord]]:
    """Within the block, every log record is kept (rendered: it pickles) instead of handled."""
    records: list[logging.LogRecord] = []
    handle = logging.Logger.callHandlers
    logging.Logger.callHandlers = lambda _logger, record: records.append(_portable(record))  # type: ignore[method-assign]
    try:
        yield records
    finally:
        logging.Logger.callHandlers = handle  # type: ignore[method-assign]


def replay(records: list[logging.LogRecord]) -> None:
    """Hand held records to their loggers' handlers, in order."""
    for record in records:
        logging.getLogger(record.name).handle(record)


@dataclass
class Outcome:
    """What a forked task sent back: its error (or None), its log records, its result."""

    error: BaseException | None
    records: list[logging.LogRecord]
    result: Any


def _child(conn: Connection, task: Callable[[], Any]) -> None:
    """In the forked process: run ``task`` holding the log records, send (error, records, result,
    MB this process grew by) back. SIGTERM ends it quietly: the stage's handler it inherited would
    raise, and multiprocessing would print that into the log it shares with its parent."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    shared_mb = _rss_mb()  # what it maps of its parent's memory
    with held_records() as records:
        try:
            outcome = (None, records, task())
        except BaseException as exc:  # raised again by the parent after the records (crds may raise SystemExit)
            outcome = (exc, records, None)
    grown = max(0.0, usage.own_peak_rss_mb() - shared_mb)
    try:
        conn.send((*outcome, grown))
    except Exception as exc:  # an unpicklable error or result: its text still reaches the parent
        conn.send((RuntimeError(f"{type(outcome[0] or exc).__name__}: {outcome[0] or exc}"), records, None, grown))
    conn.close()


def fork_tasks(tasks: list[Callable[[], Any]], here: Callable[[], Any]) -> tuple[Any, list[Outcome]]:
    """Each of ``tasks`` in a forked child while ``here()`` runs in this process; returns what
    ``here()`` returned and each task's :class:`Outcome`, in order, for the caller to replay and raise.
    A child that dies (killed, most likely out of memory) raises :class:`MemoryError`; the children's
    growth counts in the node's peak memory (``usage.note_concurrent_peak``)."""
    context = multiprocessing.get_context("fork")
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # a child must not write this process's buffered output again
    children, outcomes, grown_mb = [], [], 0.0
    try:
        for task in tasks:
            receive, send = context.Pipe(duplex=False)
            child = context.Process(target=_child, args=(send, task), name="owl-md-step", daemon=True)
            child.start()
            send.close()
            children.append((child, receive))
        mine = here()
        for child, receive in children:
            try:
                error, records, result, grown = receive.recv()
            except EOFError:
                child.join()
                raise MemoryError(f"an AstroDrizzle step process (pid {child.pid}) died, killed most likely "
                                  f"out of memory (exit code {child.exitcode})") from None
            grown_mb += grown
            outcomes.append(Outcome(error, records, result))
        usage.note_concurrent_peak(usage.own_peak_rss_mb() + grown_mb)
        return mine, outcomes
    finally:
        for i, (child, receive) in enumerate(children):
            receive.close()
            if i < len(outcomes):  # it has sent its outcome and is exiting: let it finish
                child.join(EXIT_GRACE_S)
            if child.is_alive():  # this process is failing or interrupted, or the child hangs
                child.terminate()
            child.join()
