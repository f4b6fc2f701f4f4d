"""Pixel-based CTE correction for ACS/WFC: the ACSCTE step on one full-frame ``_blv_tmp`` (-> blc).

The exposure (600 stars per chip on a 15 e- sky, in electrons) and its PCTETAB (the calacs 10.5
parallel/serial layout: a 20-trap parallel set with PCTENFOR 5 x PCTENPAR 7, 12-trap serial sets
with PCTENPAR 3) are built once into ``.bench/acscte-data`` by a child process. One run, whole
step (serial then parallel correction of the four amps), with this process's peak RSS.

Reference: calacs 10.5 ``acscte.e`` on the same files and two threads spent 70.5 s of CPU (its own
"CTE run time" lines add up to 35 s), measured here in docs/benchmarks.md; the goal is to beat it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import Result, peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".bench" / "acscte-data"
ACSCTE_TWO_THREADS_S = 35.0


def _prepare() -> Path:
    blv = DATA / "jcte01abq_blv_tmp.fits"
    if blv.is_file():
        return blv
    code = f"from pathlib import Path; from tests.acs_cte_synth import build; print(build(Path({str(DATA)!r})))"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    print(f"   data ready in {time.perf_counter() - t0:.1f} s ({DATA})", flush=True)
    return blv


def run() -> list[Result]:
    blv = _prepare()
    from pipeline.science.calib import acs, builtin
    from pipeline.science.calib.cte import acs as acs_cte
    from pipeline.science.calib.imageio import read_exposure

    t0 = time.perf_counter()
    c0 = time.process_time()
    exposure = read_exposure(blv)
    ctx = builtin.new_context(exposure, site=None, environ={"jref": f"{DATA}/"}, log=None)
    ctx.read_switches(acs.SWITCHES)
    acs_cte.run(ctx, exposure)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return [
        Result("CTE step (ACSCTE), full-frame WFC, serial + parallel, 4 amps", wall, "s", goal=ACSCTE_TWO_THREADS_S,
               details={"cpu_s": round(cpu, 1), "speedup_vs_acscte_2_threads": round(ACSCTE_TWO_THREADS_S / wall, 2),
                        "load_average_1min": round(os.getloadavg()[0], 2)}),
        Result("ACSCTE step: peak RSS", peak_rss_mb(), "MB", goal=3072.0),
    ]
