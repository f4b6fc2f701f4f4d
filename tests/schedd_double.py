"""TEST DOUBLE of an HTCondor schedd: no schedd or pool can run on this machine (htcondor2 wheels only).

What it takes and gives is real: jobs are submitted as real :class:`htcondor2.Submit` descriptions
(``Submit.from_dag`` of a DAG owlpipe wrote, the node submit files it wrote), kept as real
:class:`classad2.ClassAd` job ads, and every ``query``/``history``/``act``/``edit`` constraint is
parsed and evaluated by classad2 against each ad, as a schedd does, so a constraint that is too
loose (or malformed) matches (or fails) here as it would on a pool. Like a schedd it keeps a queue
and a history; the schedd itself sets ``ClusterId``, ``Owner``, ``JobUniverse`` and ``JobStatus``.

Not modelled: DAGMan itself. :meth:`ScheddDouble.start_nodes` stands in for it by submitting a
DAG's node jobs from the submit files the DAG names; :meth:`ScheddDouble.finish` ends a job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import classad2
import htcondor2

from pipeline.orchestration.executors.ownership import current_user

UNIVERSES = {"vanilla": 5, "scheduler": 7, "local": 12}
IDLE, RUNNING, REMOVED, COMPLETED, HELD = 1, 2, 3, 4, 5


@dataclass
class _Submitted:
    """What ``Schedd.submit`` returns (``htcondor2.SubmitResult`` has no public constructor)."""

    cluster_id: int

    def cluster(self) -> int:
        return self.cluster_id


@dataclass
class ScheddDouble:
    """One schedd's queue and history (newest last), shared by every site a test drives against it."""

    queue: list[classad2.ClassAd] = field(default_factory=list)
    done: list[classad2.ClassAd] = field(default_factory=list)
    next_cluster: int = 1

    # -- the htcondor2.Schedd methods owlpipe calls ----------------------------------------------
    def submit(self, description: htcondor2.Submit, count: int = 0, **_: object) -> _Submitted:
        return _Submitted(int(self.add(description)["ClusterId"]))

    def query(self, constraint: str = "True", projection: list[str] | None = None, **_: object) -> list:
        return [_project(ad, projection) for ad in self.matching(self.queue, constraint)]

    def history(self, constraint: str | None = None, projection: list[str] | None = None, match: int = -1,
                **_: object) -> list:
        found = self.matching(list(reversed(self.done)), constraint or "True")
        return [_project(ad, projection) for ad in (found if match < 0 else found[:match])]

    def act(self, action: htcondor2.JobAction, job_spec: str, reason: str | None = None) -> classad2.ClassAd:
        hit = self.matching(self.queue, job_spec)
        for ad in hit:
            if action == htcondor2.JobAction.Hold:
                ad["JobStatus"], ad["HoldReason"] = HELD, reason or "via condor_hold"
            elif action == htcondor2.JobAction.Release:
                ad["JobStatus"] = IDLE
            elif action == htcondor2.JobAction.Remove:
                self.finish(int(ad["ClusterId"]), REMOVED)
        return classad2.ClassAd({"TotalSuccess": len(hit), "TotalJobAds": len(hit)})

    def edit(self, job_spec: str, attr: str, value: str, **_: object) -> int:
        hit = self.matching(self.queue, job_spec)
        for ad in hit:
            ad[attr] = classad2.ExprTree(value)
        return len(hit)

    # -- what the pool does on its own -------------------------------------------------------------
    def add(self, description: htcondor2.Submit, *, owner: str | None = None, **attrs: object) -> classad2.ClassAd:
        """Queue one job: the description's ``My.``/``+`` attributes plus what a schedd sets itself."""
        ad = classad2.ClassAd()
        for key, value in description.items():
            if key.lower().startswith("my.") and "$(" not in value:
                ad[key[3:]] = classad2.ExprTree(value)
        universe = UNIVERSES[description.get("universe", "vanilla").lower()]
        ad.update({"ClusterId": self.next_cluster, "ProcId": 0, "Owner": owner or current_user(),
                   "JobUniverse": universe, "JobStatus": IDLE, "Cmd": description.get("executable", ""),
                   "Args": description.get("arguments", ""), "JobPrio": 0})
        ad.update(attrs)
        self.next_cluster += 1
        self.queue.append(ad)
        return ad

    def start_nodes(self, cluster: int) -> list[classad2.ClassAd]:
        """Stand in for DAGMan: submit one idle job per node of the DAG job ``cluster`` runs."""
        dagman = next(ad for ad in self.queue if ad["ClusterId"] == cluster)
        args = str(dagman["Args"]).strip('"').split()
        dag = Path(args[args.index("-Dag") + 1])
        nodes = []
        for line in dag.read_text().splitlines():
            if line.startswith("JOB ") and " DONE" not in line:
                description = htcondor2.Submit(Path(line.split()[2]).read_text())
                nodes.append(self.add(description, owner=str(dagman["Owner"]), DAGManJobId=cluster,
                                      DAGNodeName=line.split()[1]))
        return nodes

    def finish(self, cluster: int, status: int = COMPLETED) -> None:
        """The job left the queue (completed or removed): it is in the history from now on."""
        for ad in [ad for ad in self.queue if ad["ClusterId"] == cluster]:
            ad["JobStatus"] = status
            self.queue.remove(ad)
            self.done.append(ad)

    # -- evaluation ------------------------------------------------------------------------------
    @staticmethod
    def matching(ads: list[classad2.ClassAd], constraint: str) -> list[classad2.ClassAd]:
        """The ads for which classad2 evaluates ``constraint`` to true (undefined and errors do not match)."""
        expr = classad2.ExprTree(str(constraint))
        return [ad for ad in ads if expr.eval(ad) is True]

    def jobs(self, constraint: str = "True") -> list[classad2.ClassAd]:
        """Every job, queued or finished, matching ``constraint`` (for the tests' own assertions)."""
        return self.matching(self.queue + self.done, constraint)


def _project(ad: classad2.ClassAd, projection: list[str] | None) -> classad2.ClassAd:
    if not projection:
        return classad2.ClassAd(ad)
    return classad2.ClassAd({k: ad.eval(k) for k in projection if k in ad})


def dagman_on_path(directory: Path, monkeypatch) -> Path:
    """``Submit.from_dag`` insists on an executable named condor_dagman on PATH: a stand-in (never run)."""
    directory.mkdir(parents=True, exist_ok=True)
    exe = directory / "condor_dagman"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    return exe
