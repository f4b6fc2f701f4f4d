"""The built-in WFC3/IR chain on one full-frame NSAMP=16 MULTIACCUM ramp (SPARS50, 1024x1024).

The ramp and its references come from the IR simulator, built once into ``.bench/calib-ir-data`` by
a child process. Figures: in-process wall time (``_ima`` + ``_flt`` written), peak RSS, and a cold
``owl calibrate`` process. Goals (issue 12): faster than calwf3's ~3 s for NSAMP=8 on this machine
class, <= 1.5 GB peak.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_calib import _cold_run
from bench.common import Result, median_time, peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".bench" / "calib-ir-data"
REPEATS = 2


def _prepare() -> Path:
    raw = DATA / "irbench1q_raw.fits"
    if raw.is_file():
        return raw
    code = ("from pathlib import Path; from pipeline.simulate.irmodel import detector_maps; "
            "from pipeline.simulate.irrefs import write_ir_references; "
            "from pipeline.simulate.ir import IRExposure, write_exposure; "
            f"d = Path({str(DATA)!r}); m = detector_maps(); "
            "e = IRExposure('irbench1q', samp_seq='SPARS50', nsamp=16, aperture='IR'); "
            "r = write_ir_references(m, d / 'iref', darks=[('SPARS50', 'FULLIMAG')], filters=['F160W']); "
            "write_exposure(m, e, d, r)")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    print(f"   data ready in {time.perf_counter() - t0:.1f} s ({DATA})", flush=True)
    return raw


def run() -> list[Result]:
    raw = _prepare()
    os.environ["iref"] = str(DATA / "iref") + "/"  # noqa: SIM112 (hstcal's variable is lower case)
    from pipeline.science.calib.ir.engine import calibrate_ir

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        wall, walls = median_time(lambda: calibrate_ir(raw, out), repeats=REPEATS, warmup=0)
        rss = peak_rss_mb()
        cold, child_rss = _cold_run(raw, out / "cold")
    return [
        Result("CA built-in IR: full-frame NSAMP=16 ramp -> _ima + _flt", wall, "s", goal=3.0,
               details={"walls": [round(w, 3) for w in walls], "load_average_1min": round(os.getloadavg()[0], 2)}),
        Result("CA built-in IR: peak RSS (this process)", rss, "MB", goal=1500.0),
        Result("owl calibrate IR, cold process", cold, "s", details={"peak_rss_mb": round(child_rss, 1)}),
    ]
