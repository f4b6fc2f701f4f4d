"""The HTCondor executor: submit association DAGs to a schedd and follow them back into the OSF.

Submission is ``htcondor2.Submit.from_dag`` + ``Schedd().submit``, tagged with the controller's
submission id (``OwlSubmission``) so a controller restarted between the two can find the DAGMan job
instead of submitting twice. While a DAG runs, the stage wrappers and the PRE/POST hooks move the
OSF; what they cannot see is read here from DAGMan's node status file and each node's event log:
a job removed or killed so hard that its column stayed ``p`` becomes ``x``, held jobs and their
reasons are reported, and the DAG's final state closes the submission.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.config import Site
from pipeline.core.errors import OwlError
from pipeline.core.exitcodes import ExitCode
from pipeline.core.osf import Blackboard, OSFError
from pipeline.orchestration.dag import DagFiles, dag_files, expand, write_dag
from pipeline.orchestration.executors.hooks import node_letters
from pipeline.orchestration.workflow import Workflow

#: DAGMan's node (and DAG) status values in the node status file.
NODE_STATUS = {0: "not ready", 1: "ready", 2: "pre", 3: "submitted", 4: "post", 5: "done", 6: "error",
               7: "futile"}
DAG_DONE, DAG_ERROR = 5, 6


class NoSchedd(OwlError):
    """No schedd to talk to: the site is not on an HTCondor pool (or the pool is down)."""

    code = ExitCode.CONFIG


def schedd():
    """The local schedd, or one clear :class:`NoSchedd` line."""
    import htcondor2

    try:
        return htcondor2.Schedd()
    except htcondor2.HTCondorException as exc:
        where = os.environ.get("CONDOR_CONFIG", "the default HTCondor configuration")
        raise NoSchedd(f"no HTCondor schedd reachable ({exc} with CONDOR_CONFIG={where}); "
                       "point CONDOR_CONFIG at a pool, or use the local executor (executor.kind = 'local')") from None


def _call(what: str, fn, *args, **kwargs):
    import htcondor2

    try:
        return fn(*args, **kwargs)
    except htcondor2.HTCondorException as exc:
        raise NoSchedd(f"HTCondor {what} failed: {exc}") from None


@dataclass
class NodeView:
    """One node as DAGMan and its event log see it."""

    name: str
    status: str = "not ready"
    retries: int = 0
    details: str = ""
    cluster: int | None = None
    held: str | None = None
    last_event: str = ""
    return_value: int | None = None
    signal: int | None = None


@dataclass
class DagView:
    dataset: str
    status: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    nodes: dict[str, NodeView] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "error")


def read_node_status(path: Path) -> tuple[dict, list[dict]]:
    """The DAG ad and the node ads of a NODE_STATUS_FILE (empty when DAGMan has not written it yet)."""
    import classad2

    if not path.exists():
        return {}, []
    dag: dict = {}
    nodes = []
    for ad in classad2.parseAds(path.read_text()):
        kind = ad.get("Type")
        if kind == "DagStatus":
            dag = dict(ad)
        elif kind == "NodeStatus":
            nodes.append(dict(ad))
    return dag, nodes


def read_node_log(path: Path, view: NodeView) -> None:
    """Fold a node's event log into ``view``: last event, hold reason, exit value or signal."""
    import htcondor2

    if not path.exists():
        return
    names = {
        htcondor2.JobEventType.SUBMIT: "submitted", htcondor2.JobEventType.EXECUTE: "executing",
        htcondor2.JobEventType.JOB_HELD: "held", htcondor2.JobEventType.JOB_RELEASED: "released",
        htcondor2.JobEventType.JOB_TERMINATED: "terminated", htcondor2.JobEventType.JOB_ABORTED: "removed",
        htcondor2.JobEventType.JOB_EVICTED: "evicted",
    }
    for event in htcondor2.JobEventLog(str(path)).events(stop_after=0):
        name = names.get(event.type)
        if name is None:
            continue
        view.last_event = name
        view.cluster = event.cluster
        if name == "held":
            view.held = str(event.get("HoldReason", "held"))
        elif name in ("released", "submitted"):
            view.held = None
        if name == "terminated":
            normal = bool(event.get("TerminatedNormally", True))
            view.return_value = int(event.get("ReturnValue", 0)) if normal else None
            view.signal = None if normal else int(event.get("TerminatedBySignal", 0))


def view_dag(files: DagFiles) -> DagView:
    dag_ad, node_ads = read_node_status(files.node_status)
    view = DagView(files.dataset)
    if dag_ad:
        view.status = NODE_STATUS.get(int(dag_ad.get("DagStatus", -1)), str(dag_ad.get("DagStatus")))
        view.counts = {k[5:].lower(): int(v) for k, v in dag_ad.items() if k.startswith("Nodes")}
    for ad in node_ads:
        name = str(ad.get("Node"))
        view.nodes[name] = NodeView(name, NODE_STATUS.get(int(ad.get("NodeStatus", 0)), "?"),
                                    int(ad.get("RetryCount", 0)), str(ad.get("StatusDetails", "")))
    for log in sorted(files.node_dir.glob("*.log")) if files.node_dir.exists() else []:
        read_node_log(log, view.nodes.setdefault(log.stem, NodeView(log.stem)))
    return view


class CondorExecutor:
    """Submits and controls association DAGs on the local schedd."""

    def __init__(self, site: Site, bb: Blackboard) -> None:
        self.site = site
        self.bb = bb

    def submit(self, workflow: Workflow, dataset: str, *, priority: int | None = None,
               submission: int | None = None) -> int:
        """Write the DAG and submit it; return the DAGMan job's cluster id."""
        import htcondor2

        sd = schedd()
        files = write_dag(self.site, workflow, dataset, self.bb, priority=priority)
        try:
            desc = htcondor2.Submit.from_dag(str(files.dag), {"batch-name": f"owl-{files.dataset}"})
        except htcondor2.HTCondorException as exc:
            raise NoSchedd(f"cannot prepare {files.dag} for DAGMan: {exc}") from None
        if submission is not None:
            desc["My.OwlSubmission"] = str(submission)
        return _call("submit", sd.submit, desc).cluster()

    def _dagman_ads(self, constraint: str, projection: list[str]) -> list:
        sd = schedd()
        return _call("query", sd.query, constraint=constraint, projection=projection)

    def find(self, submission: int) -> int | None:
        """The cluster of a DAGMan job already submitted for this submission (queue or history)."""
        constraint = f"OwlSubmission == {int(submission)}"
        ads = self._dagman_ads(constraint, ["ClusterId"])
        if not ads:
            sd = schedd()
            ads = list(_call("history", sd.history, constraint, ["ClusterId"], match=1))
        return int(ads[0]["ClusterId"]) if ads else None

    def dagman_job(self, dataset: str) -> dict | None:
        """The queued DAGMan job of an association, if any."""
        ads = self._dagman_ads(f'OwlAssociation == "{dataset}" && JobUniverse == 7',
                               ["ClusterId", "JobStatus", "HoldReason", "DAG_NodesDone", "DAG_NodesTotal"])
        return dict(ads[0]) if ads else None

    def act(self, action: str, dataset: str) -> int:
        """``hold``, ``release`` or ``remove`` the association's DAGMan job; return its cluster id."""
        import htcondor2

        job = self.dagman_job(dataset)
        if job is None:
            raise OwlError(f"{dataset}: no DAGMan job in the queue", code=ExitCode.USAGE)
        cluster = int(job["ClusterId"])
        kind = {"hold": htcondor2.JobAction.Hold, "release": htcondor2.JobAction.Release,
                "remove": htcondor2.JobAction.Remove}[action]
        _call(action, schedd().act, kind, f"ClusterId == {cluster}")
        return cluster

    def follow(self, dataset: str, workflow: Workflow) -> DagView:
        """Read DAGMan's files for one association and record on the OSF what no hook could."""
        view = view_dag(dag_files(self.site, dataset))
        graph = expand(self.bb, workflow, dataset)
        for node in view.nodes.values():
            ended_hard = node.last_event == "removed" or (node.last_event == "terminated" and node.signal)
            if not ended_hard or node.name not in graph.nodes:
                continue
            column, target = graph.nodes[node.name].stage.column, graph.nodes[node.name].dataset
            try:
                stuck = [d for d, v in node_letters(self.bb, column, target).items() if v == "p"]
                if stuck:
                    why = ("removed from the queue" if node.last_event == "removed"
                           else f"killed by signal {node.signal}")
                    self.bb.transition(stuck, column, "p", "x", exit_code=int(ExitCode.KILLED),
                                       who=f"dag:{node.name}", message=f"job {node.cluster} {why}")
            except OSFError:
                continue
        return view

    def follow_all(self, controller) -> None:
        """Close the controller's submitted DAGs that DAGMan reports finished."""
        for sub in controller.submissions(states=("submitted",)):
            view = self.follow(sub.dataset, controller.workflow(sub.workflow))
            if view.status == "done":
                controller.update_submission(sub.id, state="done", message="DAGMan: all nodes done")
            elif view.status == "error":
                failed = [n.name for n in view.nodes.values() if n.status == "error"]
                controller.update_submission(sub.id, state="failed",
                                             message=f"DAGMan: failed node(s) {', '.join(failed)}")
