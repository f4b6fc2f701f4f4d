"""``owl check before|after``: the BC and AC rule tables on files, outside the pipeline."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pipeline.cli.common import config_option, echo_json, json_option, reports_errors, site_option
from pipeline.core.exitcodes import ExitCode


def _finish(failures: dict[Path, list], as_json: bool) -> None:
    if as_json:
        echo_json({str(path): [f.__dict__ for f in found] for path, found in failures.items()})
    else:
        for path, found in failures.items():
            click.echo(f"{path.name}: {'ok' if not found else f'{len(found)} failure(s)'}")
            for f in found:
                click.echo(f"  {f.line()}")
    if any(failures.values()):
        sys.exit(int(ExitCode.CHECK_FAILED))


def _list(rules: tuple) -> None:
    for rule in rules:
        click.echo(f"{rule.name:<20} {rule.description}")


@click.group()
def check() -> None:
    """Run the before/after-calibration checks (what owl-bc and owl-ac run) on files."""


@check.command()
@click.argument("raws", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--list-rules", is_flag=True, help="list the rules and exit")
@json_option
@site_option
@config_option
@reports_errors
def before(raws: tuple[Path, ...], list_rules: bool, as_json: bool, site_dir: str | None,
           config_file: str | None) -> None:
    """Check RAW files before calibration: headers, switches, every needed reference in the CRDS cache
    ($CRDS_PATH, else the site's). Exit status 22 if any rule fails."""
    from pipeline.cli.bestrefs import site_if_any
    from pipeline.science import refs
    from pipeline.science.checks import bc

    if list_rules:
        _list(bc.RULES)
        return
    cache = refs.cache_root(site_if_any(site_dir, config_file))
    _finish({raw: bc.check_raw(raw, cache) for raw in raws}, as_json)


@check.command()
@click.argument("products", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--list-rules", is_flag=True, help="list the rules and exit")
@click.option("--max-flagged-fraction", type=click.FloatRange(0, 1),
              help="ceiling on seriously flagged pixels (default: the site's checks.max_flagged_fraction)")
@json_option
@site_option
@config_option
@reports_errors
def after(products: tuple[Path, ...], list_rules: bool, max_flagged_fraction: float | None, as_json: bool,
          site_dir: str | None, config_file: str | None) -> None:
    """Check calibrated PRODUCTS (_flt, _flc, _crj, _drz, _x1d ...). The raw beside each product, if
    present, tells which switches were PERFORM. Exit status 22 if any rule fails."""
    from pipeline.core.config import Checks, load_site
    from pipeline.core.errors import ConfigError
    from pipeline.science.checks import ac

    if list_rules:
        _list(ac.RULES)
        return
    if max_flagged_fraction is None:
        try:
            max_flagged_fraction = load_site(site_dir, config_file).checks.max_flagged_fraction
        except ConfigError:
            if site_dir or config_file:
                raise
            max_flagged_fraction = Checks().max_flagged_fraction
    found = {}
    for product in products:
        raw = product.with_name(product.name.split("_", 1)[0] + "_raw.fits")
        found[product] = ac.check_product(product, raw=raw, max_flagged_fraction=max_flagged_fraction)
    _finish(found, as_json)
