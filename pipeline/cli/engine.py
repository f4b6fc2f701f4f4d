"""``owl calibrate --engine compare`` and ``owl check engine DIR``: the built-in engine against hstcal.

The comparison itself is :mod:`pipeline.science.calib.compare`; this module prints it and sets the exit
status (22, CHECK_FAILED, when any extension differs beyond the tolerance).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from pipeline.cli.common import echo_json, json_option, open_site, reports_errors
from pipeline.core.exitcodes import ExitCode

tolerance_option = click.option(
    "--tolerance", type=click.FloatRange(min=0.0), default=0.0, show_default=True,
    help="largest relative difference accepted in SCI/ERR pixels and numeric header keywords (DQ bits "
         "and other keywords must agree exactly)")


def run_comparison(inputs: Sequence[Path], workdir: Path, tolerance: float, site_dir: str | None,
                   as_json: bool, quiet: bool = False) -> None:
    """Compare the engines on ``inputs`` under ``workdir``, print the table, exit 22 beyond ``tolerance``."""
    from pipeline.science.calib.api import log_sink
    from pipeline.science.calib.compare import compare_all

    site = open_site(site_dir) if site_dir or os.environ.get("OWL_SITE") else None
    log = log_sink(None, None if (quiet or as_json) else (lambda line: click.echo(line, err=True)))
    results = compare_all(list(inputs), workdir, site=site, log=log)
    if as_json:
        echo_json({"tolerance": tolerance, "results": [r.as_dict(tolerance) for r in results]})
    else:
        for r in results:
            click.echo(f"{r.input}: {'identical within tolerance' if r.ok(tolerance) else 'DIFFERENT'}")
            for d in r.diffs:
                click.echo(f"  {'  ' if d.within(tolerance) else '! '}{d.line()}")
    if not all(r.ok(tolerance) for r in results):
        sys.exit(int(ExitCode.CHECK_FAILED))


@click.command("engine")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="where both engines write their products (default: DIRECTORY/engine-compare)")
@tolerance_option
@click.option("--site", "site_dir", type=click.Path(file_okay=False), default=None,
              help="site whose CRDS cache resolves iref$/jref$ when those variables are unset")
@click.option("-q", "--quiet", is_flag=True, help="do not echo the calibration logs")
@json_option
@reports_errors
def engine_cmd(directory: Path, workdir: Path | None, tolerance: float, site_dir: str | None, quiet: bool,
               as_json: bool) -> None:
    """Calibrate every association and lone raw in DIRECTORY with the built-in engine and with hstcal
    (calwf3.e/calacs.e on PATH) and compare the products extension by extension, headers included.

    Prints per extension the pixels that differ, the largest relative difference (SCI/ERR), the DQ
    bits that differ and the header keywords that differ. Exit status 22 if anything differs beyond
    --tolerance.
    """
    from pipeline.science.calib.compare import inputs_in

    run_comparison(inputs_in(directory), workdir or directory / "engine-compare", tolerance, site_dir, as_json,
                   quiet)
