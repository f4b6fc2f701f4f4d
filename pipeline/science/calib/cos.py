"""COS through ``calcos`` (installed as a Python package), with ``lref`` set as caldp sets it.

calcos runs in a child process on copies of the inputs in the output directory; ``RANDSEED = 1``
is written into the copies' primary headers (where it is -1 or absent) so that repeated runs give
identical products, as caldp arranges. calcos names every missing reference file at once and then
gives up; that becomes one :class:`MissingReference` naming the keywords and files.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from astropy.io import fits

from pipeline.core.errors import BadInput, MissingReference, OwlError
from pipeline.core.exitcodes import ExitCode
from pipeline.core.fsutil import atomic_path
from pipeline.science.calib.delegate import (
    LogSink,
    include_log,
    last_error_line,
    reference_environment,
    run,
    stamp_products,
)

COS_INPUT_SUFFIXES = ("rawtag", "rawtag_a", "rawtag_b", "rawaccum", "rawaccum_a", "rawaccum_b", "rawacq",
                      "spt", "pha_a", "pha_b", "epc", "asn")
PRODUCT_SUFFIXES = ("corrtag_a", "corrtag_b", "corrtag", "flt_a", "flt_b", "flt", "counts_a", "counts_b", "counts",
                    "x1d", "x1dsum", "x1dsum1", "x1dsum2", "x1dsum3", "x1dsum4", "lampflash", "csum_a", "csum_b",
                    "csum", "jif", "jit")
_MISSING_RE = re.compile(r"^\s*([a-z0-9_]+)=(\S+)\s*$", re.IGNORECASE)


def stage_cos_inputs(main_input: Path, outdir: Path) -> Path:
    """Copy the association (or exposure) and its companion files; gunzip ``.gz`` copies."""
    root = main_input.name.split("_")[0][:6]
    staged_main = None
    for src in sorted(main_input.parent.iterdir()):
        name = src.name[:-3] if src.name.endswith(".gz") else src.name
        if not name.endswith(".fits") or not name.startswith(root):
            continue
        suffix = name[:-5].split("_", 1)[-1] if "_" in name else ""
        if suffix not in COS_INPUT_SUFFIXES:
            continue
        target = outdir / name
        if src.name.endswith(".gz"):
            with fits.open(src) as hdul:
                hdul.writeto(target, overwrite=True)
        elif src.resolve() != target.resolve():
            shutil.copyfile(src, target)
        _set_randseed(target)
        if src == main_input:
            staged_main = target
    if staged_main is None:
        raise BadInput("COS input is not a FITS association or exposure", path=main_input)
    return staged_main


def _set_randseed(path: Path) -> None:
    with fits.open(path, memmap=False) as hdul:
        if int(hdul[0].header.get("RANDSEED", -1)) != -1:
            return
        hdul[0].header["RANDSEED"] = (1, "random-number seed (fixed so reruns repeat)")
        with atomic_path(path) as tmp:
            hdul.writeto(tmp, overwrite=True)


def missing_references(output: str) -> list[tuple[str, str]]:
    """(KEYWORD, resolved path) pairs from calcos's "reference files are missing" report."""
    lines = output.splitlines()
    try:
        start = next(i for i, ln in enumerate(lines) if "reference files are missing" in ln)
    except StopIteration:
        return []
    found = []
    for ln in lines[start + 1:]:
        m = _MISSING_RE.match(ln)
        if not m:
            break
        found.append((m.group(1).upper(), m.group(2)))
    return found


def run_calcos(main_input: Path, outdir: Path, *, site: object | None = None,
               environ: Mapping[str, str] | None = None, log: LogSink | None = None,
               timeout: float | None = None) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    env = reference_environment(dict(os.environ if environ is None else environ), "lref", site)
    staged = stage_cos_inputs(main_input, outdir)
    started = time.time()
    if log:
        log("info", f"running calcos {staged.name} (lref={env.get('lref', '(unset)')})")
    argv = [sys.executable, "-c", "import sys, calcos; sys.exit(calcos.main(sys.argv[1:]))", "-o", str(outdir),
            staged.name]
    result = run(argv, cwd=outdir, env=env, timeout=timeout)
    include_log(log, result.output, "calcos output")
    if result.returncode != 0:
        missing = missing_references(result.output)
        if missing:
            shown = ", ".join(f"{k} ({Path(p).name})" for k, p in missing[:4])
            more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
            raise MissingReference(f"calcos: {len(missing)} reference file(s) missing: {shown}{more}; first: "
                                   f"{missing[0][0]} -> {missing[0][1]}", keyword=missing[0][0],
                                   path=Path(missing[0][1]))
        code = ExitCode.KILLED if result.returncode < 0 else ExitCode.INTERNAL
        raise OwlError(f"calcos exit {result.returncode}: {last_error_line(result.output)}", code=code)
    products = sorted(p for p in outdir.glob("*.fits")
                      if p.name[:-5].split("_", 1)[-1] in PRODUCT_SUFFIXES and p.stat().st_mtime >= started - 1)
    stamp_products(products, "calcos")
    return products
