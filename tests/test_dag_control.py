"""Following and controlling DAGs: DAGMan's status and event files back into the OSF; hold/release."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.core.osf import Blackboard
from pipeline.orchestration.controller import Controller
from pipeline.orchestration.dag import dag_files, write_dag
from pipeline.orchestration.executors.condor import CondorExecutor
from pipeline.orchestration.workflow import load_workflow
from tests.orchkit import KIT_SHORT, kit_site, register

ASN = "j9cv58020"

NODE_STATUS = """[
  Type = "DagStatus";
  DagFiles = {{ "{dag}" }};
  Timestamp = 1700000000; /* "Tue Nov 14 22:13:20 2023" */
  DagStatus = {dag_status}; /* "STATUS_SUBMITTED ()" */
  NodesTotal = 4;
  NodesDone = 1;
  NodesFailed = 0;
]
[
  Type = "NodeStatus";
  Node = "INGEST";
  NodeStatus = 5; /* "STATUS_DONE" */
  StatusDetails = "";
  RetryCount = 0;
  JobProcsQueued = 0;
  JobProcsHeld = 0;
]
[
  Type = "NodeStatus";
  Node = "CA_j9cv58abq";
  NodeStatus = 3; /* "STATUS_SUBMITTED" */
  StatusDetails = "held";
  RetryCount = 1;
  JobProcsQueued = 1;
  JobProcsHeld = 1;
]
[
  Type = "StatusEnd";
  EndTime = 1700000000; /* "Tue Nov 14 22:13:20 2023" */
  NextUpdate = 1700000010; /* "Tue Nov 14 22:13:30 2023" */
]
"""

HELD_LOG = """000 (41.000.000) 2025-01-02 10:00:00 Job submitted from host: <127.0.0.1:9618?addrs=127.0.0.1-9618>
    DAG Node: CA_j9cv58abq
...
001 (41.000.000) 2025-01-02 10:00:05 Job executing on host: <127.0.0.1:9618?addrs=127.0.0.1-9618>
...
012 (41.000.000) 2025-01-02 10:00:09 Job was held.
\tError from slot1@host: memory usage exceeded request_memory
\tCode 34 Subcode 0
...
"""

REMOVED_LOG = """000 (42.000.000) 2025-01-02 10:00:00 Job submitted from host: <127.0.0.1:9618?addrs=127.0.0.1-9618>
    DAG Node: CA_j9cv58acq
...
001 (42.000.000) 2025-01-02 10:00:05 Job executing on host: <127.0.0.1:9618?addrs=127.0.0.1-9618>
...
009 (42.000.000) 2025-01-02 10:03:00 Job was aborted.
\tvia condor_rm (by user owl)
...
"""


@pytest.fixture
def ctl(site, tmp_path, monkeypatch):
    kit_site(site, tmp_path, monkeypatch)
    register(Blackboard(site.database_url))
    return Controller(site, executor="local", workflow=str(KIT_SHORT))


def dagman_ran(site, bb, dag_status: int) -> None:
    """What DAGMan leaves in the DAG directory while it runs (node status file, node event logs)."""
    files = write_dag(site, load_workflow(KIT_SHORT), ASN, bb)
    files.node_status.write_text(NODE_STATUS.format(dag=files.dag, dag_status=dag_status))
    files.node_log("CA_j9cv58abq").write_text(HELD_LOG)
    files.node_log("CA_j9cv58acq").write_text(REMOVED_LOG)


def test_follow_reads_dagman_files_into_the_osf(site, ctl):
    bb = ctl.bb
    bb.transition([ASN, "j9cv58abq", "j9cv58acq"], "IN", "_", "c")
    bb.transition("j9cv58acq", "CA", "_", "p", pid=os.getpid())  # its job was then condor_rm'ed
    dagman_ran(site, bb, dag_status=3)
    view = CondorExecutor(site, bb).follow(ASN, load_workflow(KIT_SHORT))
    assert view.status == "submitted" and view.counts["done"] == 1
    held = view.nodes["CA_j9cv58abq"]
    assert (held.status, held.retries, held.cluster) == ("submitted", 1, 41)
    assert held.held == "Error from slot1@host: memory usage exceeded request_memory"
    assert view.nodes["CA_j9cv58acq"].last_event == "removed"
    assert bb.get("j9cv58acq").letter("CA") == "x"
    assert bb.history("j9cv58acq")[-1].message == "job 42 removed from the queue"


def test_dag_status_command_shows_both_views(site, ctl):
    sub = ctl.submit(ASN, str(KIT_SHORT))
    ctl.update_submission(sub.id, executor="condor", state="submitted", cluster=40)
    dagman_ran(site, ctl.bb, dag_status=3)
    result = CliRunner().invoke(main, ["dag", "status", ASN, "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    nodes = {n["node"]: n for n in info["nodes"]}
    assert info["dagman_status"] == "submitted" and nodes["INGEST"]["dagman"] == "done"
    assert nodes["CA_j9cv58abq"]["held"].startswith("Error from slot1@host")
    assert nodes["CL"]["osf"] == "___" and nodes["CA_j9cv58acq"]["osf"] == "_"
    text = CliRunner().invoke(main, ["dag", "status", ASN]).output
    assert "held: Error from slot1@host" in text and f"submission {sub.id}" in text


def test_finished_dags_close_their_submissions(site, ctl):
    sub = ctl.submit(ASN, str(KIT_SHORT))
    ctl.update_submission(sub.id, executor="condor", state="submitted", cluster=40)
    dagman_ran(site, ctl.bb, dag_status=5)
    CondorExecutor(site, ctl.bb).follow_all(ctl)
    assert ctl.get(sub.id).state == "done"


def test_local_hold_and_release(site, ctl):
    sub = ctl.submit(ASN, str(KIT_SHORT))
    runner = CliRunner()
    held = runner.invoke(main, ["dag", "hold", ASN])
    assert held.exit_code == 0 and "no new node starts" in held.output
    assert ctl.get(sub.id).state == "held" and dag_files(site, ASN).halt.exists()
    ctl.run_local()  # a held submission is not dispatched
    assert ctl.bb.get(ASN).letter("IN") == "_"
    released = runner.invoke(main, ["dag", "release", ASN])
    assert released.exit_code == 0 and ctl.get(sub.id).state == "queued"
    ctl.run_local()
    assert ctl.get(sub.id).state == "done"


def test_halt_file_stops_a_running_local_dag(site, ctl):
    sub = ctl.submit(ASN, str(KIT_SHORT))
    ctl.dispatch()
    [run] = ctl.local.dags
    ctl.local.step()  # INGEST starts
    run.files.halt.write_text("hold\n")
    ctl.local.run()  # INGEST finishes, nothing else starts, the DAG is let go
    assert ctl.bb.get(ASN).letter("IN") == "c" and ctl.bb.get(ASN).letter("CA") == "_"
    assert ctl.get(sub.id).state == "held"
    run.files.halt.unlink()
    ctl.update_submission(sub.id, state="queued")
    again = Controller(site, executor="local", workflow=str(KIT_SHORT))
    again.run_local()
    assert again.get(sub.id).state == "done"
