"""CA as an operator pays for it: ``owl calibrate`` as a whole process against calwf3.e / calacs.e.

One full-frame WFC3/UVIS exposure and one full-frame ACS/WFC exposure (JWROTYPE = DS_INT at gain 2:
bias shift, cross-talk and destripe) from the simulator, with their reference files (built once by
a child process into ``.bench/calib-data`` and ``.bench/calib-data-acs``). Each is calibrated by
``owl calibrate --engine builtin`` (imports, reading, every step, the ``_flt`` written) and, when
``calwf3.e`` / ``calacs.e`` are on PATH, by the real hstcal program on a copy of the same raw with
the same reference files (``iref``/``jref``). Runs alternate between the two, one warm-up each, then
the median of ``REPEATS``; every run is timed by a small launcher process that waits for it with
``wait4``, so its wall time, CPU time and peak RSS are the program's own.

Goal (issue 15): ``owl calibrate`` <= 0.6 x the hstcal program's wall time on the same file and
machine, for both detectors. Without hstcal on PATH the owl figures are reported alone.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.bench_calib import prepare_full_frame
from bench.common import Result

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 3
#: detector -> (data directory, instrument for the simulator, hstcal program, reference variable)
CASES = {
    "WFC3/UVIS": (ROOT / ".bench" / "calib-data", "wfc3", "calwf3.e", "iref"),
    "ACS/WFC": (ROOT / ".bench" / "calib-data-acs", "acs", "calacs.e", "jref"),
}
#: Runs a command, waits for it with wait4 and prints its wall time, CPU time and peak RSS (JSON).
#: A fresh small process forks it, so the peak RSS is the command's own (Linux carries a parent's
#: peak across fork and exec).
LAUNCHER = """
import json, os, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = proc.stderr.read()
_, status, ru = os.wait4(proc.pid, 0)
wall = time.perf_counter() - t0
print(json.dumps({"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss_mb": ru.ru_maxrss / 1024,
                  "status": os.waitstatus_to_exitcode(status), "stderr": err.decode(errors="replace")[-2000:]}))
"""


def _owl_command() -> list[str]:
    """The ``owl`` console script beside this interpreter (what a node runs), else the same entry point."""
    script = Path(sys.executable).with_name("owl")
    return [str(script)] if script.is_file() else [sys.executable, "-c", "from pipeline.cli import main; main()"]


def _timed(argv: list[str], *, cwd: Path, env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, "-c", LAUNCHER, *argv], cwd=cwd, env=env, check=True,
                          capture_output=True, text=True)
    figures = json.loads(done.stdout)
    if figures["status"] != 0:
        raise RuntimeError(f"{argv[0]} exited {figures['status']}: {figures['stderr']}")
    return figures


def _owl_run(raw: Path, refs: Path, variable: str, work: Path) -> dict:
    out = Path(tempfile.mkdtemp(prefix="owl-", dir=work))
    env = {**os.environ, variable: f"{refs}/", "CONDOR_CONFIG": os.environ.get("CONDOR_CONFIG", "/dev/null")}
    try:
        return _timed([*_owl_command(), "calibrate", str(raw), "--engine", "builtin", "--outdir", str(out), "-q"],
                      cwd=work, env=env)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _hstcal_run(program: str, raw: Path, refs: Path, variable: str, work: Path) -> dict:
    """The hstcal program in a directory of its own, on a copy of the raw (it writes beside its input)."""
    run_dir = Path(tempfile.mkdtemp(prefix="hstcal-", dir=work))
    try:
        shutil.copy2(raw, run_dir / raw.name)
        env = {**os.environ, variable: f"{refs}/", "imclobber": "yes"}
        return _timed([program, raw.name], cwd=run_dir, env=env)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _case(detector: str) -> list[Result]:
    root, instrument, program_name, variable = CASES[detector]
    raw, crds = prepare_full_frame(root, instrument)
    refs = crds / "references" / "hst"
    program = shutil.which(program_name)
    owl: list[dict] = []
    hstcal: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-ca-") as tmp:
        work = Path(tmp)
        for n in range(REPEATS + 1):   # the first round warms the page cache and is not counted
            o = _owl_run(raw, refs, variable, work)
            h = _hstcal_run(program, raw, refs, variable, work) if program else None
            if n:
                owl.append(o)
                if h is not None:
                    hstcal.append(h)
    load = round(os.getloadavg()[0], 2)
    owl_wall = _median(owl, "wall")
    label = f"{detector} full frame ({raw.name})"
    results = [
        Result(f"owl calibrate, {label}, whole process", owl_wall, "s",
               details={"walls": [round(r["wall"], 3) for r in owl], "cpu_s": round(_median(owl, "cpu"), 3),
                        "load_average_1min": load}),
        Result(f"owl calibrate, {detector}: peak RSS", max(r["rss_mb"] for r in owl), "MB", goal=1500.0),
    ]
    if not hstcal:
        print(f"   {program_name} is not on PATH: no comparison with hstcal for {detector}")
        return results
    ref_wall = _median(hstcal, "wall")
    results += [
        Result(f"{program_name}, same file, whole process", ref_wall, "s",
               details={"walls": [round(r["wall"], 3) for r in hstcal], "cpu_s": round(_median(hstcal, "cpu"), 3),
                        "peak_rss_mb": round(max(r["rss_mb"] for r in hstcal), 1), "program": program}),
        Result(f"owl calibrate / {program_name} wall time, {detector}", owl_wall / ref_wall, "x", goal=0.6,
               details={"cpu_ratio": round(_median(owl, "cpu") / _median(hstcal, "cpu"), 3),
                        "load_average_1min": load}),
    ]
    return results


def run() -> list[Result]:
    return [r for detector in CASES for r in _case(detector)]


if __name__ == "__main__":
    for r in run():
        goal = "" if r.goal is None else f"  goal {'<=' if r.lower_is_better else '>='} {r.goal:g}"
        print(f"{r.name:<62} {r.value:>9.3f} {r.unit:<3}{goal}  {json.dumps(r.details)}")
