"""The HTCondor executor: submit association DAGs to a schedd and follow them back into the OSF.

Submission is ``htcondor2.Submit.from_dag`` + ``Schedd().submit``, tagged with the site's identity
(``OwlSite``), the controller's submission id (``OwlSubmission``), the association and the workflow,
so a controller restarted between the two can find the DAGMan job instead of submitting twice. Every
schedd query is constrained by the site and the user (:mod:`pipeline.orchestration.executors.ownership`): other
sites on the same pool reuse the same submission ids and association names.

While a DAG runs, the stage wrappers and the PRE/POST hooks move the OSF; what they cannot see is
read here from DAGMan's node status file and each node's event log: a job removed or killed so hard
that its column stayed ``p`` becomes ``x``, held jobs and their reasons are reported, and the DAG's
final state closes the submission.
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
from pipeline.orchestration.executors.ownership import SITE_ATTR, Ownership, quoted
from pipeline.orchestration.workflow import Workflow

#: DAGMan's node (and DAG) status values in the node status file.
NODE_STATUS = {0: "not ready", 1: "ready", 2: "pre", 3: "submitted", 4: "post", 5: "done", 6: "error",
               7: "futile"}
DAG_DONE, DAG_ERROR = 5, 6
#: A job ad's ``JobStatus`` values.
JOB_STATUS = {1: "idle", 2: "running", 3: "removed", 4: "completed", 5: "held", 6: "transferring output",
              7: "suspended"}


class NoSchedd(OwlError):
    """No schedd to talk to: the site is not on an HTCondor pool (or the pool is down)."""

    code = ExitCode.CONFIG


class ForeignJob(OwlError):
    """This site's job for a submission runs another association or workflow: the site database and the
    schedd disagree (a database restored or copied with its identity), so nothing may be submitted."""

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
        self.owner = Ownership.of(bb.engine)

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
        desc[f"My.{SITE_ATTR}"] = quoted(self.owner.site)
        desc["My.OwlAssociation"] = quoted(files.dataset)
        desc["My.OwlWorkflow"] = quoted(workflow.name)
        if submission is not None:
            desc["My.OwlSubmission"] = str(submission)
        return _call("submit", sd.submit, desc).cluster()

    def _dagman_ads(self, constraint: str, projection: list[str]) -> list:
        sd = schedd()
        return _call("query", sd.query, constraint=constraint, projection=projection)

    def find(self, submission: int, dataset: str, workflow: str) -> int | None:
        """The cluster of this site's DAGMan job already submitted for this submission (queue or history).

        A job of this site and user with this submission id must also run ``dataset`` with
        ``workflow`` (a workflow name); one that does not raises :class:`ForeignJob`.
        """
        constraint = self.owner.constraint(f"OwlSubmission == {int(submission)}", "JobUniverse == 7")
        projection = ["ClusterId", "OwlAssociation", "OwlWorkflow"]
        ads = self._dagman_ads(constraint, projection)
        if not ads:
            sd = schedd()
            ads = list(_call("history", sd.history, constraint, projection, match=1))
        for ad in ads:
            found = (ad.get("OwlAssociation"), ad.get("OwlWorkflow"))
            if found != (dataset, workflow):
                raise ForeignJob(
                    f"submission {submission} ({workflow} for {dataset}): HTCondor job {ad.get('ClusterId')} of this "
                    f"site ({self.owner.site}, user {self.owner.user}) carries the same submission id but runs "
                    f"{found[1]} for {found[0]}; the site database and the schedd disagree (database restored or "
                    "copied?): nothing submitted, see 'Sharing one pool' in docs/orchestration.md")
        return max(int(ad["ClusterId"]) for ad in ads) if ads else None

    def dagman_job(self, dataset: str, submission: int | None = None) -> dict | None:
        """This site's queued DAGMan job of an association (and submission, when given), if any."""
        clauses = [f"OwlAssociation == {quoted(dataset)}", "JobUniverse == 7"]
        if submission is not None:
            clauses.append(f"OwlSubmission == {int(submission)}")
        ads = self._dagman_ads(self.owner.constraint(*clauses),
                               ["ClusterId", "JobStatus", "HoldReason", "DAG_NodesDone", "DAG_NodesTotal"])
        return dict(ads[0]) if ads else None

    def queue_state(self, dataset: str, submission: int | None = None) -> str:
        """One line on this site's DAGMan job of the association as the schedd sees it (or why it cannot say)."""
        try:
            job = self.dagman_job(dataset, submission)
        except NoSchedd as exc:
            return f"schedd not asked: {exc.line()}"
        if job is None:
            return "no DAGMan job of this site in the queue"
        state = JOB_STATUS.get(int(job.get("JobStatus", 0)), str(job.get("JobStatus")))
        done = f", {job['DAG_NodesDone']}/{job['DAG_NodesTotal']} nodes done" if "DAG_NodesTotal" in job else ""
        held = f": {job['HoldReason']}" if state == "held" and job.get("HoldReason") else ""
        return f"DAGMan job {job['ClusterId']} {state}{done}{held}"

    def act(self, action: str, dataset: str, submission: int | None = None) -> int:
        """``hold``, ``release`` or ``remove`` this site's DAGMan job of the association; return its cluster id."""
        import htcondor2

        job = self.dagman_job(dataset, submission)
        if job is None:
            raise OwlError(f"{dataset}: no DAGMan job of this site ({self.owner.site}) owned by "
                           f"{self.owner.user} in the queue", code=ExitCode.USAGE)
        cluster = int(job["ClusterId"])
        kind = {"hold": htcondor2.JobAction.Hold, "release": htcondor2.JobAction.Release,
                "remove": htcondor2.JobAction.Remove}[action]
        _call(action, schedd().act, kind, self.owner.constraint(f"ClusterId == {cluster}"))
        return cluster

    def raise_idle_priority(self, cluster: int, priority: int) -> int:
        """Set ``JobPrio`` of this site's idle node jobs of DAGMan job ``cluster``; return how many changed."""
        constraint = self.owner.constraint(f"DAGManJobId == {int(cluster)}", "JobStatus == 1")
        return schedd().edit(constraint, "JobPrio", str(priority))

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
