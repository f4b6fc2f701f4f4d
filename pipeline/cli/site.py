"""``owl init`` and ``owl config``: create a site and show its effective configuration."""

from __future__ import annotations

import click

from pipeline.cli.common import config_option, echo_json, open_site, reports_errors, site_option
from pipeline.core.config import init_site


@click.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--name", help="site name written into owl.toml")
@reports_errors
def init(directory: str, name: str | None) -> None:
    """Create a site in DIRECTORY: owl.toml, its areas, the OSF database and the archive's catalogue."""
    from pipeline.archive.tables import create_catalogue
    from pipeline.core.osf import Blackboard
    from pipeline.core.siteid import site_identity

    site = init_site(directory, name=name)
    bb = Blackboard(site.database_url, site.database.busy_timeout)
    create_catalogue(site)  # here, so that no archiving node pays SQLAlchemy's import to create it
    click.echo(f"site {site.name!r} ready in {site.root}")
    click.echo(f"  configuration: {site.config_file}")
    click.echo(f"  database:      {site.database_url}")
    click.echo(f"  identity:      {site_identity(bb.engine)}   (OwlSite of every HTCondor job it submits)")
    click.echo(f"next: export OWL_SITE={site.root}   (or pass --site {site.root})")


@click.group()
def config() -> None:
    """Inspect a site's configuration."""


@config.command("show")
@site_option
@config_option
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of TOML-like text")
@reports_errors
def show(site_dir: str | None, config_file: str | None, as_json: bool) -> None:
    """Print the effective configuration (file + OWL_* overrides) with resolved paths and the site identity."""
    from sqlalchemy.exc import SQLAlchemyError

    from pipeline.core.db import engine_for
    from pipeline.core.siteid import site_identity

    site = open_site(site_dir, config_file)
    data = {key: value for key, value in site.as_json().items() if key != "instruments"}
    data["database_url"] = site.database_url
    try:
        data["site_identity"] = site_identity(engine_for(site.database_url, site.database.busy_timeout))
    except SQLAlchemyError as exc:  # the configuration is still worth showing when its database is not
        data["site_identity"] = f"unavailable: {str(getattr(exc, 'orig', None) or exc).splitlines()[0]}"
    data["instruments"] = sorted(site.instruments)
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        if isinstance(value, dict):
            click.echo(f"[{key}]")
            for k, v in value.items():
                click.echo(f"  {k} = {v}")
        else:
            click.echo(f"{key} = {value}")
