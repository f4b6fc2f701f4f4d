"""The embedded executor: runs association DAGs on this machine with DAGMan's semantics.

Each node is a subprocess of its ``owl-<stage>`` executable, run between the same PRE and POST
hooks DAGMan runs (:mod:`pipeline.orchestration.executors.hooks`, called in-process), with the same retries and
``UNLESS-EXIT`` rule, PRE_SKIP and DEFER codes, node priorities and per-category MAXJOBS (per DAG, as
DAGMan counts them), under a pool of ``executor.workers`` concurrent jobs on one machine. Among ready
nodes of equal priority the shortest goes first, by the site's history (the median wall time of the
stage on the instrument, ``node_usage``; a node with no history counts as longest), then submission
order: an association's quick early nodes do not wait behind two long MD nodes, so its own MD is
ready to run beside theirs.

The machine is shared as a partitionable slot shares it: a job starts only while the memory its node
requests (the DAG's learned ``request_memory``, grown per retry) fits beside the running jobs' requests
in the machine's memory (a job runs alone if it would never fit). A job's ``OMP_NUM_THREADS`` is its
``request_cpus``, as on a pool; a node asking for more than one CPU also gets a file
(``OWL_CPUS_NOW_FILE``, :func:`pipeline.core.hostenv.cpus_now`) saying how many it may keep busy now:
what the other running jobs leave of the machine's CPUs (at least 1), raised as they end and lowered
as new ones start. So what limits MD nodes across DAGs here is what limits them on a pool, CPUs and
memory: two associations' MD nodes run side by side on a 2-core machine, one process each, and the
one left alone splits its next steps over both CPUs.

Resuming needs no rescue file: the OSF is the record. A node whose column is complete is done; any
other node runs again. Children die with the executor (``PR_SET_PDEATHSIG``), so a crash leaves
their columns ``x`` (the stage wrapper's SIGTERM handler) rather than ``p``; Ctrl-C and
:meth:`LocalExecutor.stop` terminate them and, as ``condor_rm`` of a DAG does, run no POST hook:
the stages record ``x`` themselves and the reaper catches any that died too hard to say so.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import itertools
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import IO

from pipeline.core import hostenv, usage
from pipeline.core.config import Site
from pipeline.core.errors import OwlError
from pipeline.core.exitcodes import ExitCode
from pipeline.core.names import parse_dataset
from pipeline.core.osf import Blackboard
from pipeline.orchestration.dag import DagFiles, expand, stage_executable, write_dag
from pipeline.orchestration.executors import hooks
from pipeline.orchestration.executors.workers import WorkerBoard
from pipeline.orchestration.memory import retry_memory
from pipeline.orchestration.workflow import DatasetGraph, Node, Workflow

#: Local stand-in for DAGMan's DEFER delay: how long a held or busy node waits before its PRE reruns.
LOCAL_DEFER_SECONDS = 5.0
#: How long stopped children get to record ``x`` after SIGTERM before they are killed.
STOP_GRACE_SECONDS = 15.0


class DagBusy(OwlError):
    """Another executor process is running this association's DAG."""

    code = ExitCode.CONFLICT


class State(Enum):
    WAITING = "waiting"    # parents not done
    READY = "ready"        # may start when a worker and its category allow
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"      # out of retries, or a fatal exit
    FUTILE = "futile"      # an ancestor failed: will not run in this submission


@dataclass(eq=False)
class NodeRun:
    node: Node
    dag: DagRun
    state: State = State.WAITING
    retry: int = 0
    proc: subprocess.Popen | None = None
    started: float = 0.0
    not_before: float = 0.0
    returncode: int | None = None
    #: Exit code the stage gave on its last attempt (what the operator wants to read).
    exit_code: int | None = None
    #: What the running job holds of the machine: the CPUs it may keep busy now and the memory (MB) it asked for.
    cpus: int = 0
    memory_mb: int = 0

    @property
    def elastic(self) -> bool:
        """Its CPUs follow the machine's (:func:`pipeline.core.hostenv.cpus_now`, which stages read where they
        size their threads or processes): it asks for more than one."""
        return self.node.stage.request_cpus > 1

    @property
    def name(self) -> str:
        return self.node.name


@dataclass(eq=False)
class DagRun:
    """One association's DAG inside the executor."""

    graph: DatasetGraph
    files: DagFiles
    priority: int
    seq: int
    lock_fd: int
    #: The controller's submission id, when the DAG came from one.
    submission: int | None = None
    #: MAXJOBS per category for this DAG (the workflow's, the site's throttles winning).
    limits: dict[str, int] = field(default_factory=dict)
    nodes: dict[str, NodeRun] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def dataset(self) -> str:
        return self.graph.dataset

    @functools.cached_property
    def instrument(self) -> str:
        return parse_dataset(self.graph.dataset).instrument.upper()

    def count(self, *states: State) -> int:
        return sum(1 for n in self.nodes.values() if n.state in states)

    @property
    def active(self) -> bool:
        return self.count(State.WAITING, State.READY, State.RUNNING) > 0

    @property
    def succeeded(self) -> bool:
        return all(n.state is State.DONE for n in self.nodes.values())

    def failures(self) -> list[NodeRun]:
        return [n for n in self.nodes.values() if n.state is State.FAILED]


#: ``listener(event, dag, node)``; events: ``start``, ``done``, ``retry``, ``failed``, ``skipped``,
#: ``deferred``, ``stopped``, ``dag-done`` (node is None).
Listener = Callable[[str, DagRun, NodeRun | None], None]


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when this process dies (None elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(int(ExitCode.KILLED))

    return preexec


def try_claim(files: DagFiles) -> int:
    """An exclusive lock on the association's DAG directory, held while this process runs it."""
    files.directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(files.directory / ".local.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DagBusy(f"{files.dataset}: its DAG is being run by another owl process") from None
    return fd


def release(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


class LocalExecutor:
    """Runs association DAGs as subprocesses; drive it with :meth:`step` or :meth:`run`."""

    def __init__(self, site: Site, bb: Blackboard, *, workers: int | None = None,
                 listener: Listener | None = None, poll: float = 0.05) -> None:
        self.site = site
        self.bb = bb
        self.workers = workers or site.executor.workers
        self.listener = listener
        self.poll = poll
        self.dags: list[DagRun] = []
        self._seq = itertools.count()
        self._preexec = _die_with_parent()
        self._env = {**os.environ, **site.environment()}
        #: The machine the jobs share: the CPUs this process may use, and the memory (MB) they may ask for.
        self.cpus = site.executor.cpus or hostenv.cpus({})  # {}: the machine's, not this process's OMP_NUM_THREADS
        self.memory_mb = site.executor.memory_mb or hostenv.memory_mb() or sys.maxsize
        self._logs: dict[NodeRun, list[IO]] = {}
        #: {(stage column, instrument): median wall time (s)} from the site's history, renewed as jobs end.
        self._walls = usage.typical_walls(site.database_url, site.database.busy_timeout)
        self.board = WorkerBoard(site.areas.dags / "workers", self.workers)  # what each worker runs, for the console

    # -- submitting ----------------------------------------------------------------------------
    def submit(self, workflow: Workflow, dataset: str, *, priority: int | None = None,
               submission: int | None = None) -> DagRun:
        """Write the association's DAG files and queue its nodes; raises :class:`DagBusy` if another
        process runs it. Nodes complete on the OSF are done already."""
        from pipeline.orchestration.dag import dag_files

        fd = try_claim(dag_files(self.site, dataset))
        try:
            for spec in workflow.node_stages:
                stage_executable(spec, workflow)  # fail now, naming the missing executable
            files = write_dag(self.site, workflow, dataset, self.bb, priority=priority)
            graph = expand(self.bb, workflow, dataset)
        except BaseException:
            release(fd)
            raise
        run = DagRun(graph, files, workflow.priority(self.site) if priority is None else priority, next(self._seq), fd,
                     submission, limits=workflow.max_jobs(self.site))
        for node in graph.nodes.values():
            run.nodes[node.name] = NodeRun(node, run, State.DONE if node.name in files.done else State.WAITING)
        self.dags.append(run)
        self._promote(run)
        return run

    # -- driving -------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return any(d.active and d.finished is None for d in self.dags)

    def running(self) -> list[NodeRun]:
        return [n for d in self.dags for n in d.nodes.values() if n.state is State.RUNNING]

    def step(self) -> None:
        """Collect finished jobs, then start what the workers and throttles allow."""
        ended = [n for n in self.running() if n.proc is not None and n.proc.poll() is not None]
        for n in ended:
            self._finish(n, n.proc.returncode)
        if ended:  # their wall times are in the history now
            self._walls = usage.typical_walls(self.site.database_url, self.site.database.busy_timeout)
        for d in self.dags:
            self._promote(d)
        self._start_ready()
        self._share_cpus()
        for d in self.dags:
            if d.finished is None and (not d.active or (d.files.halt.exists() and not d.count(State.RUNNING))):
                self._close(d)

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """Step until no DAG has work left (or ``until()`` is true); Ctrl-C stops cleanly and re-raises."""
        try:
            while self.busy and not (until and until()):
                self.step()
                time.sleep(self.poll)
            self.step()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Terminate running jobs, record their outcome (``x`` or ``w``, never ``p``), release the DAGs."""
        running = self.running()
        for n in running:
            with contextlib.suppress(ProcessLookupError):
                n.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for n in running:
            try:
                n.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait()
            self._finish(n, n.proc.returncode, stopping=True)
        self.bb.reap(who="owl local executor")
        for d in self.dags:
            for n in d.nodes.values():
                if n.state in (State.WAITING, State.READY):
                    n.state = State.FUTILE
            if d.finished is None:
                self._close(d)

    # -- internals -----------------------------------------------------------------------------
    def _emit(self, event: str, dag: DagRun, node: NodeRun | None = None) -> None:
        if self.listener is not None:
            self.listener(event, dag, node)

    def _promote(self, d: DagRun) -> None:
        for n in d.nodes.values():
            if n.state is State.WAITING:
                parents = [d.nodes[p].state for p in n.node.parents]
                if all(s is State.DONE for s in parents):
                    n.state = State.READY
                elif any(s in (State.FAILED, State.FUTILE) for s in parents):
                    n.state = State.FUTILE

    def _start_ready(self) -> None:
        now = time.monotonic()
        ready = sorted((n for d in self.dags if d.finished is None and not d.files.halt.exists()
                        for n in d.nodes.values() if n.state is State.READY and n.not_before <= now),
                       key=lambda n: (-(n.dag.priority + n.node.stage.priority), self._expected_s(n), n.dag.seq,
                                      list(n.dag.nodes).index(n.name)))
        running = self.running()
        slots = self.workers - len(running)
        cpus = self.cpus - sum(n.cpus for n in running)
        memory = self.memory_mb - sum(n.memory_mb for n in running)
        for n in ready:
            if slots <= 0:
                break
            if self._category_full(n):
                continue
            need = self._memory_mb(n)
            if need > memory and slots < self.workers:
                memory -= need  # held for it: nodes ranked after it do not start in the memory it waits for
                continue
            grant = max(1, min(n.node.stage.request_cpus, cpus))
            if self._launch(n, grant, need):
                slots -= 1
                cpus -= grant
                memory -= need

    def _expected_s(self, n: NodeRun) -> float:
        """How long the node is likely to take: its stage's median on its instrument, else the longest."""
        return self._walls.get((n.node.stage.column, n.dag.instrument), math.inf)

    def _share_cpus(self) -> None:
        """Keep the running jobs' CPUs within the machine's: when jobs have started beside a node that asks
        for several, it keeps fewer busy (the latest started give up first, never below 1); when jobs end,
        it may keep more again (the earliest started first), up to its request."""
        running = self.running()
        elastic = sorted((n for n in running if n.elastic), key=lambda n: n.started)
        spare = self.cpus - sum(n.cpus for n in running)
        for n in reversed(elastic):
            cut = min(n.cpus - 1, max(0, -spare))
            if cut:
                self._give_cpus(n, n.cpus - cut)
                spare += cut
        for n in elastic:
            more = min(n.node.stage.request_cpus - n.cpus, max(0, spare))
            if more:
                self._give_cpus(n, n.cpus + more)
                spare -= more

    @staticmethod
    def _cpus_file(n: NodeRun) -> Path:
        return n.dag.files.node_dir / f"{n.name}.cpus"

    def _give_cpus(self, n: NodeRun, cpus: int) -> None:
        """Record and tell the job how many CPUs it may keep busy now (a whole file, renamed into place)."""
        n.cpus = cpus
        path = self._cpus_file(n)
        tmp = path.with_name(f".{path.name}.tmp")
        with contextlib.suppress(OSError):  # advice only: the job keeps the last number it read
            tmp.write_text(f"{cpus}\n")
            os.replace(tmp, path)

    @staticmethod
    def _category_full(n: NodeRun) -> bool:
        """DAGMan's MAXJOBS: the node's category already has its limit of running jobs in this DAG."""
        cat = n.node.stage.category
        if not cat or cat not in n.dag.limits:
            return False
        running = sum(1 for m in n.dag.nodes.values() if m.state is State.RUNNING and m.node.stage.category == cat)
        return running >= n.dag.limits[cat]

    @staticmethod
    def _memory_mb(n: NodeRun) -> int:
        """The memory this attempt asks for: the DAG's learned first request, grown per retry as the
        submit description's ``request_memory`` grows it on a pool."""
        return retry_memory(n.dag.files.memory[n.name].mb, n.retry)

    def _node_env(self, n: NodeRun) -> dict[str, str]:
        """The node's environment: the executor's, with ``OMP_NUM_THREADS`` set to the CPUs it requests, as
        HTCondor's starter sets it to the slot's CPUs on a pool, and for a node asking for several the file
        saying how many it may keep busy now. A stage sizes its threads and processes by them (CA's chips,
        MD's AstroDrizzle processes), so two jobs on two cores do not each start two (idle 2-core
        end-to-end figures: 178 full-frame exposures per hour with every node on both cores, 210-249 with
        each on the CPUs it requests)."""
        env = {**self._env, "OMP_NUM_THREADS": str(n.node.stage.request_cpus)}
        if n.elastic:
            env[hostenv.CPUS_NOW_VARIABLE] = str(self._cpus_file(n))
        else:
            env.pop(hostenv.CPUS_NOW_VARIABLE, None)
        return env

    def _ref(self, n: NodeRun) -> hooks.NodeRef:
        return hooks.NodeRef(self.site, n.node.stage.column, n.node.dataset, n.name)

    def _launch(self, n: NodeRun, cpus: int, memory_mb: int) -> bool:
        """PRE hook, then the job; False when the node did not start (skipped, deferred or failed)."""
        code = hooks.pre(self.bb, self._ref(n))
        if code == hooks.PRE_SKIP_CODE:
            n.state = State.DONE
            self._emit("skipped", n.dag, n)
            return False
        if code == hooks.PRE_DEFER_CODE:
            n.not_before = time.monotonic() + LOCAL_DEFER_SECONDS
            self._emit("deferred", n.dag, n)
            return False
        if code != 0:
            self._settle(n, code)
            return False
        spec = n.node.stage
        files = n.dag.files
        argv = [str(stage_executable(spec, n.dag.graph.workflow)), n.node.dataset, "--site", str(self.site.root),
                *spec.arguments]
        files.node_dir.mkdir(parents=True, exist_ok=True)
        if n.elastic:
            self._give_cpus(n, cpus)
        out = open(files.node_output(n.name), "ab")  # noqa: SIM115  (closed when the job ends)
        err = open(files.node_error(n.name), "ab")  # noqa: SIM115
        banner = f"---- {time.strftime('%Y-%m-%dT%H:%M:%S')} attempt {n.retry + 1}: {' '.join(argv)}\n".encode()
        out.write(banner)
        err.write(banner)
        out.flush()
        err.flush()
        try:
            n.proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=self._node_env(n),
                                      cwd=self.site.root, preexec_fn=self._preexec)
        except OSError as exc:  # not executable, bad interpreter: a site problem, not worth a retry
            err.write(f"cannot start {argv[0]}: {exc}\n".encode())
            out.close()
            err.close()
            self._settle(n, hooks.post(self.bb, self._ref(n), int(ExitCode.CONFIG), n.retry, spec.retries))
            return False
        self._logs[n] = [out, err]
        n.state = State.RUNNING
        n.cpus, n.memory_mb = cpus, memory_mb
        n.started = time.monotonic()
        self.board.started(n.proc.pid, files.dataset, n.name, n.node.dataset, spec.column, n.retry + 1)
        self._emit("start", n.dag, n)
        return True

    def _finish(self, n: NodeRun, returncode: int, *, stopping: bool = False) -> None:
        for fh in self._logs.pop(n, []):
            fh.close()
        if n.proc is not None:
            self.board.finished(n.proc.pid)
        n.returncode = returncode
        n.exit_code = returncode
        n.proc = None
        if stopping:  # like condor_rm of a DAG: no POST hook; the stage left x (or the reaper will)
            n.state = State.FUTILE
            self._emit("stopped", n.dag, n)
            return
        self._settle(n, hooks.post(self.bb, self._ref(n), returncode, n.retry, n.node.stage.retries))

    def _settle(self, n: NodeRun, verdict: int) -> None:
        """DAGMan's rule: success, else retry unless the code is the UNLESS-EXIT value or retries ran out."""
        if verdict == 0:
            n.state = State.DONE
            self._emit("done", n.dag, n)
        elif verdict != n.dag.graph.workflow.retry_unless_exit and n.retry < n.node.stage.retries:
            n.retry += 1
            n.state = State.READY
            self._emit("retry", n.dag, n)
        else:
            n.state = State.FAILED
            self._emit("failed", n.dag, n)

    def _close(self, d: DagRun) -> None:
        d.finished = time.monotonic()
        release(d.lock_fd)
        self._emit("dag-done", d, None)


def node_log_tail(files: DagFiles, node: str, lines: int = 3) -> list[str]:
    """The last lines a node wrote to stderr (for a failure summary)."""
    path: Path = files.node_error(node)
    if not path.exists():
        return []
    text = path.read_text(errors="replace").splitlines()
    return [ln for ln in text if not ln.startswith("---- ")][-lines:]
