"""Campaign mechanics on stand-in stages: throttle, order, requests, exactly-once, resume, failure reasons."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pipeline.cli import main as owl
from pipeline.core.errors import ConfigError
from pipeline.core.osf import Blackboard
from pipeline.orchestration.campaign import CampaignRun, CampaignStore, check_context, request
from pipeline.orchestration.controller import Controller
from pipeline.orchestration.reprocess import Affected, Change, Selection
from tests import campaign_kit
from tests.orchkit import kit_site, register
from tests.refs_support import real_cache

NEW = "hst_0264.pmap"
#: Four associations of two members each; one member per association was "affected".
UNITS = {f"i9cv{n}020": (f"i9cv{n}abq", f"i9cv{n}acq") for n in (51, 52, 53, 54)}


@pytest.fixture
def kit(site, realdata, tmp_path, monkeypatch):
    """A site with the real CRDS cache (operational context NEW), kit stages and the OSF rows."""
    monkeypatch.delenv("CRDS_PATH", raising=False)
    monkeypatch.delenv("CRDS_CONTEXT", raising=False)
    real_cache(site.root, realdata, NEW)
    plan = kit_site(site, tmp_path, monkeypatch)
    workflow = campaign_kit.install(tmp_path / "bin", tmp_path)
    bb = Blackboard(site.database_url)
    for unit, members in UNITS.items():
        register(bb, unit, members)
    return site, workflow, plan


def _campaign(site, workflow, units: int = len(UNITS)):
    sel = Selection(NEW, {"hst_0263.pmap": {"WFC3": ["bpixtab"]}})
    sel.affected = [Affected(members[0], unit, "WFC3", 0, "hst_0263.pmap",
                             (Change("bpixtab", "old_bpx.fits", "new_bpx.fits"),))
                    for unit, members in list(UNITS.items())[:units]]
    return CampaignStore(site).create("kit", sel, old_context=None, instruments=[], since=None,
                                      workflow=str(workflow))


def test_throttled_in_order_requested_first_and_verified(kit):
    site, workflow, plan = kit
    plan.write_text(json.dumps({"CA": {"i9cv53acq": ["bad"]}}))  # one DAG fails for good
    campaign = _campaign(site, workflow)
    last = list(UNITS)[-1]
    assert any("moved to the front" in line for line in request(site, UNITS[last][0]))  # by member name
    seen: list[list[str]] = []
    report = CampaignRun(site, campaign, max_in_flight=2, workers=2).run(
        progress=lambda r: seen.append(list(r.in_flight)))
    assert max(len(f) for f in seen) == 2 and seen[0] == [last, next(iter(UNITS))]
    subs = Controller(site).submissions()
    assert [s.dataset for s in subs] == [last, *list(UNITS)[:-1]]  # requested first, then selection order
    assert [s.priority for s in subs] == [site.priorities.requested] + [site.priorities.reprocess] * 3
    assert all(s.campaign == "kit" and s.key == f"reprocess:kit:{s.dataset}" for s in subs)
    assert report.counts == {"pending": 0, "submitted": 0, "done": 3, "failed": 1}
    assert report.state == "finished"
    [(failed, why)] = report.failed
    assert failed == "i9cv53020" and "CA_i9cv53acq exit 20" in why
    bb = Blackboard(site.database_url)
    assert bb.get("i9cv51020").status == "cnncnccncnnn"  # DR from receipt; RF CA MD IS by the campaign
    # the operator fixes the cause and retries the failed DAG by hand: the campaign notices on its next run
    plan.write_text("{}")
    res = CliRunner().invoke(owl, ["retry", failed, "--site", str(site.root)])
    assert res.exit_code == 0, res.output
    again = CampaignRun(site, campaign).run()
    assert again.counts["done"] == 4 and again.failed == []


def test_a_finished_dag_that_archived_nothing_new_is_a_failure(kit):
    site, workflow, _plan = kit
    workflow.write_text(campaign_kit.WORKFLOW.split("[stages.INGEST_SCI]")[0])  # nothing archives
    report = CampaignRun(site, _campaign(site, workflow, units=2), max_in_flight=2).run()
    assert report.counts["failed"] == 2
    assert all("no new raw version in the archive" in why for _d, why in report.failed)


def test_rerun_continues_and_never_submits_twice(kit):
    site, workflow, _plan = kit
    campaign = _campaign(site, workflow)
    ctl = Controller(site)
    first = next(iter(UNITS))
    # a crash between submitting a DAG and recording it: the campaign row still says pending
    early = ctl.submit(first, str(workflow), key=f"reprocess:kit:{first}", fresh=True, campaign="kit")
    state = {"polls": 0}

    def interrupt() -> bool:
        state["polls"] += 1
        return state["polls"] > 2

    report = CampaignRun(site, campaign, max_in_flight=2).run(stop=interrupt)
    assert report.counts["done"] < 4 and report.state == "running"
    res = CliRunner().invoke(owl, ["reprocess", "--new-context", NEW, "--name", "kit", "--instrument", "acs",
                                   "--site", str(site.root)])
    assert res.exit_code == 2 and "exists for hst_0264.pmap" in res.output  # a rerun must ask for the same
    res = CliRunner().invoke(owl, ["reprocess", "--new-context", NEW, "--name", "kit", "--max-in-flight", "2",
                                   "--site", str(site.root)])
    assert res.exit_code == 0, res.output
    assert "continuing campaign kit" in res.output and "4 done, 0 failed" in res.output
    subs = Controller(site).submissions()
    assert sorted(s.dataset for s in subs) == sorted(UNITS) and subs[0].id == early.id
    res = CliRunner().invoke(owl, ["reprocess", "--new-context", NEW, "--name", "kit", "--json",
                                   "--site", str(site.root)])
    assert res.exit_code == 0 and json.loads(res.output)["counts"]["done"] == 4
    assert len(Controller(site).submissions()) == 4


def test_request_raises_a_queued_dag_or_the_osf_row(kit):
    site, workflow, _plan = kit
    ctl = Controller(site)
    unit = list(UNITS)[1]
    sub = ctl.submit(unit, str(workflow))
    lines = request(site, unit)
    assert lines == [f"{unit}: submission {sub.id} priority {sub.priority} -> {site.priorities.requested}; "
                     "its DAG is written with it"]
    assert ctl.get(sub.id).priority == site.priorities.requested
    assert {Blackboard(site.database_url).get(d).priority for d in (unit, *UNITS[unit])} == {site.priorities.requested}
    other = list(UNITS)[2]
    res = CliRunner().invoke(owl, ["request", UNITS[other][1], "--json", "--site", str(site.root)])
    assert res.exit_code == 0, res.output
    assert "OSF priority raised" in json.loads(res.output)["actions"][0]
    assert Blackboard(site.database_url).get(other).priority == site.priorities.requested
    res = CliRunner().invoke(owl, ["request", "i9cv99abq", "--site", str(site.root)])
    assert res.exit_code == 2 and "is in no campaign" in res.output


def test_campaign_refuses_a_context_rf_would_not_use(kit):
    site, _workflow, _plan = kit
    with pytest.raises(ConfigError, match=r"RF would calibrate with hst_0264\.pmap .* not the campaign.s hst_0263"):
        check_context(site, "hst_0263.pmap")
