"""Orchestration figures (issue 6): throughput, per-node overhead, DAG generation, the OSF grid.

- associations per hour through the local executor: the real stages on a simulated subarray
  downlink (WFC3; the figure the demo sees), and the kit no-op stages (the orchestration ceiling);
- per-node overhead: each stage executable's start-up and imports, plus what every node pays
  around its work (stage wrapper, OSF transitions, PRE/POST hooks); goal under 1 s except MD;
- writing the DAG files of 1,000 associations;
- ``owl status`` (grid page + per-stage counts) on 100,000 OSF rows; goal under 0.5 s.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Result, median_time

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("CONDOR_CONFIG", "/dev/null")


def _site(root: Path):
    from pipeline.core.config import init_site

    os.environ["OWL_SITE"] = str(root)
    return init_site(root)


def _bulk_register(bb, n_assoc: int, members: int, status: str = "c" + "_" * 11) -> list[str]:
    """``n_assoc`` received associations with ``members`` members each, inserted in one transaction."""
    from pipeline.core.osf import ROW_COLUMNS

    now = time.time()
    rows, names = [], []
    for a in range(n_assoc):
        asn = f"j{a:05d}010"
        names.append(asn)
        rows.append((asn, "acs", "000", "", status, None, "new_science", 50, now + a, now + a))
        rows += [(f"j{a:05d}a{chr(98 + m)}q", "acs", "000", "", status, asn, "new_science", 50, now + a, now + a)
                 for m in range(members)]
    with bb.db.write() as cur:
        cur.executemany(f"INSERT INTO osf ({ROW_COLUMNS}) VALUES ({', '.join('?' * 10)})", rows)
    return names


def throughput_real(tmp: Path) -> Result:
    """Simulated WFC3 subarray associations from DAN to CL through the watcher and local executor."""
    from pipeline.orchestration.controller import Controller

    site = _site(tmp / "real")
    n = 2
    sim = subprocess.run([str(Path(sys.executable).parent / "owl"), "simulate", "--site", str(site.root), "--size",
                          "subarray", "--associations", str(n), "--instruments", "wfc3", "--seed", "7"],
                         capture_output=True, text=True)
    if sim.returncode != 0:
        raise RuntimeError(f"owl simulate failed: {sim.stderr.strip()[-300:]}")
    ctl = Controller(site, executor="local")
    t0 = time.perf_counter()
    ctl.watch(once=True)
    took = time.perf_counter() - t0
    subs = ctl.submissions()
    done = sum(s.state == "done" for s in subs)
    return Result("associations per hour, real stages (WFC3 subarray pairs)", done / took * 3600, "assoc/h",
                  lower_is_better=False,
                  details={"associations": len(subs), "completed": done, "seconds": round(took, 1),
                           "workers": site.executor.workers,
                           "failures": [s.message for s in subs if s.state != "done"]})


def _kit_env(tmp: Path) -> None:
    sys.path.insert(0, str(REPO))
    from tests.orchkit import install

    bin_dir = install(tmp / "kit-bin")
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    os.environ.pop("OWL_KIT_PLAN", None)


def throughput_kit(tmp: Path) -> tuple[Result, float]:
    """No-op kit stages: what orchestration alone allows; also the mean wall time per node with one worker."""
    from pipeline.core.osf import Blackboard
    from pipeline.orchestration.executors.local import LocalExecutor
    from pipeline.orchestration.workflow import load_workflow
    from tests.orchkit import KIT_WORKFLOW, register

    site = _site(tmp / "kit")
    bb = Blackboard(site.database_url)
    wf = load_workflow(KIT_WORKFLOW)
    names = [f"j9cv{n:02d}010" for n in range(6)]
    for asn in names:
        register(bb, asn, (f"{asn[:6]}abq", f"{asn[:6]}acq"))
    ex = LocalExecutor(site, bb)
    t0 = time.perf_counter()
    for asn in names:
        ex.submit(wf, asn)
    ex.run()
    took = time.perf_counter() - t0
    nodes = sum(len(d.nodes) for d in ex.dags)
    # one worker, one association: wall time per node with nothing to overlap it
    register(bb, "j9cw01010", ("j9cw01abq",))
    one = LocalExecutor(site, bb, workers=1)
    t1 = time.perf_counter()
    run = one.submit(wf, "j9cw01010")
    one.run()
    per_node = (time.perf_counter() - t1) / len(run.nodes)
    return (Result("associations per hour, kit no-op stages (orchestration ceiling)", len(names) / took * 3600,
                   "assoc/h", lower_is_better=False,
                   details={"associations": len(names), "nodes": nodes, "seconds": round(took, 2),
                            "workers": site.executor.workers}), per_node)


def node_overheads(tmp: Path, kit_node: float) -> list[Result]:
    """Per stage: process start + imports (``--help``) plus the wrapper/OSF/hook cost every node pays."""
    from pipeline.orchestration.workflow import find_executable, load_workflow

    kit_rf = shutil.which("kit-rf")
    kit_start, _ = median_time(lambda: subprocess.run([kit_rf, "--help"], capture_output=True), repeats=3, warmup=1)
    around = max(kit_node - kit_start, 0.0)  # wrapper, OSF moves, PRE/POST hooks, scheduling
    results = [Result("per-node cost around the work (wrapper, OSF, hooks)", around, "s",
                      details={"kit node wall": round(kit_node, 3), "kit start+imports": round(kit_start, 3)})]
    wf = load_workflow("new_science")
    for spec in wf.node_stages:
        exe = find_executable(spec, wf)
        if exe is None:
            results.append(Result(f"per-node overhead {spec.name} (not installed)", float("nan"), "s"))
            continue
        start, runs = median_time(lambda exe=exe: subprocess.run([str(exe), "--help"], capture_output=True),
                                  repeats=3, warmup=1)
        results.append(Result(f"per-node overhead {spec.name} (start+imports {start:.2f} s)", start + around, "s",
                              goal=None if spec.name == "MD" else 1.0,
                              details={"start_imports": round(start, 3), "runs": [round(r, 3) for r in runs]}))
    return results


def dag_generation(tmp: Path) -> Result:
    from pipeline.core.osf import Blackboard
    from pipeline.orchestration.dag import write_dag
    from pipeline.orchestration.workflow import load_workflow, missing_executables

    site = _site(tmp / "dags")
    bb = Blackboard(site.database_url)
    wf = load_workflow("new_science")
    if missing_executables(wf):
        stand_ins = tmp / "stand-ins"
        stand_ins.mkdir()
        for spec in missing_executables(wf):
            (stand_ins / spec.executable).write_text("#!/bin/sh\n")
            (stand_ins / spec.executable).chmod(0o755)
        os.environ["PATH"] = f"{stand_ins}{os.pathsep}{os.environ['PATH']}"
    names = _bulk_register(bb, 1000, 2)
    t0 = time.perf_counter()
    for asn in names:
        write_dag(site, wf, asn, bb)
    took = time.perf_counter() - t0
    return Result("DAG files for 1,000 associations (2 members, 12 nodes each)", took, "s",
                  details={"ms_per_dag": round(took, 3)})  # seconds per 1,000 DAGs are ms per DAG


def status_grid(tmp: Path) -> list[Result]:
    from rich.console import Console

    from pipeline.cli.statusview import render
    from pipeline.core.osf import Blackboard
    from pipeline.core.status import Filters, grid

    site = _site(tmp / "big")
    bb = Blackboard(site.database_url)
    _bulk_register(bb, 25_000, 3, status="cccc" + "e" + "_" * 7)

    def show() -> None:
        render(grid(bb, Filters(), limit=50), Console(file=io.StringIO(), width=140))

    took, runs = median_time(show, repeats=5)
    filtered, _ = median_time(lambda: grid(bb, Filters(column="CA", letters="e"), limit=50), repeats=5)
    t0 = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "owl"), "status", "--site", str(site.root)],
                   capture_output=True, check=True)
    cli_wall = time.perf_counter() - t0
    return [Result("owl status on 100,000 OSF rows (grid page + counts)", took, "s", goal=0.5,
                   details={"runs": [round(r, 3) for r in runs],
                            "cli_wall_incl_python_start": round(cli_wall, 3)}),
            Result("owl status -c CA -s e on 100,000 OSF rows", filtered, "s")]


def run() -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="owl-bench-orch-") as name:
        tmp = Path(name)
        _kit_env(tmp)
        results = status_grid(tmp)
        results.append(dag_generation(tmp))
        kit, per_node = throughput_kit(tmp)
        results.append(kit)
        results += node_overheads(tmp, per_node)
        results.append(throughput_real(tmp))
    return results


if __name__ == "__main__":
    for r in run():
        print(f"{r.name:<70} {r.value:10.3f} {r.unit}  {'' if r.ok is None else ('ok' if r.ok else 'MISSED')}"
              f"  {r.details if len(str(r.details)) < 200 else ''}")
