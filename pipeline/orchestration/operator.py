"""The operator's actions on a dataset's DAG, shared by ``owl retry`` / ``owl dag`` and the web console.

Both faces call these, so a retry or a hold from the browser is exactly the one from the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.orchestration.controller import ACTIVE, Controller, ControllerError, Submission
from pipeline.orchestration.dag import dag_files, expand

#: Submissions a retry must wait for (a held one may be retried: its DAG starts no new node).
UNFINISHED = tuple(s for s in ACTIVE if s != "held")


@dataclass(frozen=True)
class Retried:
    dataset: str
    reset: list[str]
    submission: Submission


def latest(ctl: Controller, dataset: str) -> Submission:
    """The newest submission of ``dataset``; an error when it was never submitted."""
    subs = ctl.submissions(dataset)
    if not subs:
        raise ControllerError(f"{dataset}: never submitted (see 'owl submit {dataset}')")
    return subs[-1]


def retry(ctl: Controller, dataset: str, from_stage: str | None = None, workflow: str | None = None) -> Retried:
    """Reset failed (e, x) columns, or every column from ``from_stage`` on, and submit the DAG again.

    The submission is only recorded; the caller runs it (``ctl.run_local`` / ``ctl.dispatch``).
    """
    entry = ctl.bb.get(dataset)
    if entry.parent:
        raise ControllerError(f"{entry.dataset} is a member of {entry.parent}: retry the association")
    past = ctl.submissions(entry.dataset)
    name = workflow or (past[-1].workflow if past else entry.workflow or "new_science")
    active = [s for s in past if s.state in UNFINISHED]
    if active:
        raise ControllerError(f"{entry.dataset} has an unfinished submission {active[-1].id} "
                              f"({active[-1].state}): wait for it or 'owl dag remove {entry.dataset}'")
    changed = ctl.reset(entry.dataset, ctl.workflow(name), from_stage)
    return Retried(entry.dataset, changed, ctl.submit(entry.dataset, name))


def control(ctl: Controller, action: str, dataset: str) -> str:
    """Hold, release or remove the newest DAG of ``dataset``; one line saying what was done."""
    sub = latest(ctl, dataset)
    files = dag_files(ctl.site, sub.dataset)
    if sub.executor == "condor":
        cluster = ctl.condor().act(action, sub.dataset, sub.id)
        if action == "remove":
            ctl.update_submission(sub.id, state="removed", message=f"removed DAGMan job {cluster}")
        return f"{sub.dataset}: DAGMan job {cluster} {action}{'d' if action != 'hold' else ''}"
    if action == "release":
        files.halt.unlink(missing_ok=True)
        if sub.state == "held":
            ctl.update_submission(sub.id, state="queued", message="released")
        return f"{sub.dataset}: released; 'owl submit', 'owl watch' or 'owl watch --once' resumes it"
    files.halt.parent.mkdir(parents=True, exist_ok=True)
    files.halt.write_text(f"{action} by operator\n")
    if action == "remove":
        ctl.update_submission(sub.id, state="removed", message="removed by operator")
    elif sub.state in ("new", "queued", "running"):
        ctl.update_submission(sub.id, state="held", message="held by operator")
    return f"{sub.dataset}: {action} requested ({files.halt.name}); running nodes finish, no new node starts"


def rescue(ctl: Controller, dataset: str, workers: int | None = None) -> tuple[Controller, Submission]:
    """Submit a stopped or failed DAG again from where it stopped; the controller of its executor kind
    (which runs it) and the new submission."""
    sub = latest(ctl, dataset)
    if sub.state in ACTIVE:
        raise ControllerError(f"{sub.dataset}: submission {sub.id} is still {sub.state}")
    if sub.executor == "local":
        dag_files(ctl.site, sub.dataset).halt.unlink(missing_ok=True)
    ctl = type(ctl)(ctl.site, executor=sub.executor, workers=workers)
    return ctl, ctl.submit(sub.dataset, sub.workflow, priority=sub.priority)


def dag_view(ctl: Controller, dataset: str) -> dict[str, Any]:
    """The newest DAG of ``dataset`` node by node: OSF letters, DAGMan status, retries, holds, parents,
    and its layer (longest path from a first node), as ``owl dag status`` and the console show it."""
    from pipeline.orchestration.executors.condor import view_dag
    from pipeline.orchestration.executors.hooks import node_letters

    sub = latest(ctl, dataset)
    graph = expand(ctl.bb, ctl.workflow(sub.workflow), sub.dataset)
    files = dag_files(ctl.site, sub.dataset)
    view = view_dag(files)
    depth: dict[str, int] = {}

    def layer(name: str) -> int:
        if name not in depth:
            depth[name] = 1 + max((layer(p) for p in graph.nodes[name].parents if p in graph.nodes), default=-1)
        return depth[name]

    rows = []
    for node in graph.nodes.values():
        letters = node_letters(ctl.bb, node.stage.column, node.dataset)
        dm = view.nodes.get(node.name)
        rows.append({"node": node.name, "dataset": node.dataset, "column": node.stage.column,
                     "osf": "".join(letters.values()), "dagman": dm.status if dm else None,
                     "retries": dm.retries if dm else None, "held": dm.held if dm else None,
                     "event": dm.last_event if dm else None, "parents": sorted(node.parents),
                     "layer": layer(node.name)})
    info = {"submission": sub.as_dict(), "dag": str(files.dag), "dagman_status": view.status,
            "dagman_counts": view.counts, "halted": files.halt.exists(), "nodes": rows}
    if sub.executor == "condor":
        info["schedd"] = ctl.condor().queue_state(sub.dataset, sub.id)
    return info
