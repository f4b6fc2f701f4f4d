"""The stage wrapper: OSF moves, exit codes, trailer lines, quarantine, crashes never left at p."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline.core.exitcodes import DAGMAN_FATAL, ExitCode, dagman_code, is_retryable
from pipeline.core.osf import Blackboard
from tests.conftest import REPO


def run_probe(site, *args, wait=True):
    cmd = [sys.executable, "-m", "tests.stagekit", *args, "--site", str(site.root)]
    if not wait:
        return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)


def board(site):
    return Blackboard(site.database_url)


def test_success_moves_column_and_writes_trailer(site):
    bb = board(site)
    bb.create("j9cv58020")
    bb.create("j9cv58abq", parent="j9cv58020")
    bb.create("j9cv58acq", parent="j9cv58020")
    r = run_probe(site, "j9cv58020")
    assert r.returncode == 0, r.stderr
    for name in ("j9cv58020", "j9cv58abq", "j9cv58acq"):
        assert bb.get(name).letter("RF") == "c"
    assert (site.areas.work / "j9cv58020" / "done.txt").read_text() == "j9cv58abq j9cv58acq"
    lines = (site.areas.logs / "j9cv58020.trl").read_text().splitlines()
    assert any("-I-INFO-owl-probe started" in line for line in lines)
    assert any("probe did its job" in line for line in lines)
    assert lines[-1].split("-", 3)[3].startswith("owl-probe completed j9cv58020")


def test_rerun_of_complete_column_needs_force(site):
    assert run_probe(site, "j9cv58abq").returncode == 0
    r = run_probe(site, "j9cv58abq")
    assert r.returncode == ExitCode.CONFLICT and "is 'c'" in r.stderr and "--force" in r.stderr
    assert run_probe(site, "j9cv58abq", "--force").returncode == 0


def test_bad_input_is_quarantined_never_deleted(site):
    r = run_probe(site, "j9cv58abq", "--mode", "bad")
    assert r.returncode == ExitCode.BAD_INPUT
    assert r.stderr.count("\n") == 1 and "input.pod: packet 3: CRC mismatch" in r.stderr
    moved = site.areas.quarantine / "input.pod"
    assert moved.read_bytes() == b"\x00garbage"
    assert "CRC mismatch" in (site.areas.quarantine / "input.pod.reason").read_text()
    entry = board(site).get("j9cv58abq")
    assert entry.letter("RF") == "e"
    last = board(site).history("j9cv58abq")[-1]
    assert (last.old, last.new, last.exit_code) == ("p", "e", ExitCode.BAD_INPUT)
    assert "-E-ERROR-owl-probe: input.pod: packet 3" in (site.areas.logs / "j9cv58abq.trl").read_text()


@pytest.mark.parametrize(
    ("mode", "code"),
    [("missing", ExitCode.MISSING_REFERENCE), ("crash", ExitCode.INTERNAL),
     ("oom", ExitCode.OUT_OF_MEMORY), ("eio", ExitCode.TRANSIENT_IO)],
)
def test_failures_map_to_exit_codes(site, mode, code):
    r = run_probe(site, "j9cv58abq", "--mode", mode)
    assert r.returncode == code, r.stderr
    assert board(site).get("j9cv58abq").letter("RF") == "e"
    trl = (site.areas.logs / "j9cv58abq.trl").read_text()
    if mode == "crash":
        assert "Traceback (most recent call last)" in trl and "RuntimeError: boom" in trl


def test_sigterm_leaves_x_not_p(site):
    proc = run_probe(site, "j9cv58abq", "--mode", "sleep", wait=False)
    assert proc.stdout.readline().strip() == "sleeping"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == ExitCode.KILLED
    assert board(site).get("j9cv58abq").letter("RF") == "x"
    # A retry starts from x.
    assert run_probe(site, "j9cv58abq").returncode == 0


def test_sigterm_the_moment_the_column_turns_p_leaves_x(site):
    """SIGTERM as soon as the column reads p: whether it lands in the wrapper (between its OSF move and the
    stage's work, where signals are held until the move is committed) or in the stage, the column ends x.
    Hitting the wrapper's window is a matter of timing; it made a watcher test flaky under load."""
    bb = board(site)
    bb.create("j9cv58abq")
    proc = run_probe(site, "j9cv58abq", "--mode", "sleep", wait=False)
    deadline = time.monotonic() + 60
    while bb.get("j9cv58abq").letter("RF") != "p":
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.002)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == ExitCode.KILLED
    assert bb.get("j9cv58abq").letter("RF") == "x"


def test_sigkill_is_detected_as_x(site):
    proc = run_probe(site, "j9cv58abq", "--mode", "sleep", wait=False)
    assert proc.stdout.readline().strip() == "sleeping"
    assert board(site).get("j9cv58abq").letter("RF") == "p"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(0.05)
    assert board(site).reap() == [("j9cv58abq", "RF")]
    assert board(site).get("j9cv58abq").letter("RF") == "x"


def test_usage_errors(site):
    r = run_probe(site, "../etc/passwd")
    assert r.returncode == ExitCode.USAGE and "invalid dataset name" in r.stderr
    r = subprocess.run([sys.executable, "-m", "tests.stagekit", "j9cv58abq", "--site", str(site.root / "nope")],
                       cwd=REPO, capture_output=True, text=True)
    assert r.returncode == ExitCode.CONFIG and "owl init" in r.stderr
    r = subprocess.run([sys.executable, "-m", "tests.stagekit", "--help"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0 and "Exit codes:" in r.stdout


def test_in_process_run_gives_the_signal_state_back(site):
    """Subprocesses inherit the signal mask: an in-process stage run must not leave SIGINT blocked."""
    from pipeline.core.stage import run_stage
    from tests.stagekit import ProbeStage

    handler = signal.getsignal(signal.SIGTERM)
    before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    assert run_stage(ProbeStage, ["j9cv58abq", "--site", str(site.root)]) == 0
    assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == before
    assert signal.getsignal(signal.SIGTERM) == handler


def test_exit_code_table():
    assert not is_retryable(ExitCode.BAD_INPUT) and is_retryable(ExitCode.TRANSIENT_IO)
    assert is_retryable(-9) and not is_retryable(0)
    assert dagman_code(ExitCode.MISSING_REFERENCE) == DAGMAN_FATAL
    assert dagman_code(ExitCode.LOCK_TIMEOUT) == ExitCode.LOCK_TIMEOUT
    assert dagman_code(0) == 0


def test_stage_modules_load_with_the_collector_paused_then_frozen(site):
    """The wrapper imports the stage's modules before run (after the OSF claim); a console-script
    process runs the stage with the collector back on and the loaded modules frozen out of it."""
    r = run_probe(site, "j9cv58abq", "--mode", "startup")
    assert r.returncode == 0, r.stderr
    assert (site.areas.work / "j9cv58abq" / "done.txt").read_text() == "True True True"


def test_a_library_process_keeps_its_collector():
    """Outside a console script (tests, programs using owlpipe) loading changes nothing."""
    import gc

    from pipeline.core import startup

    frozen = gc.get_freeze_count()
    with startup.loading():
        assert gc.isenabled()
    assert gc.isenabled() and gc.get_freeze_count() == frozen


def test_the_collector_is_frozen_once_per_process():
    """After a console script's modules are loaded, a later loading() (a long-running command) leaves
    the collector and its permanent generation alone."""
    code = ("import gc\nfrom pipeline.core import startup\nstartup.begin()\nwith startup.loading():\n    import json\n"
            "n = gc.get_freeze_count()\nwith startup.loading():\n    import colorsys\n    assert gc.isenabled()\n"
            "assert gc.isenabled() and gc.get_freeze_count() == n > 0\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=60)


def _numpy_hugepage_after_begin(env: dict[str, str]) -> str:
    code = ("from pipeline.core import startup\nstartup.begin()\n"
            "try:\n    from numpy._core.multiarray import _get_madvise_hugepage\n"
            "except ImportError:  # numpy 1.26\n    from numpy.core.multiarray import _get_madvise_hugepage\n"
            "print(_get_madvise_hugepage())\n")
    done = subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=60, env=env,
                          capture_output=True, text=True)
    return done.stdout.strip()


def test_a_console_script_stops_numpy_asking_for_huge_pages_unless_the_operator_wants_it():
    """begin() withdraws numpy's madvise for huge pages (their compaction cost seconds a node on the
    VMs we measure on); an operator's own NUMPY_MADVISE_HUGEPAGE wins."""
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    assert _numpy_hugepage_after_begin(env) == "False"
    assert _numpy_hugepage_after_begin({**env, "NUMPY_MADVISE_HUGEPAGE": "1"}) == "True"
