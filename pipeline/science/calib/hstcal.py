"""The hstcal delegate: run STScI's ``calwf3.e`` / ``calacs.e`` where they are installed.

The program runs in the output directory on a copy of its inputs (it writes next to its input
and refuses to overwrite unless ``imclobber=yes``), with ``iref``/``jref`` ending in '/' (hstcal
concatenates ``iref$name`` without a separator). Its trailer (``.tra``/``.trl``) is copied into ours
and its exit code mapped onto ours:

====  ==================  ===========================================
hstcal meaning            owlpipe
====  ==================  ===========================================
0     OK                  success
2     ERROR_RETURN        20 BAD_INPUT (its last ERROR line quoted)
115   CAL_FILE_MISSING    21 MISSING_REFERENCE
116   NOTHING_TO_DO       success, with a warning (no switch to do)
other / signal            40 INTERNAL / 41 KILLED
====  ==================  ===========================================
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

from pipeline.core.errors import MissingReference, OwlError, Unsupported
from pipeline.core.exitcodes import ExitCode
from pipeline.science.calib.delegate import (
    LogSink,
    include_log,
    last_error_line,
    reference_environment,
    run,
    stamp_products,
    which,
)

EXECUTABLES = {"WFC3": ("calwf3.e", "iref"), "ACS": ("calacs.e", "jref")}
PRODUCT_SUFFIXES = ("flt", "flc", "crj", "crc", "sfl")
RC_OK, RC_ERROR, RC_MISSING, RC_NOTHING = 0, 2, 115, 116


def executable_for(instrument: str, environ: Mapping[str, str], unreadable: list[str] | None = None) -> Path | None:
    """The hstcal program for the instrument on PATH, if any (``unreadable``: PATH entries skipped)."""
    entry = EXECUTABLES.get(instrument.strip().upper())
    return which(entry[0], environ, unreadable) if entry else None


def _stage_inputs(inputs: list[Path], outdir: Path) -> list[Path]:
    """Copy the inputs (and, for an association, its members' raws) into ``outdir``."""
    staged = []
    for path in inputs:
        target = outdir / path.name
        if path.resolve() != target.resolve():
            shutil.copyfile(path, target)
        staged.append(target)
    return staged


def run_hstcal(instrument: str, main_input: Path, extra_inputs: list[Path], outdir: Path, *,
               site: object | None = None, environ: Mapping[str, str] | None = None,
               log: LogSink | None = None, timeout: float | None = None) -> list[Path]:
    """Calibrate one raw exposure or association with calwf3.e/calacs.e; return its products."""
    env0 = dict(os.environ if environ is None else environ)
    exe = executable_for(instrument, env0)
    if exe is None:
        raise Unsupported(f"{EXECUTABLES.get(instrument.upper(), ('hstcal',))[0]} is not on PATH",
                          keyword="INSTRUME")
    variable = EXECUTABLES[instrument.strip().upper()][1]
    env = reference_environment(env0, variable, site)
    env["imclobber"] = "yes"
    outdir.mkdir(parents=True, exist_ok=True)
    staged = _stage_inputs([main_input, *extra_inputs], outdir)
    started = time.time()
    if log:
        log("info", f"running {exe} {staged[0].name} ({variable}={env.get(variable, '(unset)')})")
    result = run([str(exe), staged[0].name], cwd=outdir, env=env, timeout=timeout)
    _copy_trailers(outdir, staged[0], started, log, exe.name, result.output)
    rc = result.returncode
    if rc == RC_NOTHING:
        if log:
            log("warn", f"{exe.name}: nothing to do (exit 116): no calibration switch set to PERFORM")
        return []
    if rc == RC_MISSING:
        raise MissingReference(f"{exe.name} exit 115 (reference file missing): {last_error_line(result.output)}")
    if rc == RC_ERROR:
        raise OwlError(f"{exe.name} exit 2 (ERROR_RETURN): {last_error_line(result.output)}",
                       code=ExitCode.BAD_INPUT)
    if rc < 0:
        raise OwlError(f"{exe.name} killed by signal {-rc}", code=ExitCode.KILLED)
    if rc != RC_OK:
        raise OwlError(f"{exe.name} exit {rc}: {last_error_line(result.output)}", code=ExitCode.INTERNAL)
    products = sorted(p for p in outdir.glob("*.fits")
                      if p.name.rsplit(".", 1)[0].split("_", 1)[-1] in PRODUCT_SUFFIXES
                      and p.stat().st_mtime >= started - 1)
    stamp_products(products, "hstcal")
    return products


def _copy_trailers(outdir: Path, main: Path, started: float, log: LogSink | None, source: str,
                   output: str) -> None:
    """hstcal writes ``<root>.tra`` (and ``.trl``); copy what it wrote during this run into our trailer,
    falling back on its captured output."""
    root = main.name.split("_")[0]
    written = [p for p in sorted(outdir.glob(f"{root}*.tra")) + sorted(outdir.glob(f"{root}*.trl"))
               if p.stat().st_mtime >= started - 1]
    if written:
        for p in written:
            include_log(log, p.read_text(errors="replace"), f"{source} trailer {p.name}")
    else:
        include_log(log, output, f"{source} output")
