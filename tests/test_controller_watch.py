"""The controller: inbox -> dan_receipt -> one DAG per complete association, exactly once."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from pipeline.core.osf import Blackboard
from pipeline.orchestration.controller import Controller, ControllerError, watcher_lock
from pipeline.orchestration.dag import owl_executable
from tests.front_data import write_test_downlink
from tests.orchkit import KIT_SHORT, kit_site

ASN, SINGLE = "ib1f01010", "ib1f02b1q"
KIT_COLUMNS = ("IN", "CA", "CL")


@pytest.fixture
def plan(site, tmp_path, monkeypatch):
    return kit_site(site, tmp_path, monkeypatch)


def controller(site) -> Controller:
    return Controller(site, executor="local", workflow=str(KIT_SHORT))


def all_complete(bb: Blackboard) -> bool:
    return all(e.letter(c) == "c" for e in bb.query() for c in ("DR", *KIT_COLUMNS))


def auto_submissions(ctl: Controller) -> dict[str, str]:
    return {s.dataset: s.state for s in ctl.submissions() if s.key.startswith("auto:")}


def test_watch_once_runs_each_received_association(site, plan):
    write_test_downlink(site.areas.inbox)
    ctl = controller(site)
    ctl.watch(once=True)
    assert auto_submissions(ctl) == {ASN: "done", SINGLE: "done"}
    assert all_complete(ctl.bb)
    assert not list(site.areas.inbox.glob("*.dan.json"))
    assert ctl.bb.members(ASN) == ["ib1f01a1q", "ib1f01a2q"]
    assert {e.workflow for e in ctl.bb.query()} == {"kit_short"}
    assert all(e.letter("BC") == "n" for e in ctl.bb.query())  # not in the workflow
    check_status_command()


def check_status_command() -> None:
    """``owl status`` on the finished site: the grid, its filters, paging and JSON."""
    from click.testing import CliRunner

    from pipeline.cli import main

    runner = CliRunner()
    data = json.loads(runner.invoke(main, ["status", "--json", "-c", "CA", "-s", "c"]).output)
    assert data["total"] == 4 and data["counts"]["CA"] == {"c": 4}
    assert [r["dataset"] for r in data["rows"]] == [ASN, "ib1f01a1q", "ib1f01a2q", SINGLE]  # members follow
    page = json.loads(runner.invoke(main, ["status", "--json", "--top", "--limit", "1", "--page", "2"]).output)
    assert [r["dataset"] for r in page["rows"]] == [SINGLE] and page["total"] == 2
    text = runner.invoke(main, ["status", "--association", ASN]).output
    assert "ib1f01a2q" in text and SINGLE not in text and "per-stage counts" in text
    bad = runner.invoke(main, ["status", "-c", "CA"])
    assert bad.exit_code == 2 and "both -c COLUMN and -s LETTERS" in bad.output


def test_a_dan_arriving_twice_submits_nothing_twice(site, plan):
    write_test_downlink(site.areas.inbox)
    controller(site).watch(once=True)
    write_test_downlink(site.areas.inbox)  # the same downlink delivered again
    ctl = controller(site)
    receipts = ctl.poll()
    assert len(receipts) == 1 and "already received" in receipts[0].summary
    ctl.local.run()
    assert len(ctl.submissions()) == 2
    assert auto_submissions(ctl) == {ASN: "done", SINGLE: "done"}
    assert list(site.areas.quarantine.glob("*.dan.json"))  # the duplicate notice is kept, not deleted


def test_watcher_restarted_after_receipt_submits_once(site, plan):
    dan = write_test_downlink(site.areas.inbox)
    first = controller(site)
    assert first.receive(dan).exit_code == 0  # the watcher dies here, before submitting
    assert first.ready_datasets() == [ASN, SINGLE]
    sub = first.submit(ASN, str(KIT_SHORT), key=f"auto:{ASN}")  # ... or here, before running it
    assert sub.state == "queued"
    assert first.submit(ASN, str(KIT_SHORT), key=f"auto:{ASN}") is None  # the key admits one
    second = controller(site)
    second.watch(once=True)
    assert auto_submissions(second) == {ASN: "done", SINGLE: "done"}
    assert len(second.submissions()) == 2
    assert all_complete(second.bb)


def _watch_cmd(site):
    return [str(owl_executable()), "watch", "--once", "--site", str(site.root), "--workflow", str(KIT_SHORT)]


def test_watcher_killed_mid_dag_resumes_without_resubmitting(site, plan):
    plan.write_text(json.dumps({"CA": {"ib1f01a2q": ["sleep:60", "ok"]}}))
    write_test_downlink(site.areas.inbox)
    bb = Blackboard(site.database_url)
    proc = subprocess.Popen(_watch_cmd(site), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while not (bb.find("ib1f01a2q") and bb.get("ib1f01a2q").letter("CA") == "p"):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 30
    while bb.get("ib1f01a2q").letter("CA") == "p":  # the orphaned stage records x as it dies
        assert time.monotonic() < deadline
        time.sleep(0.1)
    again = subprocess.run(_watch_cmd(site), capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stdout + again.stderr
    ctl = controller(site)
    assert auto_submissions(ctl) == {ASN: "done", SINGLE: "done"}
    assert len(ctl.submissions()) == 2
    assert all_complete(bb)


def test_one_watcher_per_site(site, plan):
    with watcher_lock(site):
        result = subprocess.run(_watch_cmd(site), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("owl: another 'owl watch' is running on this site")


def test_submit_refuses_members_and_duplicates(site, plan):
    write_test_downlink(site.areas.inbox)
    ctl = controller(site)
    ctl.receive(next(site.areas.inbox.glob("*.dan.json")))
    with pytest.raises(ControllerError, match="member of association ib1f01010"):
        ctl.submit("ib1f01a1q", str(KIT_SHORT))
    ctl.submit(ASN, str(KIT_SHORT))
    with pytest.raises(ControllerError, match="already has submission 1"):
        ctl.submit(ASN, "new_science")


def test_retry_from_a_stage_reruns_only_what_follows(site, plan):
    from click.testing import CliRunner

    from pipeline.cli import main

    write_test_downlink(site.areas.inbox)
    controller(site).watch(once=True)
    result = CliRunner().invoke(main, ["retry", ASN, "--from", "CA"])
    assert result.exit_code == 0, result.output
    assert "reset 6 column(s)" in result.output  # CA and CL on the association and its two members
    bb = Blackboard(site.database_url)
    assert all_complete(bb)
    runs = {c: sum(1 for h in bb.history("ib1f01a1q") if h.column == c and h.new == "p") for c in ("IN", "CA", "CL")}
    assert runs == {"IN": 1, "CA": 2, "CL": 2}


def test_condor_without_a_schedd_says_so_in_one_line(site, plan, monkeypatch):
    monkeypatch.setenv("CONDOR_CONFIG", "/dev/null")
    dan = write_test_downlink(site.areas.inbox)
    controller(site).receive(dan)
    result = subprocess.run([str(owl_executable()), "submit", ASN, "--executor", "condor", "--site", str(site.root),
                             "--workflow", str(KIT_SHORT)], capture_output=True, text=True, timeout=60)
    lines = [ln for ln in result.stdout.splitlines() + result.stderr.splitlines() if "schedd" in ln]
    assert result.returncode != 0 and len(lines) == 1
    assert "no HTCondor schedd reachable" in lines[0] and "Traceback" not in result.stderr
    hold = subprocess.run([str(owl_executable()), "dag", "hold", ASN, "--site", str(site.root)],
                          capture_output=True, text=True, timeout=60)
    assert hold.returncode == 3 and hold.stderr.strip().startswith("owl: no HTCondor schedd reachable")
