"""``owl calibrate``: calibrate raw exposures or associations from the command line."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from pipeline.cli.common import echo_json, json_option, open_site, reports_errors
from pipeline.cli.engine import run_comparison, tolerance_option
from pipeline.core import startup
from pipeline.core.heap import keep_freed_memory
from pipeline.core.procexit import skip_exit_collection
from pipeline.science.calib.api import ENGINES, calibrate


@click.command("calibrate")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--engine", type=click.Choice((*ENGINES, "compare")), default=None,
              help="builtin (numpy engine), hstcal (calwf3.e/calacs.e on PATH), auto "
                   "(hstcal when installed), or compare (both, products and headers compared; exit 22 beyond "
                   "--tolerance); default: the site's calibration.engine, else auto")
@tolerance_option
@click.option("--outdir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="directory for the products")
@click.option("--site", "site_dir", type=click.Path(file_okay=False), default=None,
              help="site whose CRDS cache resolves iref$/jref$/lref$ when those variables are unset "
                   "(default: $OWL_SITE if set, else none)")
@click.option("--trailer", type=click.Path(dir_okay=False), default=None, help="append the log to this trailer")
@click.option("-q", "--quiet", is_flag=True, help="do not echo the calibration log")
@json_option
@reports_errors
def calibrate_cmd(inputs: tuple[str, ...], engine: str | None, tolerance: float, outdir: str,
                  site_dir: str | None, trailer: str | None, quiet: bool, as_json: bool) -> None:
    """Calibrate RAW files (``*_raw.fits``) or associations (``*_asn.fits``).

    Reference keywords such as ``iref$name.fits`` are resolved as hstcal resolves them: from the
    ``iref``/``jref``/``lref`` environment variables (which must end in '/'), else from the site's
    CRDS cache. Exit codes follow the owlpipe table (21: missing reference, 23: unsupported mode).
    """
    skip_exit_collection()   # ~0.3 s of the whole process at exit (pipeline/core/procexit.py)
    if startup.console_script():   # the command as a process, not a library call (tests, notebooks)
        keep_freed_memory()        # full-frame temporaries reuse freed pages (pipeline/core/heap.py)
    if engine == "compare":
        run_comparison([Path(p) for p in inputs], Path(outdir), tolerance, site_dir, as_json, quiet)
        return
    site = open_site(site_dir) if site_dir or os.environ.get("OWL_SITE") else None
    chosen = engine or (site.calibration.engine if site is not None else "auto")
    started = time.monotonic()
    products = calibrate([Path(p) for p in inputs], Path(outdir), engine=chosen, site=site, trailer=trailer,
                         echo=None if (quiet or as_json) else (lambda line: click.echo(line, err=True)))
    if as_json:
        echo_json({"products": [str(p) for p in products], "engine": chosen,
                   "seconds": round(time.monotonic() - started, 3)})
    else:
        for p in products:
            click.echo(str(p))
