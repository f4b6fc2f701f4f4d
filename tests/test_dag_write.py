"""The DAGMan files of one association: exact text, valid structure, accepted by htcondor2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core.osf import Blackboard
from pipeline.core.siteid import site_identity
from pipeline.orchestration.dag import owl_executable, write_dag
from pipeline.orchestration.workflow import load_workflow
from tests.orchkit import KIT_WORKFLOW, REPO, kit_board, kit_site, register
from tests.schedd_double import dagman_on_path

DATA = REPO / "tests" / "data" / "dag"
ROWS = ["j9cv58020", "j9cv58abq", "j9cv58acq"]


@pytest.fixture
def kit(site, tmp_path, monkeypatch):
    return kit_board(site, tmp_path, monkeypatch)


def expected(name: str, site, tmp_path) -> list[str]:
    text = (DATA / name).read_text()
    site_id = site_identity(Blackboard(site.database_url).engine)
    job_path = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
    return (text.replace("{site}", str(site.root)).replace("{owl}", str(owl_executable()))
            .replace("{site_id}", site_id)
            .replace("{bin}", str(tmp_path / "bin")).replace("{PATH}", job_path)).splitlines()


def test_kit_dag_text_line_by_line(site, kit, tmp_path):
    kit.transition(ROWS, "IN", "_", "c")  # INGEST already complete: written DONE
    files = write_dag(site, load_workflow(KIT_WORKFLOW), "j9cv58020", kit)
    assert files.dag.read_text().splitlines() == expected("kit_j9cv58020.dag", site, tmp_path)
    assert files.submit_file("CA").read_text().splitlines() == expected("kit_CA.sub", site, tmp_path)
    assert files.config.read_text().splitlines() == expected("kit_j9cv58020.config", site, tmp_path)
    assert files.done == {"INGEST"}
    assert oct(files.dag.stat().st_mode & 0o777) == "0o644"  # the pool's job owner must read it


def test_text_is_the_same_in_every_python_process(site, kit):
    """write_dag walks siblings in hash order; our file must not depend on PYTHONHASHSEED."""
    code = ("import sys; from pipeline.core.config import load_site; from pipeline.core.osf import Blackboard;"
            "from pipeline.orchestration.workflow import load_workflow; "
            "from pipeline.orchestration.dag import write_dag;"
            f"s = load_site({str(site.root)!r}); "
            f"print(write_dag(s, load_workflow({str(KIT_WORKFLOW)!r}), 'j9cv58020', Blackboard(s.database_url))"
            ".dag.read_text())")
    texts = {subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": str(seed)},
                            capture_output=True, text=True, check=True).stdout for seed in (1, 2, 3)}
    assert len(texts) == 1


def parse_dag(text: str) -> dict:
    """A small DAG-file reader: enough to check that the structure is consistent."""
    jobs, edges, per_node, meta = {}, [], {}, {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        word, *rest = line.split()
        if word == "JOB":
            jobs[rest[0]] = {"submit": rest[1], "done": "DONE" in rest[2:]}
        elif word == "PARENT":
            at = rest.index("CHILD")
            edges += [(p, c) for p in rest[:at] for c in rest[at + 1:]]
        elif word == "SCRIPT":
            kind = next(w for w in rest if w in ("PRE", "POST"))
            name = rest[rest.index(kind) + 1]
            per_node.setdefault(name, {})[kind] = rest[rest.index(kind) + 2:]
        elif word in ("VARS", "RETRY", "PRE_SKIP", "PRIORITY", "CATEGORY"):
            per_node.setdefault(rest[0], {})[word] = rest[1:]
        else:
            meta.setdefault(word, []).append(rest)
    return {"jobs": jobs, "edges": edges, "nodes": per_node, "meta": meta}


def check_structure(dag: dict) -> None:
    jobs = dag["jobs"]
    for p, c in dag["edges"]:
        assert p in jobs and c in jobs, f"edge {p} -> {c} names an unknown JOB"
    for name in dag["nodes"]:
        assert name in jobs, f"{name} has settings but no JOB"
    indegree = {j: 0 for j in jobs}
    for _, c in dag["edges"]:
        indegree[c] += 1
    ready = [j for j, d in indegree.items() if d == 0]
    seen = 0
    while ready:
        j = ready.pop()
        seen += 1
        for p, c in dag["edges"]:
            if p == j:
                indegree[c] -= 1
                if indegree[c] == 0:
                    ready.append(c)
    assert seen == len(jobs), "the DAG has a cycle"
    for name, job in jobs.items():
        node = dag["nodes"][name]
        assert Path(job["submit"]).is_absolute() and Path(job["submit"]).exists()
        assert node["RETRY"][1:] == ["UNLESS-EXIT", "100"]
        assert node["PRE_SKIP"] == ["99"]
        assert node["POST"][-4:] == ["$JOB", "$RETURN", "$RETRY", "$MAX_RETRIES"]
        assert Path(node["POST"][0]).is_absolute() and Path(node["PRE"][0]).is_absolute()
        assert re.fullmatch(r'dataset="[a-z0-9]{9}"', node["VARS"][0])
    used = {n["CATEGORY"][0] for n in dag["nodes"].values() if "CATEGORY" in n}
    assert {m[0] for m in dag["meta"]["MAXJOBS"]} == used
    for key in ("CONFIG", "JOBSTATE_LOG", "NODE_STATUS_FILE"):
        assert Path(dag["meta"][key][0][0]).is_absolute()


def test_jobs_get_only_what_they_need_not_the_submitters_environment(site, kit, monkeypatch):
    """A submitter's PATH may hold directories a pool node's user cannot read: never copied into a job.
    ``[condor] path`` and ``[condor.environment]`` are how a site adds more."""
    monkeypatch.setenv("PATH", f"/root/private/bin{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SUBMITTER_SECRET", "x")
    files = write_dag(site, load_workflow(KIT_WORKFLOW), "j9cv58020", kit)
    env = files.submit_file("CA").read_text().split('environment = "')[1].split('"')[0]
    assert "/root/private" not in env and "SUBMITTER_SECRET" not in env
    site.condor.path = "/opt/hstcal/bin"
    site.condor.environment = {"OMP_NUM_THREADS": "1"}
    files = write_dag(site, load_workflow(KIT_WORKFLOW), "j9cv58020", kit)
    env = files.submit_file("CA").read_text().split('environment = "')[1].split('"')[0]
    assert f"PATH=/opt/hstcal/bin:{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin" in env
    assert "OMP_NUM_THREADS=1" in env and f"OWL_SITE={site.root}" in env


def test_new_science_dag_structure(site, tmp_path, monkeypatch):
    """The shipped workflow renders a consistent DAG (executables not yet installed are stood in for)."""
    wf = load_workflow("new_science")
    stand_ins = tmp_path / "stand-ins"
    stand_ins.mkdir()
    for spec in wf:
        exe = stand_ins / spec.executable
        exe.write_text("#!/bin/sh\nexit 0\n")
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stand_ins}{os.pathsep}{os.environ['PATH']}")
    bb = Blackboard(site.database_url)
    register(bb, "jcvx02010", ("jcvx02abq", "jcvx02acq", "jcvx02adq"))
    files = write_dag(site, wf, "jcvx02010", bb)
    dag = parse_dag(files.dag.read_text())
    check_structure(dag)
    assert len(dag["jobs"]) == 13  # 10 association stages + 3 CA members
    assert ("BC", "CA_jcvx02adq") in dag["edges"] and ("CA_jcvx02adq", "MD") in dag["edges"]
    assert ("AC", "PVW") in dag["edges"] and ("INGEST_PVW", "CL") in dag["edges"]
    assert dag["meta"]["MAXJOBS"] == [["ca", "4"], ["ingest", "2"], ["md", "1"]]
    assert not [m for m in dag["meta"].get("CATEGORY", [])]  # write_dag's malformed "CATEGORY name N"
    assert all(n["PRIORITY"] == ["50"] for n in dag["nodes"].values())
    sub = files.submit_file("MD").read_text()
    assert "request_memory = ifThenElse($(owl_memory)" in sub and "request_disk = 4194304" in sub and "$$(" not in sub
    assert 'VARS MD dataset="jcvx02010" node="MD" owl_memory="4096" owl_retry="$(RETRY)"' in files.dag.read_text()


def test_rewrite_after_partial_run(site, kit):
    wf = load_workflow(KIT_WORKFLOW)
    files = write_dag(site, wf, "j9cv58020", kit)
    assert files.done == set()
    # DAGMan ran part of it: the stages recorded their columns, DAGMan left its files
    for col in ("IN", "RF"):
        kit.transition(ROWS, col, "_", "c")
    kit.transition("j9cv58abq", "CA", "_", "c")
    (files.directory / "j9cv58020.dag.rescue001").write_text("DONE INGEST\n")
    (files.directory / "j9cv58020.dag.dagman.out").write_text("log\n")
    (files.node_dir / "RF.out").write_text("out\n")
    again = write_dag(site, wf, "j9cv58020", kit, priority=70)
    dag = parse_dag(again.dag.read_text())
    assert {n for n, j in dag["jobs"].items() if j["done"]} == {"INGEST", "RF", "CA_j9cv58abq"}
    assert dag["nodes"]["MD"]["PRIORITY"] == ["70"] and dag["nodes"]["PVW"]["PRIORITY"] == ["75"]
    runs = list((files.directory / "runs").iterdir())
    assert len(runs) == 1
    assert sorted(p.name for p in runs[0].iterdir()) == ["j9cv58020.dag.dagman.out", "j9cv58020.dag.rescue001",
                                                          "nodes"]
    assert not again.rescue_files()


def test_refuses_to_rewrite_a_running_dag(site, kit):
    files = write_dag(site, load_workflow(KIT_WORKFLOW), "j9cv58020", kit)
    files.lock.write_text("dagman\n")
    with pytest.raises(Exception, match="is running"):
        write_dag(site, load_workflow(KIT_WORKFLOW), "j9cv58020", kit)


def test_submit_from_dag_accepts_it(site, kit, tmp_path, monkeypatch):
    """htcondor2 turns our DAG into a DAGMan job. It insists on an executable named condor_dagman on
    PATH, so the test provides a stand-in (it is never run)."""
    import htcondor2

    dagman_on_path(tmp_path / "fake-condor", monkeypatch)
    files = write_dag(site, load_workflow(KIT_WORKFLOW), "j9cv58020", kit)
    monkeypatch.chdir(tmp_path)  # any working directory
    desc = htcondor2.Submit.from_dag(str(files.dag), {"batch-name": "owl-j9cv58020"})
    text = str(desc)
    assert f"-Dag {files.dag}" in text and f"log = {files.dag}.dagman.log" in text
    assert 'My.JobBatchName = "owl-j9cv58020"' in text


def test_site_paths_with_spaces_are_refused(tmp_path, monkeypatch):
    from pipeline.core.config import init_site
    from pipeline.core.errors import ConfigError

    site = init_site(tmp_path / "my site")
    monkeypatch.setenv("OWL_SITE", str(site.root))
    kit_site(site, tmp_path, monkeypatch)
    bb = Blackboard(site.database_url)
    register(bb)
    with pytest.raises(ConfigError, match="contains spaces"):
        write_dag(site, load_workflow(KIT_WORKFLOW), "j9cv58020", bb)


def test_condor_environment_quoting():
    from pipeline.orchestration.dag import condor_environment

    assert condor_environment({"A": "1", "B": "two words", "C": "it's"}) == '''"A=1 'B=two words' 'C=it''s'"'''


def test_owl_dag_write_prints_the_command(site, kit):
    from click.testing import CliRunner

    from pipeline.cli import main

    result = CliRunner().invoke(main, ["dag", "write", "j9cv58020", "--workflow", str(KIT_WORKFLOW)])
    assert result.exit_code == 0, result.output
    dag = site.areas.dags / "j9cv58020" / "j9cv58020.dag"
    lines = result.output.splitlines()
    assert lines[0] == f"{dag}: 7 nodes, 0 already done (written DONE)"
    assert lines[-1] == f"condor_submit_dag -batch-name owl-j9cv58020 {dag}"
    assert len(lines) == 9 and "request_memory    512 MB  from workflow default" in lines[1]  # one per node
    unknown = CliRunner().invoke(main, ["dag", "write", "j9cv99020", "--workflow", str(KIT_WORKFLOW)])
    assert unknown.exit_code != 0 and "j9cv99020 is not on the OSF" in unknown.output
