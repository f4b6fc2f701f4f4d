"""Memory requests learned from history: the wrapper records, DAGs request p95 + margin, retries grow."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import classad2
import pytest

from pipeline.core import usage
from pipeline.core.exitcodes import ExitCode
from pipeline.core.osf import Blackboard
from pipeline.orchestration.dag import write_dag
from pipeline.orchestration.memory import CEILING_MB, retry_memory
from pipeline.orchestration.workflow import load_workflow
from tests.conftest import REPO
from tests.orchkit import KIT_WORKFLOW, kit_board


def add_history(site, column: str, peaks: list[float], *, instrument="ACS", nexp=2, detector="WFC", code=0):
    usage.add(site.database_url, [
        usage.NodeUsage(stage=column, dataset="j9cv58020", instrument=instrument, detector=detector, nexp=nexp,
                        input_mb=330.0, peak_rss_mb=peak, wall_s=10.0, exit_code=code, finished=time.time())
        for peak in peaks])


def test_percentile_is_a_peak_that_happened():
    values = [float(v) for v in range(1, 101)]
    assert usage.percentile(values, 95) == 95.0
    assert usage.percentile([7.0], 95) == 7.0
    assert usage.percentile([1.0, 2.0, 3.0], 95) == 3.0


def test_workflow_default_until_enough_samples(site):
    add_history(site, "MD", [900.0] * (usage.MIN_SAMPLES - 1))
    add_history(site, "MD", [5000.0] * 10, code=int(ExitCode.OUT_OF_MEMORY))  # failures never count
    got = usage.memory_request(site.database_url, "MD", "ACS", 2, 4096, CEILING_MB, "WFC")
    assert got.mb == 4096 and got.samples == usage.MIN_SAMPLES - 1 and "workflow default" in got.source


def test_all_runs_oldest_first_failures_included(site):
    add_history(site, "CA", [300.0, 310.0])
    add_history(site, "MD", [900.0], code=int(ExitCode.OUT_OF_MEMORY))
    runs = usage.all_runs(site.database_url)
    assert [(r.stage, r.peak_rss_mb, r.exit_code) for r in runs] == [
        ("CA", 300.0, 0), ("CA", 310.0, 0), ("MD", 900.0, int(ExitCode.OUT_OF_MEMORY))]


def test_history_p95_plus_margin_rounded_and_capped(site):
    peaks = [1000.0 + i for i in range(19)] + [3000.0]  # 20 samples: p95 is the 19th smallest
    add_history(site, "MD", peaks)
    got = usage.memory_request(site.database_url, "MD", "ACS", 2, 4096, CEILING_MB, "WFC")
    want = -(-(1018.0 * 1.25 + usage.MARGIN_MB) // usage.ROUND_MB) * usage.ROUND_MB
    assert got.mb == want == 1408 and got.samples == 20 and "history n=20 p95=1018 MB" in got.source
    # another detector, stage or number of exposures has its own history
    assert usage.memory_request(site.database_url, "MD", "ACS", 2, 4096, CEILING_MB, "HRC").mb == 4096
    assert usage.memory_request(site.database_url, "MD", "ACS", 3, 4096, CEILING_MB, "WFC").mb == 4096
    # an unknown detector counts every detector
    assert usage.memory_request(site.database_url, "MD", "ACS", 2, 4096, CEILING_MB).mb == 1408
    capped = usage.memory_request(site.database_url, "MD", "ACS", 2, 4096, 1024, "WFC")
    assert capped.mb == 1024 and "capped at 1024 MB" in capped.source


def test_fits_keyword_reads_cards_without_astropy(tmp_path):
    from astropy.io import fits

    path = tmp_path / "x_raw.fits"
    fits.PrimaryHDU(header=fits.Header([("INSTRUME", "ACS"), ("DETECTOR", "WFC")])).writeto(path)
    assert usage.fits_keyword(path, "DETECTOR") == "WFC"
    assert usage.fits_keyword(path, "FILTER1") == ""
    assert usage.fits_keyword(tmp_path / "absent.fits", "DETECTOR") == ""


@pytest.fixture
def kit(site, tmp_path, monkeypatch):
    return kit_board(site, tmp_path, monkeypatch)


def vars_of(dag_text: str, node: str) -> dict[str, str]:
    line = next(ln for ln in dag_text.splitlines() if ln.startswith(f"VARS {node} "))
    return dict(re.findall(r'(\w+)="([^"]*)"', line))


def test_dag_requests_from_history_and_says_where_from(site, kit):
    add_history(site, "MD", [700.0] * 6, instrument="ACS", nexp=2, detector="WFC")
    add_history(site, "CA", [300.0] * 6, instrument="ACS", nexp=1, detector="WFC")
    files = write_dag(site, load_workflow(KIT_WORKFLOW), "j9cv58020", kit)
    text = files.dag.read_text()
    md = files.memory["MD"]
    assert md.mb == 1024 and md.source.startswith("history n=6 p95=700 MB")  # 700*1.25+128 -> 1003 -> 1024
    assert vars_of(text, "MD") == {"dataset": "j9cv58020", "node": "MD", "owl_memory": "1024",
                                   "owl_retry": "$(RETRY)"}
    assert files.memory["CA_j9cv58abq"].mb == 512 and vars_of(text, "CA_j9cv58abq")["owl_memory"] == "512"
    assert files.memory["RF"].mb == 512 and "workflow default" in files.memory["RF"].source
    assert re.search(r"^RETRY MD 2 UNLESS-EXIT 100$", text, re.M)  # DAGMan retries run the grown request


def test_submit_expression_grows_per_retry_up_to_the_ceiling(site, kit):
    """What the schedd evaluates: the submit line with DAGMan's VARS substituted, as a ClassAd."""
    files = write_dag(site, load_workflow(KIT_WORKFLOW), "j9cv58020", kit)
    sub = files.submit_file("MD").read_text()
    expr = next(ln.split("=", 1)[1].strip() for ln in sub.splitlines() if ln.startswith("request_memory"))
    first = int(vars_of(files.dag.read_text(), "MD")["owl_memory"])
    for retry in range(6):
        text = expr.replace("$(owl_memory)", str(first)).replace("$(owl_retry)", str(retry))
        assert "$(" not in text
        value = classad2.ExprTree(text).eval()
        assert value == retry_memory(first, retry) == min(first * 2**retry, CEILING_MB)
    assert retry_memory(first, 10) == CEILING_MB


def test_owl_dag_write_prints_each_request(site, kit):
    add_history(site, "MD", [700.0] * 6)
    owl = str(Path(sys.executable).parent / "owl")
    r = subprocess.run([owl, "dag", "write", "j9cv58020", "--site", str(site.root),
                        "--workflow", str(KIT_WORKFLOW)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    md = next(ln for ln in r.stdout.splitlines() if ln.strip().startswith("MD "))
    assert "request_memory   1024 MB" in md and "history n=6 p95=700 MB" in md
    assert "workflow default" in next(ln for ln in r.stdout.splitlines() if ln.strip().startswith("RF "))


def test_wrapper_records_each_node(site):
    bb = Blackboard(site.database_url)
    bb.create("j9cv58020")
    for m in ("j9cv58abq", "j9cv58acq"):
        bb.create(m, parent="j9cv58020")
    work = site.areas.work / "j9cv58020"
    work.mkdir(parents=True)
    from astropy.io import fits

    fits.PrimaryHDU(header=fits.Header([("DETECTOR", "WFC")])).writeto(work / "j9cv58abq_raw.fits")
    fits.PrimaryHDU(header=fits.Header([("DETECTOR", "HRC")])).writeto(work / "j9cv58acq_raw.fits")
    ok = subprocess.run([sys.executable, "-m", "tests.stagekit", "j9cv58020", "--site", str(site.root)],
                        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    oom = subprocess.run([sys.executable, "-m", "tests.stagekit", "j9cv58acq", "--mode", "oom", "--force", "--site",
                          str(site.root)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert oom.returncode == ExitCode.OUT_OF_MEMORY
    rows = [usage.NodeUsage(*r) for r in sqlite3.connect(site.root / "owl.db").execute(
        "SELECT stage, dataset, instrument, detector, nexp, input_mb, peak_rss_mb, wall_s, exit_code, finished "
        "FROM node_usage ORDER BY id")]
    assert [(r.stage, r.dataset, r.instrument, r.detector, r.nexp, r.exit_code) for r in rows] == [
        ("RF", "j9cv58020", "ACS", "WFC", 2, 0), ("RF", "j9cv58acq", "ACS", "HRC", 1, int(ExitCode.OUT_OF_MEMORY))]
    assert all(r.peak_rss_mb > 10 and r.wall_s > 0 for r in rows), rows
    assert rows[0].input_mb >= 0.0
