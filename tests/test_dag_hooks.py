"""PRE/POST hooks: what DAGMan (and the local executor) record on the OSF around each node."""

from __future__ import annotations

import subprocess

import pytest

from pipeline.core.exitcodes import DAGMAN_FATAL, ExitCode
from pipeline.core.osf import Blackboard
from pipeline.orchestration.dag import owl_executable
from pipeline.orchestration.executors import hooks
from tests.orchkit import register

ASN = "j9cv58020"
ROWS = [ASN, "j9cv58abq", "j9cv58acq"]


@pytest.fixture
def bb(site):
    board = Blackboard(site.database_url)
    register(board)
    return board


def letters(bb, column, rows=ROWS):
    return "".join(bb.get(r).letter(column) for r in rows)


def ref(site, column="RF", dataset=ASN, node="RF"):
    return hooks.NodeRef(site, column, dataset, node)


def hook(site, *args) -> subprocess.CompletedProcess:
    """Run a hook exactly as a DAG's SCRIPT line does."""
    return subprocess.run([str(owl_executable()), "osf", "hook", *args[:1], "--site", str(site.root), *args[1:]],
                          capture_output=True, text=True)


def test_pre_queues_the_association_and_its_members(site, bb):
    assert hook(site, "pre", "RF", ASN, "RF").returncode == 0
    assert letters(bb, "RF") == "www"
    assert bb.history(ASN)[-1].who == "dag:RF"


def test_pre_of_an_exposure_node_moves_only_that_member(site, bb):
    assert hooks.pre(bb, ref(site, "CA", "j9cv58acq", "CA_j9cv58acq")) == 0
    assert letters(bb, "CA") == "w_w"  # the association row aggregates its members: one is queued


def test_pre_skips_a_complete_node_and_defers_a_held_one(site, bb):
    bb.transition(ROWS, "RF", "_", "c")
    assert hook(site, "pre", "RF", ASN, "RF").returncode == hooks.PRE_SKIP_CODE
    bb.set_letter("j9cv58abq", "BC", "h")
    assert hooks.pre(bb, ref(site, "BC", ASN, "BC")) == hooks.PRE_DEFER_CODE
    assert letters(bb, "BC") == "hh_"  # nothing moved while held


def test_post_success(site, bb):
    bb.transition(ROWS, "RF", "_", "c")
    assert hook(site, "post", "RF", ASN, "RF", "0", "0", "2").returncode == 0


def test_post_marks_a_pending_retry_w(site, bb):
    bb.transition(ROWS, "RF", "_", "e", exit_code=ExitCode.TRANSIENT_IO)  # what the wrapper records
    result = hook(site, "post", "RF", ASN, "RF", str(int(ExitCode.TRANSIENT_IO)), "0", "2")
    assert result.returncode == ExitCode.TRANSIENT_IO  # DAGMan retries: not the UNLESS-EXIT value
    assert letters(bb, "RF") == "www"
    assert "retry 1 of 2 pending after exit 30" in bb.history(ASN)[-1].message


def test_post_last_retry_leaves_e(site, bb):
    bb.transition(ROWS, "RF", "_", "e", exit_code=ExitCode.TRANSIENT_IO)
    assert hooks.post(bb, ref(site), int(ExitCode.TRANSIENT_IO), 2, 2) == ExitCode.TRANSIENT_IO
    assert letters(bb, "RF") == "eee"


def test_post_maps_fatal_codes_to_the_unless_exit_value(site, bb):
    bb.transition(ROWS, "RF", "_", "e", exit_code=ExitCode.MISSING_REFERENCE)
    result = hook(site, "post", "RF", ASN, "RF", str(int(ExitCode.MISSING_REFERENCE)), "0", "2")
    assert result.returncode == DAGMAN_FATAL
    assert letters(bb, "RF") == "eee"


def test_post_marks_a_job_killed_while_p_as_x_then_w(site, bb):
    bb.transition(ROWS, "RF", "_", "p", pid=999999)  # SIGKILLed on an execute node: nothing recorded
    result = hook(site, "post", "RF", ASN, "RF", "-9", "0", "2")
    assert result.returncode == ExitCode.KILLED
    moves = [(h.old, h.new, h.message) for h in bb.history(ASN)][-2:]
    assert moves[0][:2] == ("p", "x") and "job ended by signal 9" in moves[0][2]
    assert moves[1][:2] == ("x", "w")
    assert letters(bb, "RF") == "www"


def test_post_of_a_job_that_never_started_the_stage(site, bb):
    hooks.pre(bb, ref(site))
    assert hooks.post(bb, ref(site), int(ExitCode.USAGE), 0, 2) == DAGMAN_FATAL
    assert letters(bb, "RF") == "eee"
    assert "before the stage started" in bb.history(ASN)[-1].message


def test_post_without_a_site_still_returns_the_jobs_code(tmp_path):
    result = subprocess.run([str(owl_executable()), "osf", "hook", "post", "--site", str(tmp_path / "none"),
                             "RF", ASN, "RF", "20", "0", "2"], capture_output=True, text=True)
    assert result.returncode == DAGMAN_FATAL
    assert "exit 20 not recorded" in result.stderr and "Traceback" not in result.stderr
