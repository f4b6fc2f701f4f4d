"""The controller: from a downlink in the inbox to one DAG per complete association, exactly once.

Every submission is a row of ``owl_submission`` in the site database, created before anything is
run and keyed so that the automatic one of a dataset (``auto:<dataset>``) can exist only once: a
DAN received twice, a watcher restarted between receipt and submission, or two watchers racing
all end with one DAG per association. A row moves ``new`` (OSF being prepared) -> ``queued``
(ready for its executor) -> ``running`` (local) or ``submitted`` (HTCondor) -> ``done`` |
``failed`` | ``removed``; after a crash, rows still ``new``/``queued``/``running`` are picked up
again, and the OSF decides which nodes still have work.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Float, Integer, String, Text, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from pipeline.core.config import Site
from pipeline.core.db import Base, create_tables
from pipeline.core.errors import OwlError
from pipeline.core.exitcodes import ExitCode, meaning
from pipeline.core.names import parse_dataset
from pipeline.core.osf import Blackboard, column_index
from pipeline.core.trailer import Trailer
from pipeline.orchestration.workflow import DEFAULT_WORKFLOW, Workflow, WorkflowError, find_executable, load_workflow

DAN_GLOB = "*.dan.json"
ACTIVE = ("new", "queued", "running", "submitted", "held")


class ControllerError(OwlError):
    code = ExitCode.USAGE


class SubmissionRow(Base):
    __tablename__ = "owl_submission"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    dataset: Mapped[str] = mapped_column(String(9), index=True)
    #: Workflow name (shipped) or path of its file.
    workflow: Mapped[str] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer)
    executor: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    fresh: Mapped[int] = mapped_column(Integer, default=0)
    campaign: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cluster: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[float] = mapped_column(Float)
    updated: Mapped[float] = mapped_column(Float)


@dataclass(frozen=True)
class Submission:
    id: int
    key: str
    dataset: str
    workflow: str
    priority: int
    executor: str
    state: str
    fresh: bool
    campaign: str | None
    cluster: int | None
    message: str
    created: float
    updated: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _submission(row) -> Submission:
    return Submission(row.id, row.key, row.dataset, row.workflow, row.priority, row.executor, row.state,
                      bool(row.fresh), row.campaign, row.cluster, row.message, row.created, row.updated)


@dataclass
class Receipt:
    """What ``owl-dan-receipt`` said about one DAN."""

    dan: str
    exit_code: int
    summary: str


class Controller:
    """Receives downlinks, submits association DAGs, and drives the chosen executor."""

    def __init__(self, site: Site, *, executor: str | None = None, listener=None,
                 say: Callable[[str], None] | None = None, workers: int | None = None,
                 workflow: str = DEFAULT_WORKFLOW) -> None:
        self.site = site
        #: The workflow of automatic submissions (its trigger stage receives the DANs).
        self.auto_workflow = workflow
        self.bb = Blackboard(site.database_url, site.database.busy_timeout)
        create_tables(self.bb.engine, [SubmissionRow.__table__])
        self.engine = self.bb.engine
        self.kind = executor or site.executor.kind
        self.say = say or (lambda text: None)
        self.listener = listener
        self._workers = workers
        self._local = None
        self._runs: dict[int, object] = {}  # submission id -> local DagRun
        self._workflows: dict[str, Workflow] = {}
        #: Submissions that could not start in this process (``owl watch --once`` exits non-zero on them).
        self.start_failures: list[OwlError] = []

    # -- workflows and executors ---------------------------------------------------------------
    def workflow(self, ref: str) -> Workflow:
        """A workflow by name or file path (as submissions record it), loaded once."""
        if ref not in self._workflows:
            wf = load_workflow(ref)
            self._workflows[ref] = self._workflows[wf.ref] = wf
        return self._workflows[ref]

    @property
    def local(self):
        if self._local is None:
            from pipeline.orchestration.executors.local import LocalExecutor

            self._local = LocalExecutor(self.site, self.bb, workers=self._workers, listener=self._on_local)
        return self._local

    def condor(self):
        from pipeline.orchestration.executors.condor import CondorExecutor

        return CondorExecutor(self.site, self.bb)

    # -- submissions ---------------------------------------------------------------------------
    def submissions(self, dataset: str | None = None, states: tuple[str, ...] | None = None) -> list[Submission]:
        stmt = select(SubmissionRow).order_by(SubmissionRow.id)
        if dataset is not None:
            stmt = stmt.where(SubmissionRow.dataset == parse_dataset(dataset).name)
        if states is not None:
            stmt = stmt.where(SubmissionRow.state.in_(states))
        with self.engine.connect() as conn:
            return [_submission(r) for r in conn.execute(stmt)]

    def update_submission(self, sub_id: int, **values) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(SubmissionRow).where(SubmissionRow.id == sub_id)
                         .values(**values, updated=time.time()))

    def submit(self, dataset: str, workflow: str = DEFAULT_WORKFLOW, *, key: str | None = None,
               priority: int | None = None, fresh: bool = False, campaign: str | None = None) -> Submission | None:
        """Record a submission of one association; None when ``key`` was already used (exactly once).

        Without a key, a dataset with an unfinished submission is refused. ``fresh`` resets the
        workflow's columns first (reprocessing a dataset that completed before).
        """
        ds = parse_dataset(dataset)
        entry = self.bb.get(ds)
        if entry.parent:
            raise ControllerError(f"{ds.name} is a member of association {entry.parent}: submit {entry.parent}")
        wf = self.workflow(workflow)
        active = self.submissions(ds.name, ACTIVE)
        if key is None and active:
            a = active[-1]
            if a.workflow == wf.ref and not fresh and (a.state in ("new", "queued") or self._orphaned(a)):
                return a  # stopped before it finished: running it again resumes it
            raise ControllerError(f"{ds.name} already has submission {a.id} ({a.workflow}, {a.state}); "
                                  f"see 'owl dag status {ds.name}'")
        now = time.time()
        prio = wf.priority(self.site) if priority is None else priority
        try:
            with self.engine.begin() as conn:
                if key is None:
                    n = conn.execute(select(func.count()).select_from(SubmissionRow)
                                     .where(SubmissionRow.dataset == ds.name)).scalar_one()
                    key = f"{wf.name}:{ds.name}:{n + 1}"
                result = conn.execute(insert(SubmissionRow).values(
                    key=key, dataset=ds.name, workflow=wf.ref, priority=prio, executor=self.kind, state="new",
                    fresh=int(fresh), campaign=campaign, message="", created=now, updated=now))
                sub_id = result.inserted_primary_key[0]
        except IntegrityError:
            return None
        Trailer(self.site.trailer_path(ds)).info(
            f"owl controller: submission {sub_id} ({key}): workflow {wf.name}, priority {prio}, executor {self.kind}")
        self._prepare(sub_id)
        return self.get(sub_id)

    def _orphaned(self, sub: Submission) -> bool:
        """A local submission marked running whose executor process is gone (it crashed or was killed)."""
        from pipeline.orchestration.dag import dag_files
        from pipeline.orchestration.executors.local import DagBusy, release, try_claim

        if sub.executor != "local" or sub.state != "running" or sub.id in self._runs:
            return False
        try:
            fd = try_claim(dag_files(self.site, sub.dataset))
        except DagBusy:
            return False
        release(fd)
        return True

    def get(self, sub_id: int) -> Submission:
        with self.engine.connect() as conn:
            row = conn.execute(select(SubmissionRow).where(SubmissionRow.id == sub_id)).first()
        if row is None:
            raise ControllerError(f"no submission {sub_id}")
        return _submission(row)

    def _prepare(self, sub_id: int) -> None:
        """Bring the OSF in line with the workflow (idempotent), then queue the submission."""
        sub = self.get(sub_id)
        wf = self.workflow(sub.workflow)
        rows = [sub.dataset, *self.bb.members(sub.dataset)]
        who = f"owl submit {sub.id}"
        for ds in rows:
            entry = self.bb.get(ds)
            for col in wf.unused_columns:
                if entry.letter(col) == "_":
                    self.bb.transition(ds, col, "_", "n", who=who, message=f"not in workflow {wf.name}")
            if sub.fresh:
                for spec in wf.node_stages:
                    if entry.letter(spec.column) in "cewx":
                        self.bb.transition(ds, spec.column, "cewx", "_", who=who,
                                           message=f"reset for {wf.name} (submission {sub.id})")
        self.bb.set_workflow(rows, wf.name, sub.priority)
        self.update_submission(sub_id, state="queued")

    # -- dispatching ---------------------------------------------------------------------------
    def dispatch(self, *, raise_errors: bool = False) -> list[Submission]:
        """Hand every unstarted submission of this executor kind to its executor.

        A submission that cannot start is marked failed with its reason (the watcher goes on with
        the others); ``raise_errors`` re-raises it for a command that submitted one dataset.
        """
        started = []
        for sub in self.submissions(states=("new", "queued", "running") if self.kind == "local"
                                    else ("new", "queued")):
            if sub.executor != self.kind or sub.id in self._runs:
                continue
            if sub.state == "new":
                self._prepare(sub.id)
            try:
                if self.kind == "local":
                    self._dispatch_local(sub)
                else:
                    self._dispatch_condor(sub)
            except OwlError as exc:
                from pipeline.orchestration.executors.condor import NoSchedd
                from pipeline.orchestration.executors.local import DagBusy

                if isinstance(exc, DagBusy):
                    continue
                if isinstance(exc, NoSchedd):  # the pool may come back: keep it queued
                    self.update_submission(sub.id, state="queued", message=exc.line())
                    self.say(f"{sub.dataset}: submission {sub.id} waits: {exc.line()}")
                    if raise_errors:
                        raise
                    continue
                self.update_submission(sub.id, state="failed", message=exc.line())
                self.say(f"{sub.dataset}: submission {sub.id} failed to start: {exc.line()}")
                Trailer(self.site.trailer_path(parse_dataset(sub.dataset))).error(
                    f"owl controller: submission {sub.id} failed to start: {exc.line()}")
                self.start_failures.append(exc)
                if raise_errors:
                    raise
                continue
            started.append(self.get(sub.id))
        return started

    def _dispatch_local(self, sub: Submission) -> None:
        from pipeline.orchestration.executors.local import State

        run = self.local.submit(self.workflow(sub.workflow), sub.dataset, priority=sub.priority, submission=sub.id)
        self._runs[sub.id] = run
        self.update_submission(sub.id, state="running", message=f"local executor pid {os.getpid()}")
        self.say(f"{sub.dataset}: running the {run.graph.workflow.name} DAG locally ({len(run.nodes)} nodes, "
                 f"{run.count(State.DONE)} already done)")

    def _dispatch_condor(self, sub: Submission) -> None:
        condor = self.condor()
        cluster = condor.find(sub.id, sub.dataset, self.workflow(sub.workflow).name)
        if cluster is None:
            cluster = condor.submit(self.workflow(sub.workflow), sub.dataset, priority=sub.priority,
                                    submission=sub.id)
        self.update_submission(sub.id, state="submitted", cluster=cluster, message=f"DAGMan job {cluster}")
        self.say(f"{sub.dataset}: DAG submitted to HTCondor as job {cluster}")

    def _on_local(self, event: str, dag, node) -> None:
        if event == "dag-done" and dag.submission is not None:
            self._runs.pop(dag.submission, None)
            self._finish_local(dag.submission, dag)
        if self.listener is not None:
            self.listener(event, dag, node)

    def _finish_local(self, sub_id: int, dag) -> None:
        from pipeline.orchestration.executors.local import State

        if dag.succeeded:
            self.update_submission(sub_id, state="done", message=f"all {len(dag.nodes)} nodes done")
            return
        if self.get(sub_id).state == "removed":
            return
        if dag.files.halt.exists():
            self.update_submission(sub_id, state="held", message="halted: 'owl dag release' resumes it")
            return
        failed = dag.failures()
        if failed:
            text = "; ".join(f"{n.name} exit {n.exit_code} ({meaning(n.exit_code or 0)})" for n in failed)
            self.update_submission(sub_id, state="failed", message=text)
        else:  # stopped (Ctrl-C, halt): left for the next run to resume
            left = dag.count(State.FUTILE, State.WAITING, State.READY)
            self.update_submission(sub_id, state="queued",
                                   message=f"stopped with {left} node(s) to go; resumes on the next run")

    # -- receiving -----------------------------------------------------------------------------
    def inbox_dans(self) -> list[Path]:
        return sorted(self.site.areas.inbox.glob(DAN_GLOB), key=lambda p: (p.stat().st_mtime, p.name))

    def receive(self, dan: Path) -> Receipt:
        """Run the workflow's trigger stage (``owl-dan-receipt``) on one DAN."""
        wf = self.workflow(self.auto_workflow)
        trigger = next((s for s in wf if s.trigger == "downlink"), None)
        if trigger is None:
            raise WorkflowError(f"{wf.path}: no stage with trigger = 'downlink' to receive DANs", path=wf.path)
        exe = find_executable(trigger, wf)
        if exe is None:
            raise WorkflowError(f"{wf.path}: {trigger.executable} is not installed: cannot receive {dan.name}",
                                path=wf.path)
        proc = subprocess.run([str(exe), str(dan), "--site", str(self.site.root), "--json"], capture_output=True,
                              text=True, env={**os.environ, **self.site.environment()})
        summary = ""
        with contextlib.suppress(json.JSONDecodeError):
            summary = json.loads(proc.stdout).get("summary", "")
        if not summary:
            summary = (proc.stderr.strip().splitlines() or [meaning(proc.returncode)])[-1]
        return Receipt(dan.name, proc.returncode, summary)

    def ready_datasets(self) -> list[str]:
        """Associations and singletons received completely (DR ``c``) that have no automatic submission."""
        rows = self.bb.db.read(
            "SELECT o.dataset FROM osf o LEFT OUTER JOIN owl_submission s ON s.key = 'auto:' || o.dataset "
            f"WHERE substr(o.status, {column_index('DR') + 1}, 1) = 'c' AND o.parent IS NULL AND s.id IS NULL "
            "ORDER BY o.priority DESC, o.created, o.dataset")
        return [r[0] for r in rows]

    def poll(self) -> list[Receipt]:
        """One pass of the watcher: receive new DANs, submit what became ready, dispatch."""
        self.bb.reap(who="owl watch")
        receipts = []
        for dan in self.inbox_dans():
            r = self.receive(dan)
            receipts.append(r)
            self.say(f"received {r.dan}: {r.summary}" + ("" if r.exit_code == 0 else f" (exit {r.exit_code})"))
        for ds in self.ready_datasets():
            sub = self.submit(ds, self.auto_workflow, key=f"auto:{ds}")
            if sub is not None:
                self.say(f"{ds}: complete; submission {sub.id} queued ({self.workflow(sub.workflow).name})")
        self.dispatch()
        if self.kind == "condor":
            self.condor().follow_all(self)
        return receipts

    def watch(self, *, once: bool = False, interval: float | None = None,
              stop: Callable[[], bool] | None = None) -> None:
        """Poll the inbox every ``watch.interval`` seconds; ``once``: one pass, then finish local work."""
        every = interval or self.site.watch.interval
        with watcher_lock(self.site):
            while True:
                self.poll()
                if once:
                    if self.kind == "local":
                        self.local.run()
                    return
                deadline = time.monotonic() + every
                while time.monotonic() < deadline:
                    if stop and stop():
                        return
                    if self.kind == "local" and self.local.busy:
                        self.local.step()
                    time.sleep(self.local.poll if self.kind == "local" else 0.5)

    def run_local(self) -> None:
        """Run queued local submissions to completion (``owl submit``, ``owl retry``)."""
        self.dispatch(raise_errors=True)
        self.local.run()

    def stop(self) -> None:
        if self._local is not None:
            self._local.stop()

    def stage_fits(self, dataset: str, directory: Path) -> list[str]:
        """Register an association (or singleton) given as raw FITS and stage its files for the
        recalibrate workflow's INGEST (``owl-ingest-fits``); return the member names."""
        from pipeline.core.asntable import read_asn_table
        from pipeline.core.fsutil import copy_atomic
        from stages.ingest_fits import staging_dir

        ds = parse_dataset(dataset)
        directory = Path(directory)
        files = []
        if ds.is_association:
            table = directory / ds.file("asn")
            if not table.exists():
                raise ControllerError(f"{ds}: no {table.name} in {directory}")
            members = list(read_asn_table(table).members)
            files.append(table)
        else:
            members = []
        files += [directory / parse_dataset(m).file("raw") for m in (members or [ds.name])]
        missing = [f.name for f in files if not f.exists()]
        if missing:
            raise ControllerError(f"{ds}: missing from {directory}: {', '.join(missing)}")
        dest = staging_dir(self.site, ds)
        for f in files:
            copy_atomic(f, dest / f.name)
        who = "owl submit --fits"
        self.bb.create(ds, who=who)
        for m in members:
            self.bb.create(m, parent=ds, who=who)
        return members

    # -- operator actions ----------------------------------------------------------------------
    def reset(self, dataset: str, workflow: Workflow, from_stage: str | None = None) -> list[str]:
        """``owl retry``: put failed (or, from a stage on, all) workflow columns back to ``_``."""
        ds = parse_dataset(dataset).name
        stages = workflow.descendants(workflow.stage(from_stage).name) if from_stage else list(workflow.stages)
        cols = [workflow.stages[s].column for s in stages if workflow.stages[s].is_node]
        letters = "cewx" if from_stage else "ewx"
        changed = []
        for row in [ds, *self.bb.members(ds)]:
            entry = self.bb.get(row)
            for col in cols:
                if entry.letter(col) in letters:
                    self.bb.transition(row, col, letters, "_", who="owl retry",
                                       message=f"reset by owl retry{f' --from {from_stage}' if from_stage else ''}")
                    changed.append(f"{row}:{col}")
        return changed


@contextlib.contextmanager
def watcher_lock(site: Site) -> Iterator[None]:
    """One watcher per site: a second one says who holds the lock and stops."""
    site.areas.logs.mkdir(parents=True, exist_ok=True)
    path = site.areas.logs / "watch.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise ControllerError(f"another 'owl watch' is running on this site ({holder}; lock {path})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)
