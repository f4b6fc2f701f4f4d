"""Pool nodes are hostile: PATH entries the job's user cannot read, odd entries, no HOME, a TMPDIR that
does not exist. None of them may crash a stage; unreadable PATH entries are said in the trailer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.science.calib.api import choose_engine
from pipeline.science.calib.delegate import which


@pytest.fixture
def locked_dir(tmp_path, monkeypatch) -> Path:
    """A PATH directory this user cannot search. Root ignores permissions, so as root the operating
    system's answer (PermissionError from stat) is stood in for by a patched ``Path.is_file``."""
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() == 0:
        real_is_file = Path.is_file

        def is_file(self: Path) -> bool:
            if self.parent == locked:
                raise PermissionError(13, "Permission denied", str(self))
            return real_is_file(self)

        monkeypatch.setattr(Path, "is_file", is_file)
    else:
        locked.chmod(0)
    yield locked
    locked.chmod(0o755)


def test_which_skips_unreadable_odd_and_missing_entries(tmp_path, locked_dir):
    good = tmp_path / "good"
    good.mkdir()
    exe = good / "calwf3.e"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    unreadable: list[str] = []
    path = os.pathsep.join([str(locked_dir), "", "relative/dir", "/does/not/exist", str(good)])
    assert which("calwf3.e", {"PATH": path}, unreadable) == exe
    assert unreadable == [str(locked_dir)]


def test_auto_engine_falls_back_and_says_why(locked_dir):
    said: list[tuple[str, str]] = []
    engine = choose_engine("auto", "WFC3", {"PATH": f"{locked_dir}{os.pathsep}/does/not/exist"},
                           lambda severity, text: said.append((severity, text)))
    assert engine == "builtin"
    assert said == [("warn", f"PATH entry {locked_dir} cannot be read by this user: skipped while looking for hstcal")]


def test_owl_init_and_config_without_home_or_tmpdir(tmp_path):
    """No HOME, a TMPDIR that does not exist, and odd PATH entries: the command still works."""
    env = {k: v for k, v in os.environ.items() if k not in ("HOME", "TMPDIR")}
    env.update({"TMPDIR": str(tmp_path / "no-such-tmp"), "XDG_CACHE_HOME": str(tmp_path / "no-such-cache"),
                "PATH": os.pathsep.join(["", "relative", "/does/not/exist", str(Path(sys.executable).parent),
                                         "/usr/bin", "/bin"])})
    owl = str(Path(sys.executable).parent / "owl")
    run = subprocess.run([owl, "init", str(tmp_path / "site")], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    run = subprocess.run([owl, "config", "show", "--site", str(tmp_path / "site"), "--json"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_settle_moves_an_unusable_home_and_drops_a_bad_tmpdir(tmp_path, monkeypatch):
    from pipeline.core import hostenv

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    env = {"HOME": str(tmp_path / "gone"), "TMPDIR": str(tmp_path / "no-such-tmp")}
    notes = hostenv.settle(env)
    assert "TMPDIR" not in env and Path(env["HOME"]).is_dir() and os.access(env["HOME"], os.W_OK)
    assert notes[0] == f"TMPDIR {tmp_path / 'no-such-tmp'} is not a writable directory: ignored"
    assert notes[1].startswith(f"HOME {tmp_path / 'gone'} is not a writable directory: per-user files go to ")
    assert hostenv.settle({"HOME": str(tmp_path)}) == []


def test_a_stage_imports_telemetry_without_home(tmp_path):
    """ccsdspy writes its config directory under HOME at import: a job without HOME must still start."""
    env = {k: v for k, v in os.environ.items() if k != "HOME"}
    env["TMPDIR"] = str(tmp_path)
    # the stage imports the decoder (and ccsdspy) in its run, after the OSF claim: import both here
    code = "import stages.twofits, pipeline.science.telemetry.decode, os; print(os.environ['HOME'])"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(tmp_path / f"owlpipe-home-{os.getuid()}")


@pytest.mark.parametrize(("limit", "expected"), [("1073741824\n", 1024), ("max\n", None), (None, None)])
def test_memory_mb_is_the_container_limit_when_lower(tmp_path, monkeypatch, limit, expected):
    """The local executor shares this much memory among its jobs: a cgroup limit below the machine's wins."""
    from pipeline.core import hostenv

    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20
    path = tmp_path / "memory.max"
    if limit is not None:
        path.write_text(limit)
    monkeypatch.setattr(hostenv, "CGROUP_MEMORY_LIMITS", (path, tmp_path / "absent"))
    assert hostenv.memory_mb() == (expected if expected is not None else physical)


@pytest.mark.parametrize(("text", "expected"), [("1\n", 1), ("2", 2), ("7", 4), ("0", 1), ("", 4), ("x", 4), (None, 4)])
def test_cpus_now_reads_the_executors_file_and_never_exceeds_the_request(tmp_path, text, expected):
    """What a node started beside other jobs may keep busy now; no file (a pool slot) or junk: all of it."""
    from pipeline.core import hostenv

    path = tmp_path / "MD.cpus"
    if text is not None:
        path.write_text(text)
    assert hostenv.cpus_now(4, {hostenv.CPUS_NOW_VARIABLE: str(path)}) == expected
    assert hostenv.cpus_now(4, {}) == 4
