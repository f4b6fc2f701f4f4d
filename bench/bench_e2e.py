"""What an operator pays (issue 15): full-frame associations from DAN to CL, local executor, 2 workers.

One simulated downlink of three full-frame associations — a WFC3/UVIS dither pair, an ACS/WFC dither
pair and a WFC3/UVIS CR-SPLIT pair (six exposures) — goes through ``owl watch --once`` with the
local executor and the site's default two workers. Figures:

- exposures per hour (goal >= 300 on a 2-core machine);
- each node's median wall time and peak RSS, from the site's ``node_usage`` history the stage
  wrapper writes (:mod:`pipeline.core.usage`), per stage column;
- per association, the non-MD nodes' summed wall time over MD's (goal <= 0.25): a pipeline whose
  only real cost is drizzling adds a small fraction to it.

The full-frame CRDS cache takes minutes to build; it is kept in ``.bench/e2e-crds-full`` and reused.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.common import Result

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".bench" / "e2e-crds-full"
os.environ.setdefault("CONDOR_CONFIG", "/dev/null")
#: The CA engine timed (``OWL_BENCH_ENGINE=hstcal`` times the delegate instead).
ENGINE = os.environ.get("OWL_BENCH_ENGINE", "builtin")


def _cache() -> Path:
    from pipeline.simulate.crdscache import build_reference_cache

    if not (CACHE / "config" / "hst" / "owl_simulator.json").is_file():
        shutil.rmtree(CACHE, ignore_errors=True)
        CACHE.parent.mkdir(exist_ok=True)
        build_reference_cache(CACHE, ("wfc3", "acs"), size="full")
    return CACHE


def _owl(*args: str) -> None:
    """Run the ``owl`` command beside this interpreter, as an operator would."""
    done = subprocess.run([str(Path(sys.executable).parent / "owl"), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"owl {args[0]} failed: {done.stderr.strip()[-300:]}")


def _site(root: Path):
    from pipeline.core.config import load_site

    os.environ["OWL_SITE"] = str(root)
    # the site's own override variable, inherited by every node: with hstcal on PATH 'auto' would
    # time calwf3/calacs instead of owlpipe's engine
    os.environ["OWL_CALIBRATION__ENGINE"] = ENGINE
    _owl("init", str(root))   # the site as an operator creates it: areas, OSF, archive catalogue
    site = load_site(root)
    site.areas.crds.rmdir()
    site.areas.crds.symlink_to(_cache(), target_is_directory=True)
    return site


def _simulate(site) -> None:
    _owl("simulate", "--site", str(site.root), "--size", "full", "--associations", "3", "--instruments", "wfc3,acs",
         "--seed", "15")


def _usage(site) -> tuple[list, dict[str, str]]:
    from pipeline.core.osf import Blackboard
    from pipeline.core.usage import all_runs

    rows = all_runs(site.database_url)
    bb = Blackboard(site.database_url)
    parent = {}
    for r in rows:
        entry = bb.find(r.dataset)
        parent[r.dataset] = (entry.parent if entry is not None else None) or r.dataset
    return rows, parent


def _table(rows: list) -> dict[str, dict[str, float]]:
    by_stage: dict[str, list] = defaultdict(list)
    for r in rows:
        by_stage[r.stage].append(r)
    return {stage: {"nodes": len(rs), "median_wall_s": round(statistics.median(r.wall_s for r in rs), 2),
                    "max_peak_rss_mb": round(max(r.peak_rss_mb for r in rs)),
                    "median_peak_rss_mb": round(statistics.median(r.peak_rss_mb for r in rs))}
            for stage, rs in by_stage.items()}


def run() -> list[Result]:
    from pipeline.orchestration.controller import Controller

    with tempfile.TemporaryDirectory(prefix="owl-bench-e2e-", ignore_cleanup_errors=True) as tmp:
        site = _site(Path(tmp) / "site")
        _simulate(site)
        ctl = Controller(site, executor="local")
        t0 = time.perf_counter()
        ctl.watch(once=True)
        took = time.perf_counter() - t0
        subs = ctl.submissions()
        rows, parent = _usage(site)
        from pipeline.core.osf import Blackboard

        bb = Blackboard(site.database_url)
        exposures = sum(len(bb.members(s.dataset)) or 1 for s in subs if s.state == "done")
        failures = [f"{s.dataset}: {s.message}" for s in subs if s.state != "done"]
    per_stage = _table(rows)
    print(f"   {'node':<6} {'n':>3} {'median wall s':>14} {'median peak RSS MB':>19} {'max peak RSS MB':>16}")
    for stage, f in per_stage.items():
        print(f"   {stage:<6} {f['nodes']:>3} {f['median_wall_s']:>14.2f} {f['median_peak_rss_mb']:>19} "
              f"{f['max_peak_rss_mb']:>16}")
    shares = {}
    for asn in sorted({parent[r.dataset] for r in rows}):
        mine = [r for r in rows if parent[r.dataset] == asn]
        md = sum(r.wall_s for r in mine if r.stage == "MD")
        other = sum(r.wall_s for r in mine if r.stage not in ("MD", "DR"))
        if md > 0:
            shares[asn] = {"md_s": round(md, 1), "other_s": round(other, 1), "ratio": round(other / md, 3)}
            print(f"   {asn}: MD {md:.1f} s, the other nodes {other:.1f} s ({other / md:.0%} of MD)")
    details = {"engine": ENGINE, "seconds": round(took, 1), "associations": len(subs), "exposures": exposures,
               "workers": site.executor.workers, "failures": failures, "nodes": per_stage, "associations_md": shares}
    results = [Result("full-frame exposures per hour (UVIS+WFC dithers, UVIS CR-SPLIT)", exposures / took * 3600,
                      "exp/h", goal=300, lower_is_better=False, details=details)]
    if shares:
        results.append(Result("non-MD nodes' time / MD time per association (median)",
                              statistics.median(s["ratio"] for s in shares.values()), "ratio", goal=0.25,
                              details=shares))
    if "MD" in per_stage:
        results.append(Result("MD median wall time per association", per_stage["MD"]["median_wall_s"], "s"))
        results.append(Result("MD max peak RSS", per_stage["MD"]["max_peak_rss_mb"], "MB"))
    return results
