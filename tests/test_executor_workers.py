"""The local executor's record of what each worker runs (pid, DAG node, since when), and the console's
view of it on /console/dags (OPUS's Process Manager)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from pipeline.core.osf import Blackboard
from pipeline.orchestration.executors.local import LocalExecutor
from pipeline.orchestration.executors.workers import WorkerBoard, read_workers
from pipeline.orchestration.workflow import load_workflow
from tests.orchkit import KIT_SHORT, kit_site, register

ASN, MEMBERS = "j9cv58020", ("j9cv58abq", "j9cv58acq")


def test_executor_records_its_running_workers(site, tmp_path, monkeypatch):
    plan = kit_site(site, tmp_path, monkeypatch)
    plan.write_text(json.dumps({"CA": {"*": ["sleep:1.0"]}}))
    bb = Blackboard(site.database_url)
    register(bb)
    directory = site.areas.dags / "workers"
    seen = []

    def listener(event, dag, node):
        if event == "start" and node.name.startswith("CA_"):
            seen.append(read_workers(directory))

    ex = LocalExecutor(site, bb, workers=2, listener=listener)
    ex.submit(load_workflow(KIT_SHORT), ASN)
    ex.run()
    last = seen[-1]
    assert len(last) == 1 and last[0].pid == os.getpid() and last[0].host == socket.gethostname()
    jobs = {j.node: j for j in last[0].jobs}
    assert set(jobs) == {f"CA_{m}" for m in MEMBERS} and last[0].workers == 2 and last[0].idle == 0
    for m in MEMBERS:
        job = jobs[f"CA_{m}"]
        assert job.dataset == m and job.dag == ASN and job.stage == "CA" and job.attempt == 1
        assert job.pid != os.getpid() and job.since >= last[0].started
    assert read_workers(directory)[0].jobs == []  # all done: the record says idle


def test_records_of_gone_executors_are_dropped(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = WorkerBoard(tmp_path, 2)
    dead.record.pid = int(gone.stdout)
    dead.path = tmp_path / f"{dead.record.host}-{dead.record.pid}.json"
    dead.started(123, ASN, "CA_x", MEMBERS[0], "CA", 1)
    elsewhere = WorkerBoard(tmp_path, 4)
    elsewhere.record.host = "node7.example"
    elsewhere.path = tmp_path / "node7.example-99.json"
    elsewhere.started(456, ASN, f"CA_{MEMBERS[1]}", MEMBERS[1], "CA", 2)
    (tmp_path / "half-written.json").write_text("{")
    assert [(r.host, [j.pid for j in r.jobs]) for r in read_workers(tmp_path)] == [("node7.example", [456])]
    assert not dead.path.exists()  # removed once seen dead; another host's record and a torn one are left alone
    assert elsewhere.path.exists() and (tmp_path / "half-written.json").exists()


def test_console_shows_the_workers(site):
    from starlette.testclient import TestClient

    from pipeline.service.app import create_app
    from pipeline.service.console import mount

    board = WorkerBoard(site.areas.dags / "workers", 3)
    board.started(4242, ASN, f"CA_{MEMBERS[0]}", MEMBERS[0], "CA", 2)
    site.console.public_read = True
    page = TestClient(create_app(site, mounts=[mount()])).get("/console/dags").text
    assert f"Executor pid {os.getpid()} on {socket.gethostname()}" in page and "1 of 3 worker(s) busy, 2 idle" in page
    row = page.split(f'id="workers-{os.getpid()}"')[1].split("</tr>")[1]
    assert "4242" in row and f'href="/console/dags/{ASN}">CA_{MEMBERS[0]}<' in row and MEMBERS[0] in row
    board.finished(4242)
    assert "0 of 3 worker(s) busy, 3 idle" in TestClient(create_app(site, mounts=[mount()])).get("/console/dags").text
