"""Calibration figures: the built-in engine on one full-frame WFC3/UVIS exposure (both chips).

The exposure comes from the simulator (full-frame references and CRDS cache, bestrefs applied),
built once into ``.bench/calib-data`` by a child process so its memory does not count here. The
exposure runs every basic step its switches ask for (DQICORR, BLEVCORR, BIASCORR, DARKCORR,
FLATCORR, PHOTCORR, FLUXCORR, statistics; sink pixels through SNKCFILE) and is written as ``_flt``.

Goals (issue 4): <= 2 s wall and <= 1.5 GB peak RSS on one core. The physical bound is memory
bandwidth: the engine's bytes per second (raw + reference arrays read, flt arrays written, each
counted once) against a plain numpy copy of the same arrays.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import Result, median_time, peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".bench" / "calib-data"
REPEATS = 5


def prepare_full_frame(root: Path = DATA, instrument: str = "wfc3") -> tuple[Path, Path]:
    """Build (or reuse) a simulated full-frame dither pair in a child process; return (first raw, crds cache)."""
    code = ("from pathlib import Path; from tests.calib_simdata import build; "
            f"d = build(Path({str(root)!r}), size='full', instruments=({instrument!r},), associations=1, seed=1); "
            "print(d.members()[0])")
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    member = done.stdout.strip().splitlines()[-1]
    print(f"   {instrument} data ready in {time.perf_counter() - t0:.1f} s ({root})", flush=True)
    return root / "raws" / f"{member}_raw.fits", root / "crds"


def _arrays_moved(raw: Path, flt: Path, crds: Path) -> list[np.ndarray]:
    """The arrays a calibration must touch at least once: the raw's, the reference images', the flt's."""
    from astropy.io import fits

    from pipeline.science.calib.refnames import resolve_reference

    arrays: list[np.ndarray] = []
    for path in (raw, flt):
        with fits.open(path) as hdul:
            arrays += [np.array(h.data) for h in hdul[1:] if h.data is not None]
    header = fits.getheader(flt)
    for key in ("BIASFILE", "DARKFILE", "PFLTFILE", "DFLTFILE", "LFLTFILE", "FLSHFILE", "SHADFILE",
                "SNKCFILE", "SATUFILE"):
        value = str(header.get(key, "N/A")).strip()
        if value.upper() in ("N/A", "") or value.upper() == "OMIT":
            continue
        path = resolve_reference(value, environ={"CRDS_PATH": str(crds)})
        with fits.open(path) as hdul:
            arrays += [np.array(h.data) for h in hdul[1:] if h.data is not None and h.data.ndim == 2]
    return arrays


def _copy_time(arrays: list[np.ndarray]) -> float:
    def copy_all() -> None:
        for a in arrays:
            np.copy(a)

    return median_time(copy_all, repeats=REPEATS)[0]


def _cold_run(raw: Path, out: Path) -> tuple[float, float]:
    """Wall time and peak RSS of ``owl calibrate`` in a new process (its own getrusage, printed).

    It is started by a small shell that forks it: Linux carries a process's peak RSS across fork
    and exec, so a child forked straight from this (large) process would report our peak.
    """
    code = ("import resource, sys; from pipeline.cli import main; "
            "rc = 0\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code or 0\n"
            "print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, file=sys.stderr); sys.exit(rc)")
    t0 = time.perf_counter()
    argv = [sys.executable, "-c", code, "calibrate", str(raw), "--outdir", str(out), "--engine", "builtin", "-q"]
    done = subprocess.run(["sh", "-c", '"$@"; rc=$?; exit $rc', "sh", *argv], cwd=ROOT, check=True,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    rss = float(next(line.split()[1] for line in done.stderr.splitlines() if line.startswith("RSS ")))
    return wall, rss


def run() -> list[Result]:
    raw, crds = prepare_full_frame()
    os.environ["CRDS_PATH"] = str(crds)
    os.environ.pop("iref", None)
    t0 = time.perf_counter()
    from pipeline.science.calib import builtin

    import_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        cpu: list[float] = []

        def once() -> None:
            c0 = time.process_time()
            builtin.calibrate_exposure(raw, out)
            cpu.append(time.process_time() - c0)

        wall, walls = median_time(once, repeats=REPEATS)
        rss = peak_rss_mb()
        flt = next(out.glob("*_flt.fits"))
        arrays = _arrays_moved(raw, flt, crds)
        moved = sum(a.nbytes for a in arrays)
        copy_s = _copy_time(arrays)
        # a cold run as a node runs it: a new process, imports, calibration, product written
        cold, child_rss = _cold_run(raw, out / "cold")
    cpu_median = sorted(cpu)[len(cpu) // 2]
    shape = "2 x 4206x2070 raw -> 2 x 4096x2051 flt"
    return [
        Result("import pipeline.science.calib.builtin", import_s, "s"),
        Result(f"CA built-in: full-frame UVIS exposure ({shape}), 1 core", wall, "s", goal=2.0,
               details={"walls": [round(w, 3) for w in walls], "cpu_s": round(cpu_median, 3),
                        "load_average_1min": round(os.getloadavg()[0], 2)}),
        Result("CA built-in: peak RSS (this process, all repeats)", rss, "MB", goal=1500.0),
        Result("CA built-in: bytes moved per second", moved / wall / 1e9, "GB/s", lower_is_better=False,
               details={"bytes_moved_mb": round(moved / 2**20, 1), "arrays": len(arrays)}),
        Result("numpy copy of the same arrays (physical bound)", moved / copy_s / 1e9, "GB/s",
               lower_is_better=False, details={"copy_s": round(copy_s, 4),
                                               "engine_over_copy": round(wall / copy_s, 1)}),
        Result("owl calibrate, cold process (imports + one exposure)", cold, "s",
               details={"peak_rss_mb": round(child_rss, 1)}),
    ]
