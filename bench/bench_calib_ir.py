"""The built-in WFC3/IR chain on full-frame MULTIACCUM ramps (SPARS50, 1024x1024, NSAMP=16 and 8).

The ramps and their references come from the IR simulator, built once into ``.bench/calib-ir-data``
by a child process. Figures: in-process wall time (``_ima`` + ``_flt`` written) and peak RSS for
NSAMP=16; ``owl calibrate`` as a whole process (median of 3, peak RSS) for NSAMP=8 and 16; and, when
``calwf3.e`` is on PATH, the real calwf3 on the same raw (median of 3, peak RSS) and the ratio;
each process is timed by :mod:`bench.bench_ca`'s launcher (wall, CPU, peak RSS its own).
Goals (issue 12): faster than calwf3's ~3 s for NSAMP=8 on this machine class, <= 1.5 GB peak.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.bench_ca import _hstcal_run, _owl_run
from bench.common import Result, median_time, peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".bench" / "calib-ir-data"
REPEATS = 2
PROCESS_REPEATS = 3
#: NSAMP -> rootname of the bench ramp.
RAMPS = {16: "irbench1q", 8: "irbench8q"}


def _prepare() -> dict[int, Path]:
    raws = {n: DATA / f"{root}_raw.fits" for n, root in RAMPS.items()}
    if all(p.is_file() for p in raws.values()):
        return raws
    code = ("from pathlib import Path; from pipeline.simulate.irmodel import detector_maps; "
            "from pipeline.simulate.irrefs import write_ir_references; "
            "from pipeline.simulate.ir import IRExposure, write_exposure; "
            f"d = Path({str(DATA)!r}); m = detector_maps(); "
            "r = write_ir_references(m, d / 'iref', darks=[('SPARS50', 'FULLIMAG')], filters=['F160W'])\n"
            f"for n, root in {RAMPS!r}.items():\n"
            "    write_exposure(m, IRExposure(root, samp_seq='SPARS50', nsamp=n, aperture='IR'), d, r)")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    print(f"   data ready in {time.perf_counter() - t0:.1f} s ({DATA})", flush=True)
    return raws


def _process_figures(label: str, fn: Callable[[Path], dict], work: Path,
                     goal: float | None = None) -> tuple[Result, float]:
    """Median wall time of ``PROCESS_REPEATS`` whole-process runs (after one warm-up), their CPU
    times (less sensitive to the machine's load) and the peak RSS, timed by bench_ca's launcher."""
    runs = [fn(work) for _ in range(PROCESS_REPEATS + 1)][1:]
    median = statistics.median(r["wall"] for r in runs)
    return Result(label, median, "s", goal=goal, details={
        "walls": [round(r["wall"], 3) for r in runs], "cpu_s": [round(r["cpu"], 3) for r in runs],
        "peak_rss_mb": round(max(r["rss_mb"] for r in runs), 1)}), median


def run() -> list[Result]:
    raws = _prepare()
    os.environ["iref"] = str(DATA / "iref") + "/"  # noqa: SIM112 (hstcal's variable is lower case)
    from pipeline.science.calib.ir.engine import calibrate_ir

    calwf3 = shutil.which("calwf3.e")
    refs = DATA / "iref"
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        wall, walls = median_time(lambda: calibrate_ir(raws[16], out), repeats=REPEATS, warmup=0)
        rss = peak_rss_mb()
        results += [
            Result("CA built-in IR: full-frame NSAMP=16 ramp -> _ima + _flt", wall, "s", goal=3.0,
                   details={"walls": [round(w, 3) for w in walls],
                            "load_average_1min": round(os.getloadavg()[0], 2)}),
            Result("CA built-in IR: peak RSS (this process)", rss, "MB", goal=1500.0)]
        for nsamp, raw in sorted(raws.items()):
            own, own_s = _process_figures(f"owl calibrate IR NSAMP={nsamp}, whole process",
                                          lambda w, raw=raw: _owl_run(raw, refs, "iref", w), out,
                                          goal=3.0 if nsamp == 8 else None)
            results.append(own)
            if calwf3:
                ref, ref_s = _process_figures(f"calwf3.e IR NSAMP={nsamp}, whole process",
                                              lambda w, raw=raw: _hstcal_run(calwf3, raw, refs, "iref", w), out)
                ref.details["owl_over_calwf3"] = round(own_s / ref_s, 3)
                results.append(ref)
    results[0].details["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    return results
