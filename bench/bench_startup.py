"""Start-up figures (issue 15): cold processes of ``owl --help``, ``owl status --json`` and every stage.

Each figure is the median wall time of N fresh interpreters (``OWL_BENCH_STARTUP_N``, default 5),
measured from process creation by this parent:

* ``owl --help`` and ``owl status --json`` (a freshly initialised site): until the process exits.
* a stage executable (its console-script entry point, on a dataset registered on the OSF): until
  its **first useful work**, the OSF claim, i.e. until the stage moves its column to ``p`` in the
  site database (the time its OSF history row records for that move). Everything before it is
  start-up: the interpreter, the stage wrapper (site configuration, the OSF blackboard), argument
  parsing, the reap of dead claims.
  What the stage's own job then imports (numpy, astropy, an engine) is part of the job; the stage
  is stopped with SIGTERM once the claim is seen (the wrapper moves the column to ``x``).
* ``owl-dan-receipt`` claims no OSF column: until it answers a missing DAN (its first file look-up).

Goal: <= 0.3 s each. The floor (``python -c pass``, ``import pipeline.core.stage``) and the largest
import costs (``python -X importtime``, cumulative, top-level packages) are reported alongside.
"""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import entry_points, version
from pathlib import Path

from bench.common import Result
from pipeline.core.osf import COLUMNS

GOAL_S = 0.3
DATASET = "idn101a1q"
REPEATS = int(os.environ.get("OWL_BENCH_STARTUP_N", "5"))


def _entry(target: str) -> list[str]:
    """A fresh interpreter running ``module:function`` as its console script would (argv follows)."""
    module, function = target.split(":")
    return [sys.executable, "-c", f"import sys; from {module} import {function}; sys.exit({function}())"]


def _until_exit(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t0


def _until_claim(argv: list[str], env: dict[str, str], db: Path, column: int) -> float:
    """Seconds from process creation until the stage claimed the OSF column of DATASET (moved it to ``p``).

    The parent watches the column (every millisecond) to stop the stage with SIGTERM once it reads ``p``,
    but takes the claim's moment from the OSF history row the claim wrote in the same transaction (the
    stage's clock just before that transaction): on an empty site a stage fails on its missing input a
    few milliseconds after the claim, between two polls.
    """
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    name = COLUMNS[column]
    try:
        t0_epoch = time.time()
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None:
            row = conn.execute("SELECT status FROM osf WHERE dataset = ?", (DATASET,)).fetchone()
            if row is not None and row[0][column] == "p":
                break
            time.sleep(0.001)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        claim = conn.execute('SELECT min(time) FROM osf_history WHERE dataset = ? AND "column" = ? AND new = \'p\' '
                             "AND time >= ?", (DATASET, name, t0_epoch)).fetchone()[0]
    finally:
        conn.close()
    if claim is None:
        raise RuntimeError(f"{argv[-3:]} exited {proc.returncode} without claiming the OSF column")
    return claim - t0_epoch


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _median(measure) -> tuple[float, float]:
    """(median wall s, median CPU s of the child) over REPEATS runs of ``measure``.

    The CPU figure holds when other jobs share the cores; for a stage it runs to the SIGTERM after
    the claim, so it is an upper bound of the CPU spent before the claim.
    """
    walls, cpus = [], []
    for _ in range(REPEATS):
        cpu = _children_cpu()
        walls.append(measure())
        cpus.append(_children_cpu() - cpu)
    return statistics.median(walls), statistics.median(cpus)


#: Not third-party costs: the interpreter's own start-up and the project's packages.
_OWN = {"site", "encodings", "pipeline", "stages", "bench"}


def _top_imports(code: str, n: int = 6) -> dict[str, float]:
    """The ``n`` costliest top-level packages (cumulative ms, children included) under ``-X importtime``."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                         check=False)
    costs: dict[str, float] = {}
    for line in out.stderr.splitlines():
        parts = line.split("|")
        name = parts[-1].strip()
        if len(parts) == 3 and parts[1].strip().isdigit() and "." not in name and name not in _OWN:
            costs[name] = int(parts[1]) / 1000
    return {k: round(v, 1) for k, v in sorted(costs.items(), key=lambda kv: -kv[1])[:n]}


def _stage_scripts() -> dict[str, str]:
    """``owl-<stage>`` console scripts of the installed distribution: name → ``module:function``."""
    return {ep.name: ep.value for ep in entry_points(group="console_scripts")
            if ep.name.startswith("owl-") and ep.value.startswith("stages.")}


def run() -> list[Result]:
    from pipeline.core.config import init_site
    from pipeline.core.osf import Blackboard, column_index

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        site = init_site(Path(tmp) / "site")
        env = {**os.environ, "OWL_SITE": str(site.root), "CONDOR_CONFIG": os.environ.get("CONDOR_CONFIG", "/dev/null")}
        db = Path(site.database_url.removeprefix("sqlite:///"))
        Blackboard(site.database_url).create(DATASET)
        floor, floor_cpu = _median(lambda: _until_exit([sys.executable, "-c", "pass"], env))
        wrapper, wrapper_cpu = _median(lambda: _until_exit([sys.executable, "-c", "import pipeline.core.stage"], env))
        results.append(Result("start-up floor: import pipeline.core.stage (stage wrapper)", wrapper, "s",
                              details={"cpu_s": round(wrapper_cpu, 3), "python_c_pass_s": round(floor, 3),
                                       "python_c_pass_cpu_s": round(floor_cpu, 3),
                                       "top_imports_ms": _top_imports("import pipeline.core.stage")}))
        fits_s, fits_cpu = _median(lambda: _until_exit([sys.executable, "-c", "import astropy.io.fits"], env))
        results.append(Result("import astropy.io.fits (every node that reads FITS pays it)", fits_s, "s",
                              details={"cpu_s": round(fits_cpu, 3), "astropy": version("astropy"),
                                       "top_imports_ms": _top_imports("import astropy.io.fits")}))
        cli = _entry("pipeline.cli:main")
        seconds, cpu = _median(lambda: _until_exit([*cli, "--help"], env))
        results.append(Result("owl --help, cold process", seconds, "s", goal=GOAL_S,
                              details={"cpu_s": round(cpu, 3), "top_imports_ms": _top_imports("import pipeline.cli")}))
        status = [*cli, "status", "--json", "--site", str(site.root)]
        seconds, cpu = _median(lambda: _until_exit(status, env))
        code = f"from pipeline.cli import main; main({status[-4:]!r}, standalone_mode=False)"
        results.append(Result("owl status --json (1-row site), cold process", seconds, "s", goal=GOAL_S,
                              details={"cpu_s": round(cpu, 3), "top_imports_ms": _top_imports(code)}))
        for name, target in sorted(_stage_scripts().items()):
            if name == "owl-dan-receipt":
                argv = [*_entry(target), str(Path(tmp) / "missing.dan"), "--site", str(site.root)]
                seconds, cpu = _median(lambda a=argv: _until_exit(a, env))
                label = f"{name}: cold start to its answer on a missing DAN"
            else:
                module = __import__(target.split(":")[0], fromlist=["main"])
                stage = next(v for v in vars(module).values()
                             if isinstance(v, type) and getattr(v, "name", None) == name.removeprefix("owl-"))
                argv = [*_entry(target), DATASET, "--site", str(site.root)]
                column = column_index(stage.column)
                seconds, cpu = _median(lambda a=argv, c=column: _until_claim(a, env, db, c))
                label = f"{name}: cold start to its OSF claim (column {stage.column} at p)"
            results.append(Result(label, seconds, "s", goal=GOAL_S, details={
                "cpu_s": round(cpu, 3), "top_imports_ms": _top_imports(f"import {target.split(':')[0]}")}))
    return results
