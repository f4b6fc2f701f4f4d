"""Pixel-based CTE correction, one full-frame exposure each, whole step, one run, peak RSS:

* WFC3/UVIS, the WF3CTE step (raw -> rac): 400 stars per chip on a 12 e- sky, trails from the
  simulator's 20-trap model, PCTENFOR 5 x PCTENPAR 7 (``tests/cte_synth.py``, ``.bench/cte-data``).
  Goals (issue 14): at least 4x faster than calwf3's CTE step on two threads with a 20-trap table
  (58.3 s in the specification's timing notes, so <= 14.6 s), and <= 3 GB.
* ACS/WFC, the ACSCTE step (blv -> blc): 600 stars per chip on a 15 e- sky, a 20-trap parallel set
  (PCTENFOR 5 x PCTENPAR 7) and 12-trap serial sets (PCTENPAR 3), post-SM4 so serial and parallel
  corrections of the four amps (``tests/acs_cte_synth.py``, ``.bench/acscte-data``). Reference:
  calacs 10.5 ``acscte.e`` with two threads on the same files spent 70.5 s of CPU here (its "CTE run
  time" lines add up to 35 s, the goal).

Each data set is built once by a child process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import Result, peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".bench" / "cte-data"
ACS_DATA = ROOT / ".bench" / "acscte-data"
CALWF3_TWO_THREADS_S = 58.3
ACSCTE_TWO_THREADS_S = 35.0


def _prepare(module: str, data: Path) -> Path:
    code = f"from pathlib import Path; from tests.{module} import build; print(build(Path({str(data)!r})))"
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    print(f"   data ready in {time.perf_counter() - t0:.1f} s ({data})", flush=True)
    return Path(done.stdout.strip().splitlines()[-1])


def _timed(path: Path, environ: dict[str, str], switches: tuple[str, ...],
           step: Callable[[object, object], object]) -> tuple[float, float]:
    """(wall, CPU) of reading ``path`` and running ``step(ctx, exposure)``."""
    from pipeline.science.calib import builtin
    from pipeline.science.calib.imageio import read_exposure

    t0 = time.perf_counter()
    c0 = time.process_time()
    exposure = read_exposure(path)
    ctx = builtin.new_context(exposure, site=None, environ=environ, log=None)
    ctx.read_switches(switches)
    step(ctx, exposure)
    return time.perf_counter() - t0, time.process_time() - c0


def _result(name: str, wall: float, cpu: float, reference: float, label: str, goal: float) -> Result:
    return Result(name, wall, "s", goal=goal,
                  details={"cpu_s": round(cpu, 1), label: round(reference / wall, 2),
                           "load_average_1min": round(os.getloadavg()[0], 2)})


def run() -> list[Result]:
    from pipeline.science.calib import acs, uvis
    from pipeline.science.calib.cte import acs as acs_cte
    from pipeline.science.calib.cte import uvis as uvis_cte

    raw = _prepare("cte_synth", DATA)
    wall, cpu = _timed(raw, {"iref": f"{DATA}/"}, uvis.SWITCHES, uvis_cte.run)  # type: ignore[arg-type]
    uvis_result = _result("CTE step (WF3CTE), full-frame UVIS, 20 traps, NITFOR 5 x NITPAR 7", wall, cpu,
                          CALWF3_TWO_THREADS_S, "speedup_vs_calwf3_2_threads", CALWF3_TWO_THREADS_S / 4)
    blv = _prepare("acs_cte_synth", ACS_DATA)
    wall, cpu = _timed(blv, {"jref": f"{ACS_DATA}/"}, acs.SWITCHES, acs_cte.run)  # type: ignore[arg-type]
    return [uvis_result,
            _result("CTE step (ACSCTE), full-frame WFC, serial + parallel, 4 amps", wall, cpu,
                    ACSCTE_TWO_THREADS_S, "speedup_vs_acscte_2_threads", ACSCTE_TWO_THREADS_S),
            Result("CTE steps: peak RSS", peak_rss_mb(), "MB", goal=3072.0)]
