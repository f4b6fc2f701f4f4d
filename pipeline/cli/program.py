"""``owl program``: PIs and exclusive periods of observing programs."""

from __future__ import annotations

import click

from pipeline.cli.common import config_option, echo_json, json_option, open_site, reports_errors, site_option


@click.group()
def program() -> None:
    """Programs: their PI and exclusive-access period (data are public after observation + N months)."""


@program.command(name="set")
@click.argument("program_id", metavar="PROGRAM")
@click.option("--pi", help="the PI's user name (tokens of this user read the program's exclusive data)")
@click.option("--exclusive-months", type=click.IntRange(0, 120), help="exclusive period (default 6)")
@click.option("--release-now", is_flag=True, help="make every dataset of the program public today")
@site_option
@config_option
@json_option
@reports_errors
def set_(program_id, pi, exclusive_months, release_now, site_dir, config_file, as_json) -> None:
    """Set PROGRAM's PI, exclusive period, or release it now."""
    from pipeline.service.access import ProgramStore

    if release_now and exclusive_months is not None:
        raise click.UsageError("give --exclusive-months or --release-now, not both")
    if pi is None and exclusive_months is None and not release_now:
        raise click.UsageError("nothing to set: give --pi, --exclusive-months or --release-now")
    if not program_id.isalnum() or len(program_id) > 16:
        raise click.BadParameter(f"{program_id!r} is not a program id (letters and digits)", param_hint="PROGRAM")
    prog = ProgramStore(open_site(site_dir, config_file)).set(program_id, pi=pi, exclusive_months=exclusive_months,
                                                               release_now=release_now)
    if as_json:
        echo_json(prog.as_dict())
    else:
        click.echo(f"program {prog.program}: PI {prog.pi or '-'}, exclusive {prog.exclusive_months} month(s)"
                   + (f", released {prog.released}" if prog.released else ""))


@program.command(name="list")
@site_option
@config_option
@json_option
@reports_errors
def list_(site_dir, config_file, as_json) -> None:
    """Programs with a PI or exclusive period set."""
    from pipeline.service.access import ProgramStore

    progs = ProgramStore(open_site(site_dir, config_file)).all()
    if as_json:
        echo_json([p.as_dict() for p in progs])
        return
    for p in progs:
        click.echo(f"{p.program:<8} PI {p.pi or '-':<20} exclusive {p.exclusive_months:>3} month(s)"
                   + (f"  released {p.released}" if p.released else ""))
