"""Several sites on one HTCondor pool: each finds, holds and raises only its own jobs.

The schedd is the labelled test double of tests/schedd_double.py (no pool can run here): jobs go in
as the real htcondor2 submit descriptions owlpipe builds, and every constraint owlpipe sends is
evaluated by classad2 against the double's queue and history.
"""

from __future__ import annotations

import htcondor2
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.core.config import init_site
from pipeline.core.db import engine_for
from pipeline.core.dbapi import Database
from pipeline.core.names import parse_dataset
from pipeline.core.osf import Blackboard
from pipeline.core.siteid import site_identity
from pipeline.orchestration.controller import Controller
from pipeline.orchestration.executors.condor import CondorExecutor, ForeignJob
from tests.orchkit import KIT_SHORT, kit_site, register
from tests.schedd_double import HELD, IDLE, ScheddDouble, dagman_on_path

ASN = "j9cv58020"
DAGMAN = "JobUniverse == 7"


@pytest.fixture
def pool(tmp_path, monkeypatch) -> ScheddDouble:
    double = ScheddDouble()
    monkeypatch.setattr("pipeline.orchestration.executors.condor.schedd", lambda: double)
    dagman_on_path(tmp_path / "fake-condor", monkeypatch)
    return double


@pytest.fixture
def sites(site, tmp_path, monkeypatch):
    """The live site and a second one (reprocessing, test) beside it, holding the same association."""
    kit_site(site, tmp_path, monkeypatch)
    other = init_site(tmp_path / "site-b")
    for s in (site, other):
        register(Blackboard(s.database_url))
    return site, other


def ident(site) -> str:
    return site_identity(Blackboard(site.database_url).engine)


def controller(site) -> Controller:
    return Controller(site, executor="condor", workflow=str(KIT_SHORT))


def submit(site):
    """``owl submit`` of the association on the condor executor: record, then dispatch."""
    ctl = controller(site)
    sub = ctl.submit(ASN, str(KIT_SHORT))
    ctl.dispatch(raise_errors=True)
    return ctl.get(sub.id)


def owl(*args: str):
    return CliRunner().invoke(main, list(args))


def dagman_job(site, association: str = ASN, workflow: str = "kit_short", submission: int = 1):
    """A DAGMan job description as another owlpipe (or an earlier database of this site) submitted it."""
    return htcondor2.Submit({"universe": "scheduler", "executable": "/bin/true", "My.OwlSite": f'"{ident(site)}"',
                             "My.OwlSubmission": str(submission), "My.OwlAssociation": f'"{association}"',
                             "My.OwlWorkflow": f'"{workflow}"'})


def site_jobs(pool: ScheddDouble, site) -> list:
    return pool.jobs(f'OwlSite == "{ident(site)}" && {DAGMAN}')


def test_every_site_has_its_own_identity(sites):
    a, b = sites
    assert ident(a) != ident(b) and ident(a) == ident(a)
    shown = owl("config", "show", "--site", str(a.root), "--json")
    assert shown.exit_code == 0 and f'"site_identity": "{ident(a)}"' in shown.output


@pytest.mark.parametrize("first_finished", [True, False], ids=["in-turn", "concurrently"])
def test_two_sites_each_submit_their_own_dag(pool, sites, first_finished):
    a, b = sites
    sub_a = submit(a)
    if first_finished:
        pool.finish(sub_a.cluster)  # site A's DAG completed long ago: only the history knows it
    sub_b = submit(b)
    assert sub_a.id == sub_b.id == 1 and sub_a.cluster != sub_b.cluster
    assert [j["ClusterId"] for j in site_jobs(pool, a)] == [sub_a.cluster]
    assert [j["ClusterId"] for j in site_jobs(pool, b)] == [sub_b.cluster]
    for s, sub in ((a, sub_a), (b, sub_b)):
        dag = s.areas.dags / ASN / f"{ASN}.dag"
        assert dag.exists() and f'SET_JOB_ATTR OwlSite = "{ident(s)}"' in dag.read_text()
        assert f'My.OwlSite = "{ident(s)}"' in (dag.parent / "CA.sub").read_text()
        [job] = pool.jobs(f"ClusterId == {sub.cluster}")
        assert (job["OwlSubmission"], job["OwlAssociation"], job["OwlWorkflow"]) == (1, ASN, "kit_short")


def test_hold_release_remove_touch_only_the_own_dag(pool, sites):
    a, b = sites
    sub_a, sub_b = submit(a), submit(b)

    def status(site) -> list[int]:
        return [j["JobStatus"] for j in site_jobs(pool, site) if j in pool.queue]

    held = owl("dag", "hold", ASN, "--site", str(a.root))
    assert held.exit_code == 0 and f"DAGMan job {sub_a.cluster} hold" in held.output
    assert status(a) == [HELD] and status(b) == [IDLE]
    assert owl("dag", "release", ASN, "--site", str(a.root)).exit_code == 0
    assert status(a) == [IDLE] and status(b) == [IDLE]
    removed = owl("dag", "remove", ASN, "--site", str(b.root))
    assert removed.exit_code == 0 and f"DAGMan job {sub_b.cluster} removed" in removed.output
    assert status(a) == [IDLE] and status(b) == []
    again = owl("dag", "hold", ASN, "--site", str(b.root))  # B's DAG is gone: A's is not B's to hold
    assert again.exit_code == 2 and "no DAGMan job of this site" in again.output
    assert status(a) == [IDLE]


def test_dag_status_shows_the_own_dagman_job(pool, sites):
    a, b = sites
    sub_a, sub_b = submit(a), submit(b)
    assert owl("dag", "hold", ASN, "--site", str(b.root)).exit_code == 0
    shown = {s.root: owl("dag", "status", ASN, "--site", str(s.root), "--json") for s in (a, b)}
    assert all(r.exit_code == 0 for r in shown.values())
    assert f'"schedd": "DAGMan job {sub_a.cluster} idle"' in shown[a.root].output
    assert f'"schedd": "DAGMan job {sub_b.cluster} held: via condor_hold"' in shown[b.root].output


def test_another_users_job_is_never_matched(pool, sites):
    """Even a job carrying this site's identity is not this site's when someone else owns it."""
    a, _ = sites
    pool.add(dagman_job(a), owner="someone-else")
    sub = submit(a)
    assert sub.cluster == 2 and len(pool.queue) == 2
    assert owl("dag", "hold", ASN, "--site", str(a.root)).exit_code == 0
    assert [j["JobStatus"] for j in pool.queue] == [IDLE, HELD]


@pytest.mark.parametrize("finished", [False, True], ids=["queued", "finished"])
def test_a_watcher_killed_after_submitting_finds_its_job(pool, sites, monkeypatch, finished):
    a, b = sites
    submit(b)  # another site's submission 1 of the same association is on the pool too
    real = CondorExecutor.submit

    def submitted_then_killed(self, *args, **kwargs):
        real(self, *args, **kwargs)
        raise KeyboardInterrupt  # killed before the cluster reached the site database

    monkeypatch.setattr(CondorExecutor, "submit", submitted_then_killed)
    ctl = controller(a)
    sub = ctl.submit(ASN, str(KIT_SHORT))
    with pytest.raises(KeyboardInterrupt):
        ctl.dispatch()
    assert ctl.get(sub.id).state == "queued" and len(site_jobs(pool, a)) == 1
    [job] = site_jobs(pool, a)
    if finished:
        pool.finish(job["ClusterId"])
    monkeypatch.setattr(CondorExecutor, "submit", real)
    restarted = controller(a)
    restarted.dispatch(raise_errors=True)
    assert restarted.get(sub.id).state == "submitted" and restarted.get(sub.id).cluster == job["ClusterId"]
    assert len(site_jobs(pool, a)) == 1 and len(site_jobs(pool, b)) == 1


def test_a_reinitialised_site_never_matches_its_predecessor(pool, sites):
    a, _ = sites
    old = submit(a)
    before = ident(a)
    for p in a.root.glob("owl.db*"):
        p.unlink()
    for timeout in {30.0, a.database.busy_timeout}:  # a new process holds no connection to the old file
        engine_for(a.database_url, timeout).dispose()
    Database(a.database_url).dispose()
    assert owl("init", str(a.root)).exit_code == 0
    register(Blackboard(a.database_url))
    assert ident(a) != before
    new = submit(a)
    assert new.id == old.id == 1 and new.cluster != old.cluster
    assert owl("dag", "hold", ASN, "--site", str(a.root)).exit_code == 0
    assert {j["ClusterId"]: j["JobStatus"] for j in pool.queue} == {old.cluster: IDLE, new.cluster: HELD}


def test_a_contradicting_match_is_an_error_not_a_skip(pool, sites):
    """This site's job with this submission id runs another association: refuse, say so, submit nothing."""
    a, _ = sites
    pool.add(dagman_job(a, association="j9cv58030"))
    pool.finish(1)
    ctl = controller(a)
    sub = ctl.submit(ASN, str(KIT_SHORT))
    with pytest.raises(ForeignJob, match=r"HTCondor job 1 of this site .* runs kit_short for j9cv58030"):
        ctl.dispatch(raise_errors=True)
    assert ctl.get(sub.id).state == "failed" and "the site database and the schedd disagree" in ctl.get(sub.id).message
    assert not (a.areas.dags / ASN).exists() and len(pool.queue) == 0
    trailer = a.trailer_path(parse_dataset(ASN)).read_text()
    assert "submission 1 failed to start: submission 1 (kit_short for j9cv58020)" in trailer


@pytest.mark.parametrize("command", ["watch", "submit"])
def test_owl_exits_non_zero_on_a_contradiction(pool, sites, command):
    a, _ = sites
    pool.add(dagman_job(a, workflow="new_science"))
    args = ["--once"] if command == "watch" else [ASN]
    result = owl(command, *args, "--executor", "condor", "--workflow", str(KIT_SHORT), "--site", str(a.root))
    assert result.exit_code == 3, result.output
    assert "runs new_science for j9cv58020" in result.output and len(pool.queue) == 1


def test_request_raises_only_the_own_idle_nodes(pool, sites):
    a, b = sites
    sub_a, sub_b = submit(a), submit(b)
    nodes_a, nodes_b = pool.start_nodes(sub_a.cluster), pool.start_nodes(sub_b.cluster)
    assert nodes_a and all(n["OwlSite"] == ident(a) for n in nodes_a)
    result = owl("request", ASN, "--site", str(a.root))
    assert result.exit_code == 0, result.output
    assert f"{len(nodes_a)} idle node job(s) of DAGMan job {sub_a.cluster} raised" in result.output
    assert {n["JobPrio"] for n in nodes_a} == {a.priorities.requested}
    assert {n["JobPrio"] for n in nodes_b} == {0}
