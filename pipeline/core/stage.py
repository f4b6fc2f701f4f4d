"""The Stage contract and the wrapper that turns a Stage into an ``owl-<stage>`` executable.

A stage only does its one job in :meth:`Stage.run`; the wrapper owns everything operators rely
on being identical across stages: argument parsing, the OSF moves (``_/w/x/e -> p -> c|e``),
trailer lines, exit codes from :mod:`pipeline.core.exitcodes`, quarantine of bad input, and a
traceback in the trailer for the unexpected. It never leaves a column at ``p``: a SIGTERM (as
sent by ``condor_rm``) or Ctrl-C moves it to ``x``; a SIGKILL is caught later by ``Blackboard.reap``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, NoReturn

from pipeline.core import heap, hostenv, startup, usage
from pipeline.core.config import Site, load_site
from pipeline.core.errors import BadInput, LockTimeout, OwlError, TransientIO
from pipeline.core.exitcodes import ExitCode, meaning
from pipeline.core.fsutil import quarantine
from pipeline.core.names import BadName, DatasetName, parse_dataset
from pipeline.core.osf import Blackboard, OSFError, TransitionConflict
from pipeline.core.trailer import Trailer

#: errno values worth a retry: the storage hiccuped, the input was fine.
TRANSIENT_ERRNOS = {errno.EIO, errno.EAGAIN, errno.ESTALE, errno.ETIMEDOUT, errno.EBUSY, errno.ENOSPC,
                    errno.EINTR, errno.ENOLCK}


class Interrupted(BaseException):
    """Raised from the SIGTERM handler so the wrapper can leave the column at ``x``."""


@dataclass
class StageContext:
    """What a stage gets to do its job."""

    stage: str
    dataset: DatasetName
    site: Site
    osf: Blackboard
    trailer: Trailer
    members: list[str] = field(default_factory=list)
    options: argparse.Namespace = field(default_factory=argparse.Namespace)

    @property
    def work(self) -> Path:
        path = self.site.work_dir(self.dataset)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def log(self, text: str) -> None:
        self.trailer.info(f"{self.stage}: {text}")

    def warn(self, text: str) -> None:
        self.trailer.warn(f"{self.stage}: {text}")
        print(f"{self.stage}: warning: {text}", file=sys.stderr)

    def member_names(self) -> list[DatasetName]:
        return [parse_dataset(m) for m in self.members]


class Stage:
    """One pipeline stage. Subclasses set the class attributes and implement :meth:`run`."""

    #: Executable name without the ``owl-`` prefix (``rf``, ``dan-receipt``).
    name: ClassVar[str]
    #: OSF column this stage moves.
    column: ClassVar[str]
    #: ``association``: one run moves the association's row and all its members' rows together;
    #: ``exposure``: one run per member moves that member's row (the association row aggregates).
    scope: ClassVar[Literal["association", "exposure"]] = "association"
    #: One-line description for ``--help``.
    summary: ClassVar[str] = ""
    #: The heavy modules :meth:`run` imports (numpy, astropy, SQLAlchemy...): loaded by :meth:`load`
    #: after the OSF claim, so that the claim comes first (fast start-up).
    modules: ClassVar[tuple[str, ...]] = ()

    def load(self, ctx: StageContext) -> None:
        """Import what :meth:`run` needs; the wrapper calls it with the collector paused
        (:mod:`pipeline.core.startup`)."""
        for name in self.modules:
            importlib.import_module(name)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Stage-specific options (override when a stage has any)."""

    def run(self, ctx: StageContext) -> None:
        raise NotImplementedError


def build_parser(stage: Stage) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"owl-{stage.name}",
        description=f"{stage.summary} (OSF column {stage.column}, scope: {stage.scope})",
        epilog="Exit codes: " + "; ".join(f"{c.value} {meaning(c)}" for c in ExitCode),
    )
    parser.add_argument("dataset", help="association or exposure name (ipppssoot)")
    parser.add_argument("--site", help="site directory (default: $OWL_SITE or the current directory)")
    parser.add_argument("--config", help="site configuration file (default: <site>/owl.toml)")
    parser.add_argument("--force", action="store_true",
                        help="run even if the column is already complete (c) or failed (e)")
    stage.add_arguments(parser)
    return parser


#: Signals that interrupt a stage. They are blocked except while the stage's own work runs, so one
#: that arrives during an OSF move waits until the move is committed: a column is never left at p.
_INTERRUPTS = {signal.SIGTERM, signal.SIGINT}


def install_sigterm() -> None:
    """Make SIGTERM (condor_rm, a dying parent) raise :class:`Interrupted` like Ctrl-C raises KeyboardInterrupt."""

    def handler(signum: int, _frame: object) -> NoReturn:
        raise Interrupted(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Deliver SIGTERM/SIGINT (pending ones at once) only inside the block."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _INTERRUPTS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTS)


def classify(exc: BaseException) -> OwlError | None:
    """Turn environmental exceptions into retryable OwlErrors; None means "unexpected"."""
    if isinstance(exc, OwlError):
        return exc
    if isinstance(exc, MemoryError):
        return OwlError("out of memory", code=ExitCode.OUT_OF_MEMORY)
    if isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS:
        return TransientIO(f"transient I/O error: {exc}")
    from pipeline.core.dbapi import is_lock_error

    if is_lock_error(exc):
        return LockTimeout(f"database lock timeout: {exc}")
    return None


def _rows_for(stage: Stage, bb: Blackboard, dataset: DatasetName) -> tuple[list[str], list[str]]:
    """(rows whose column this run moves, member exposures the stage works on)."""
    members = bb.members(dataset.name)
    if stage.scope == "association":
        return [dataset.name, *members], members or [dataset.name]
    return [dataset.name], [dataset.name]


def run_stage(stage_cls: type[Stage], argv: list[str] | None = None) -> int:
    """Run one stage on one dataset in this process and return its exit code (see module docstring).

    The caller gets its signal mask and handlers back: a mask left blocking SIGINT would be inherited
    by every process it starts later (a test suite, an embedding program). An interrupt still pending
    from the final OSF move is dropped: the outcome is already recorded.
    """
    handlers = {sig: signal.getsignal(sig) for sig in _INTERRUPTS}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    try:
        return _run_stage(stage_cls, argv)
    finally:
        for sig in _INTERRUPTS:
            signal.signal(sig, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)  # pending interrupts arrive here, ignored
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def _run_stage(stage_cls: type[Stage], argv: list[str] | None) -> int:
    stage = stage_cls()
    args = build_parser(stage).parse_args(argv)
    install_sigterm()
    signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTS)
    label = f"owl-{stage.name}"
    try:
        dataset = parse_dataset(args.dataset)
    except BadName as exc:
        print(f"{label}: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        site = load_site(args.site, args.config)
        bb = Blackboard(site.database_url, site.database.busy_timeout)
        bb.reap()
        if bb.find(dataset) is None:
            bb.create(dataset, who=label)
        rows, members = _rows_for(stage, bb, dataset)
        expect = "_wxe" + ("c" if args.force else "")
        bb.transition(rows, stage.column, expect, "p", who=label, message="started")
    except TransitionConflict as exc:
        print(f"{label}: {dataset}: {exc.message}; use 'owl osf show {dataset}' to see why, "
              "'owl retry' or --force to run again", file=sys.stderr)
        return exc.code
    except (OwlError, OSFError) as exc:
        print(f"{label}: {exc.line()}", file=sys.stderr)
        return exc.code
    trailer = Trailer(site.trailer_path(dataset))
    ctx = StageContext(stage.name, dataset, site, bb, trailer, members, args)
    started = time.monotonic()
    sample = _describe(stage, ctx)
    code = _run_started(stage, ctx, rows, label, started)
    _record_usage(site, sample, time.monotonic() - started, code)
    return code


def _describe(stage: Stage, ctx: StageContext) -> usage.Sample:
    """The node's history key; an exposure's files live in its association's work area."""
    dataset, members = ctx.dataset, ctx.members or [ctx.dataset.name]
    try:
        entry = ctx.osf.find(dataset)
        parent = entry.parent if entry is not None else None
    except Exception:  # history is advisory: never fail the node for it
        parent = None
    dirs = [ctx.site.work_dir(dataset), *([ctx.site.work_dir(parse_dataset(parent))] if parent else [])]
    return usage.describe(stage.column, dataset.name, dataset.instrument, dirs, members)


def _record_usage(site: Site, sample: usage.Sample, wall_s: float, code: int) -> None:
    """Add the node's peak memory and wall time to the site's history; a failure to record costs a
    warning, never the node's outcome."""
    try:
        usage.record(site.database_url, sample, wall_s, code, site.database.busy_timeout)
    except Exception as exc:  # history is advisory: never fail the node for it
        print(f"{sample.dataset} {sample.stage}: warning: node usage not recorded: {exc}", file=sys.stderr)


def _run_started(stage: Stage, ctx: StageContext, rows: list[str], label: str, started: float) -> int:
    site, bb, trailer, dataset = ctx.site, ctx.osf, ctx.trailer, ctx.dataset
    trailer.info(f"{label} started on {bb.host} pid {os.getpid()} for {dataset} (OSF {stage.column})")
    for note in hostenv.NOTES:
        trailer.warn(f"{label}: {note}")
    try:
        with _interruptible():
            with startup.loading():
                stage.load(ctx)
            stage.run(ctx)
    except (Interrupted, KeyboardInterrupt) as exc:
        trailer.error(f"{label} interrupted ({exc or 'Ctrl-C'}); column {stage.column} left at x")
        bb.transition(rows, stage.column, "p", "x", exit_code=ExitCode.KILLED, who=label, message="interrupted")
        print(f"{label}: {dataset}: interrupted", file=sys.stderr)
        return ExitCode.KILLED
    except BaseException as exc:  # the wrapper must turn *everything* into an exit code
        err = classify(exc)
        if err is None:
            trailer.block("error", [f"{label} unexpected error: {exc!r}", *traceback.format_exc().splitlines()])
            err = OwlError(f"unexpected error: {type(exc).__name__}: {exc}", code=ExitCode.INTERNAL)
        line = err.line()
        if isinstance(err, BadInput) and err.path is not None and err.path.exists():
            moved = quarantine(err.path, site.areas.quarantine, f"{label}: {line}")
            line += f" (quarantined to {moved})"
        trailer.error(f"{label}: {line}")
        bb.transition(rows, stage.column, "p", "e", exit_code=int(err.code), who=label, message=line)
        print(f"{label}: {dataset}: {line}", file=sys.stderr)
        return int(err.code)
    elapsed = time.monotonic() - started
    bb.transition(rows, stage.column, "p", "c", exit_code=0, who=label, message=f"completed in {elapsed:.2f} s")
    trailer.info(f"{label} completed {dataset} in {elapsed:.2f} s")
    return ExitCode.SUCCESS


def stage_main(stage_cls: type[Stage]) -> Callable[[list[str] | None], NoReturn]:
    """The console-script entry point for a stage: ``main = stage_main(MyStage)``."""

    def main(argv: list[str] | None = None) -> NoReturn:
        startup.begin()
        heap.keep_freed_memory()   # a node's full-frame temporaries reuse freed pages
        sys.exit(run_stage(stage_cls, argv))

    main.__doc__ = f"Run the {stage_cls.__name__} stage."
    return main
