"""The local executor: DAGMan semantics on this machine, with kit stages (tests/orchkit.py)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time

import pytest

from pipeline.core.config import init_site, load_site
from pipeline.core.exitcodes import ExitCode
from pipeline.core.osf import Blackboard
from pipeline.orchestration.dag import owl_executable
from pipeline.orchestration.executors.local import LocalExecutor, State
from pipeline.orchestration.workflow import load_workflow
from tests.orchkit import KIT_SHORT, KIT_WORKFLOW, kit_site, products, register

ASN = "j9cv58020"
ROWS = [ASN, "j9cv58abq", "j9cv58acq"]


@pytest.fixture
def kit(site, tmp_path, monkeypatch):
    plan = kit_site(site, tmp_path, monkeypatch)
    bb = Blackboard(site.database_url)
    register(bb)
    return bb, plan


def run_local(site, bb, *, workers=2, events=None, datasets=(ASN,), priorities=None, workflow=KIT_WORKFLOW):
    ex = LocalExecutor(site, bb, workers=workers,
                       listener=(lambda e, d, n: events.append((e, d.dataset, n.name if n else None)))
                       if events is not None else None)
    wf = load_workflow(workflow)
    runs = [ex.submit(wf, ds, priority=(priorities or {}).get(ds)) for ds in datasets]
    ex.run()
    return runs


def column(bb, col, rows=ROWS):
    return "".join(bb.get(r).letter(col) for r in rows)


def test_runs_the_dag_to_completion(site, kit):
    bb, _ = kit
    events = []
    [run] = run_local(site, bb, events=events)
    assert run.succeeded and run.finished is not None
    for col in ("IN", "RF", "CA", "MD", "PV", "CL"):
        assert column(bb, col) == "ccc"
    assert sorted(products(site)) == [f"{ASN}/{c}.out" for c in ("CL", "IN", "MD", "PV", "RF")] + [
        "j9cv58abq/CA.out", "j9cv58acq/CA.out"]
    starts = [n for e, _, n in events if e == "start"]
    assert starts.index("RF") > starts.index("INGEST") and starts.index("MD") > starts.index("CA_j9cv58acq")
    out = run.files.node_output("CA_j9cv58abq").read_text()
    assert out.startswith("---- ") and "attempt 1: " in out


def test_retryable_failure_is_retried(site, kit):
    bb, plan = kit
    plan.write_text(json.dumps({"CA": {"j9cv58abq": ["eio", "ok"]}}))
    events = []
    [run] = run_local(site, bb, events=events)
    assert run.succeeded
    assert ("retry", ASN, "CA_j9cv58abq") in events
    history = [(h.old, h.new, h.exit_code) for h in bb.history("j9cv58abq") if h.column == "CA"]
    assert history == [("_", "w", None), ("w", "p", None), ("p", "e", 30), ("e", "w", 30), ("w", "p", None),
                       ("p", "c", 0)]


def test_fatal_failure_is_not_retried_and_stops_the_dag(site, kit):
    bb, plan = kit
    plan.write_text(json.dumps({"MD": {"*": ["bad"]}}))
    [run] = run_local(site, bb)
    assert not run.succeeded
    assert [n.name for n in run.failures()] == ["MD"]
    assert run.nodes["MD"].exit_code == ExitCode.BAD_INPUT and run.nodes["MD"].retry == 0
    assert run.nodes["PVW"].state is State.FUTILE
    assert column(bb, "MD") == "eee" and column(bb, "PV") == "___" and column(bb, "CA") == "ccc"


def test_rerun_resumes_like_a_rescue_dag(site, kit):
    bb, plan = kit
    plan.write_text(json.dumps({"MD": {"*": ["bad", "ok"]}}))
    run_local(site, bb)
    before = products(site)
    events = []
    [again] = run_local(site, bb, events=events)  # MD's second attempt succeeds
    assert again.succeeded
    started = [n for e, _, n in events if e == "start"]
    assert started == ["MD", "PVW", "CL"]  # completed nodes are done, the failed one reruns
    after = products(site)
    assert {k: v for k, v in after.items() if k in before} == before


def test_throttles_and_workers(site, tmp_path, monkeypatch):
    tuned = load_site(site.root, overrides={"throttles.max_jobs": {"ca": 1}})
    plan = kit_site(tuned, tmp_path, monkeypatch)
    plan.write_text(json.dumps({"CA": {"*": ["sleep:0.4"]}}))
    bb = Blackboard(tuned.database_url)
    register(bb, ASN, ("j9cv58abq", "j9cv58acq", "j9cv58adq"))
    run_local(tuned, bb, workers=3, workflow=KIT_SHORT)
    spans = []
    for m in ("j9cv58abq", "j9cv58acq", "j9cv58adq"):
        h = {x.new: x.time for x in bb.history(m) if x.column == "CA"}
        spans.append((h["p"], h["c"]))
    spans.sort()
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), "MAXJOBS ca 1 was exceeded"


def test_priority_orders_ready_nodes(site, kit):
    bb, _ = kit
    register(bb, "j9cv59020", ("j9cv59abq",))
    events = []
    run_local(site, bb, workers=1, events=events, datasets=(ASN, "j9cv59020"),
              priorities={ASN: 10, "j9cv59020": 90}, workflow=KIT_SHORT)
    starts = [(d, n) for e, d, n in events if e == "start"]
    assert starts[0] == ("j9cv59020", "INGEST")
    assert starts.index(("j9cv59020", "CL")) < starts.index((ASN, "INGEST"))  # one worker: B drains first


def test_held_dataset_waits(site, kit):
    bb, _ = kit
    bb.set_letter(ASN, "CL", "h")
    ex = LocalExecutor(site, bb, workers=2)
    run = ex.submit(load_workflow(KIT_SHORT), ASN)
    deadline = time.monotonic() + 60
    while run.nodes["CL"].state is not State.READY or run.nodes["CL"].not_before == 0:
        assert time.monotonic() < deadline
        ex.step()
        time.sleep(0.05)
    assert column(bb, "CL", [ASN]) == "h"  # deferred, not failed
    bb.set_letter(ASN, "CL", "_")  # operator releases it
    ex.run()
    assert run.succeeded


def _submit_cmd(site, *extra):
    return [str(owl_executable()), "submit", ASN, "--site", str(site.root), "--workflow", str(KIT_SHORT),
            "--workers", "2", *extra]


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _reference_products(tmp_path, monkeypatch) -> dict[str, str]:
    """The products of an undisturbed run of the same association in another site."""
    ref = init_site(tmp_path / "reference")
    monkeypatch.setenv("OWL_SITE", str(ref.root))
    bb = Blackboard(ref.database_url)
    register(bb)
    run_local(ref, bb, workflow=KIT_SHORT)
    return products(ref)


@pytest.mark.parametrize("how", ["kill", "ctrl-c"])
def test_killed_executor_leaves_x_or_w_and_resumes_to_the_same_products(site, kit, tmp_path, monkeypatch, how):
    bb, plan = kit
    plan.write_text(json.dumps({"CA": {"j9cv58acq": ["sleep:60", "ok"]}}))
    def interactive() -> None:  # a background test runner may ignore SIGINT; a terminal does not
        os.setsid()
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    proc = subprocess.Popen(_submit_cmd(site), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=interactive)
    try:
        _wait_for(lambda: bb.get("j9cv58acq").letter("CA") == "p" and bb.get("j9cv58abq").letter("CA") == "c")
        if how == "kill":
            proc.kill()  # the executor dies without a word; its children must not stay 'p'
        else:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        proc.wait(timeout=60)
        _wait_for(lambda: "p" not in column(bb, "CA"))
    finally:
        if proc.poll() is None:
            proc.kill()
    assert column(bb, "CA", ["j9cv58acq"]) in ("x", "w"), [
        (h.column, h.old, h.new, h.exit_code, h.who, h.pid, h.message) for h in bb.history("j9cv58acq")]
    assert all(bb.get(r).letter(c) in "cwx_" for r in ROWS for c in ("IN", "CA", "CL"))
    resumed = subprocess.run(_submit_cmd(site), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "submission 1" in resumed.stdout  # the same submission, resumed
    for col in ("IN", "CA", "CL"):
        assert column(bb, col) == "ccc"
    ca_runs = [h for h in bb.history("j9cv58abq") if h.column == "CA" and h.new == "p"]
    assert len(ca_runs) == 1  # the finished member was not redone
    plan.write_text("{}")
    assert products(site) == _reference_products(tmp_path, monkeypatch)


def test_each_node_gets_omp_num_threads_from_its_request_cpus(site, kit, tmp_path, monkeypatch):
    """As HTCondor's starter does on a pool: the stages size their threads by it (CA's chips, MD's processes)."""
    bb, _ = kit
    wf = tmp_path / "kit.toml"
    wf.write_text(KIT_WORKFLOW.read_text().replace('category = "md"', 'category = "md"\nrequest_cpus = 2', 1))
    monkeypatch.setenv("OMP_NUM_THREADS", "7")   # the executor's own value is not what a node gets
    [run] = run_local(site, bb, workflow=wf)
    assert run.succeeded
    work = site.areas.work
    assert (work / ASN / ".MD.threads").read_text() == "2"
    assert (work / ASN / ".RF.threads").read_text() == "1"
    assert (work / "j9cv58abq" / ".CA.threads").read_text() == "1"


def _overlaps(events: list) -> list[set]:
    """The sets of nodes (dataset, node) that ran at once, from the listener's start/done events."""
    running: set = set()
    seen = []
    for e, d, n in events:
        if e == "start":
            running.add((d, n))
            seen.append(set(running))
        elif e in ("done", "failed", "retry"):
            running.discard((d, n))
    return seen


def test_md_nodes_of_two_dags_run_side_by_side_on_the_cpus_left(site, kit, tmp_path, monkeypatch):
    """MAXJOBS counts per DAG, as DAGMan counts it; the machine's CPUs are shared: the MD that starts
    beside another may keep 1 of 2 CPUs busy, and both once the other has ended (its request_cpus)."""
    bb, plan = kit
    register(bb, "j9cv59020", ("j9cv59abq",))
    # the other MD, then its DAG's last two nodes, end well before this one (slow CI start-ups included)
    plan.write_text(json.dumps({"MD": {"j9cv59020": ["sleep:7.0"], "*": ["sleep:2.5"]}}))
    wf = tmp_path / "kit.toml"
    wf.write_text(KIT_WORKFLOW.read_text().replace('category = "md"', 'category = "md"\nrequest_cpus = 2', 1))
    machine = load_site(site.root, overrides={"executor.cpus": 2, "executor.memory_mb": 64000})
    events = []
    runs = run_local(machine, bb, events=events, datasets=(ASN, "j9cv59020"), workflow=wf)
    assert all(r.succeeded for r in runs)
    assert {(ASN, "MD"), ("j9cv59020", "MD")} in _overlaps(events), "md = 1 was applied across DAGs"
    later = [d for e, d, n in events if e == "start" and n == "MD"][1]
    work = site.areas.work
    assert (work / later / ".MD.threads").read_text() == "2"               # OMP_NUM_THREADS: its request
    assert (work / later / ".MD.cpus_now").read_text().split()[0] == "1"   # started beside the other MD
    assert (work / "j9cv59020" / ".MD.cpus_now").read_text().split()[1] == "2"  # alone at its end
    assert (work / ASN / ".RF.cpus_now").read_text() == "1 1"


def test_jobs_start_only_while_their_memory_requests_fit(site, kit, tmp_path, monkeypatch):
    """Like a partitionable slot: the running jobs' requests never exceed the machine's memory, and a job
    that asks for more than all of it runs alone rather than never."""
    bb, _ = kit
    register(bb, "j9cv59020", ("j9cv59abq",))
    small = load_site(site.root, overrides={"executor.memory_mb": 1100})  # CA asks 2 GB, the others 512 MB
    kit_site(small, tmp_path, monkeypatch)
    events = []
    runs = run_local(small, bb, events=events, datasets=(ASN, "j9cv59020"), workers=4)
    assert all(r.succeeded for r in runs)
    together = _overlaps(events)
    assert {(ASN, "INGEST"), ("j9cv59020", "INGEST")} in together   # 2 x 512 MB fit in 1100 MB
    for group in together:
        assert len(group) <= 2
        if any(n.startswith("CA_") for _, n in group):
            assert len(group) == 1, f"a 2 GB CA job ran beside another in 1100 MB: {group}"


def test_shortest_node_by_the_sites_history_goes_first_among_equals(site, kit):
    """One worker, two equal DAGs: the second's INGEST (history: quick) runs before the first's CA nodes
    (no history: counted longest), where submission order alone would run the whole first DAG first."""
    from pipeline.core import usage

    bb, _ = kit
    register(bb, "j9cv59020", ("j9cv59abq",))
    usage.add(site.database_url, [usage.NodeUsage("IN", ASN, "ACS", "WFC", 2, 1.0, 100.0, 0.2, 0, time.time())])
    events = []
    run_local(site, bb, workers=1, events=events, datasets=(ASN, "j9cv59020"), workflow=KIT_SHORT)
    starts = [(d, n) for e, d, n in events if e == "start"]
    assert starts[:2] == [(ASN, "INGEST"), ("j9cv59020", "INGEST")], starts
