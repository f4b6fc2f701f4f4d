"""``owl osf``: the OPUS OSF tools (osf_create / osf_test / osf_update / osf_delete) on our blackboard."""

from __future__ import annotations

import sys
import time

import click

from pipeline.cli.common import config_option, echo_json, json_option, open_site, reports_errors, site_option
from pipeline.core.osf import COLUMN_STAGES, COLUMNS, LETTERS, Blackboard, OSFEntry

_LETTER_HELP = ", ".join(f"{k}={v}" for k, v in LETTERS.items())
_FIELDS = ("time", "status", "dataset", "data_id", "dcf_num", "command", "parent", "workflow", "priority")


def _board(site_dir: str | None, config_file: str | None) -> Blackboard:
    site = open_site(site_dir, config_file)
    return Blackboard(site.database_url, site.database.busy_timeout)


def _field(entry: OSFEntry, name: str) -> str:
    if name == "time":
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(entry.updated))
    value = getattr(entry, name)
    return "" if value is None else str(value)


_OSF_HELP = (
    "Observation Status File blackboard: one row per dataset, one letter per stage column.\n\n\b\n"
    "Columns: " + " ".join(f"{c}={s}" for c, s in COLUMN_STAGES.items()) + "\n"
    "Letters: " + _LETTER_HELP
)


@click.group(help=_OSF_HELP)
def osf() -> None:
    pass


def _filters(column: str | None, status: str | None) -> tuple[str | None, str | None]:
    if (column is None) != (status is None):
        raise click.UsageError("filter with both -c COLUMN and -s LETTERS, e.g. -c CA -s e")
    return column.upper() if column else None, status


@osf.command("list")
@site_option
@config_option
@click.option("-c", "--column", help="stage column to filter on (e.g. CA)")
@click.option("-s", "--status", help="letter(s) the column must hold (e.g. 'ex')")
@click.option("--instrument", "data_id", help="data_id class (wf3, acs, cos, ...)")
@click.option("--opus", is_flag=True, help="print rows as OPUS OSF names")
@json_option
@reports_errors
def list_(site_dir, config_file, column, status, data_id, opus, as_json) -> None:
    """List OSF rows, optionally filtered by column letter and instrument."""
    column, status = _filters(column, status)
    entries = _board(site_dir, config_file).query(column=column, letter=status, data_id=data_id)
    if as_json:
        echo_json([e.as_dict() for e in entries])
    elif opus:
        for e in entries:
            click.echo(e.opus_name())
    else:
        click.echo(f"{'dataset':<10} {'id':<4} {' '.join(COLUMNS)}")
        for e in entries:
            click.echo(f"{e.dataset:<10} {e.data_id:<4} {'  '.join(e.status)}")
        click.echo(f"{len(entries)} dataset(s)")


@osf.command()
@click.argument("dataset")
@site_option
@config_option
@json_option
@reports_errors
def show(dataset, site_dir, config_file, as_json) -> None:
    """Show one dataset's row: every column with its letter and meaning."""
    bb = _board(site_dir, config_file)
    entry = bb.get(dataset)
    members = bb.members(entry.dataset)
    if as_json:
        echo_json({**entry.as_dict(), "members": members, "opus_name": entry.opus_name()})
        return
    click.echo(f"{entry.dataset}  ({entry.data_id}, dcf {entry.dcf_num}, workflow {entry.workflow or '-'}, "
               f"priority {entry.priority})")
    click.echo(f"  OPUS name: {entry.opus_name()}")
    if entry.parent:
        click.echo(f"  association: {entry.parent}")
    if members:
        click.echo(f"  members: {' '.join(members)}")
    if entry.command:
        click.echo(f"  command: {entry.command}")
    for col, letter in zip(COLUMNS, entry.status, strict=True):
        click.echo(f"  {col:<3} {COLUMN_STAGES[col]:<12} {letter}  {LETTERS[letter]}")


@osf.command()
@site_option
@config_option
@click.option("-f", "--dataset", help="dataset to test (default: all)")
@click.option("-c", "--column", help="stage column")
@click.option("-s", "--status", help="letter(s) the column must hold")
@click.option("-p", "--print", "fields", multiple=True, type=click.Choice(_FIELDS),
              help="fields to print for each match (repeatable); default: dataset")
@reports_errors
def test(site_dir, config_file, dataset, column, status, fields) -> None:
    """osf_test: exit 0 and print matches if any row matches, exit 1 if none."""
    column, status = _filters(column, status)
    entries = _board(site_dir, config_file).query(
        column=column, letter=status, datasets=[dataset] if dataset else None)
    for e in entries:
        click.echo(" ".join(_field(e, f) for f in (fields or ("dataset",))))
    sys.exit(0 if entries else 1)


@osf.command()
@click.argument("dataset")
@site_option
@config_option
@click.option("--data-id", help="instrument class (default: from the dataset name)")
@click.option("--parent", help="association this exposure belongs to")
@click.option("-s", "--status", help=f"initial status string ({len(COLUMNS)} letters)")
@reports_errors
def create(dataset, site_dir, config_file, data_id, parent, status) -> None:
    """osf_create: register a dataset (does nothing if it exists)."""
    created = _board(site_dir, config_file).create(dataset, data_id, parent=parent, status=status,
                                                   who="owl osf create")
    click.echo(f"{dataset}: {'created' if created else 'already registered; unchanged'}")


@osf.command()
@click.argument("dataset")
@site_option
@config_option
@click.option("-c", "--column", help="column to change; with -s LETTER")
@click.option("-s", "--status", help="new letter (with -c) or a full status string")
@click.option("--expect", help="only change the column if it currently holds one of these letters")
@click.option("-m", "--command", "command", help="set the OSF command field (e.g. halt)")
@reports_errors
def update(dataset, site_dir, config_file, column, status, expect, command) -> None:
    """osf_update: change a column, the whole status, or the command field; every change is in the history."""
    bb = _board(site_dir, config_file)
    if status is None and command is None:
        raise click.UsageError("nothing to update: give -c COLUMN -s LETTER, -s STATUS or -m COMMAND")
    if status is not None and column:
        if expect:
            bb.transition(dataset, column, expect, status, who="owl osf update", message="operator update")
            old = expect
        else:
            old = bb.set_letter(dataset, column, status, who="owl osf update")
        click.echo(f"{dataset}: {column.upper()} {old} -> {status}")
    elif status is not None:
        bb.set_status(dataset, status, who="owl osf update")
        click.echo(f"{dataset}: status -> {status}")
    if command is not None:
        bb.set_command(dataset, command, who="owl osf update")
        click.echo(f"{dataset}: command -> {command!r}")


@osf.command()
@click.argument("dataset")
@site_option
@config_option
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@reports_errors
def delete(dataset, site_dir, config_file, yes) -> None:
    """osf_delete: remove a dataset's row (its history is kept)."""
    bb = _board(site_dir, config_file)
    entry = bb.get(dataset)
    if not yes:
        click.confirm(f"delete OSF row {entry.dataset} ({entry.status})?", abort=True)
    bb.delete(entry.dataset, who="owl osf delete")
    click.echo(f"{entry.dataset}: deleted")


@osf.command()
@click.argument("dataset")
@site_option
@config_option
@json_option
@reports_errors
def history(dataset, site_dir, config_file, as_json) -> None:
    """Every transition of a dataset: when, which column, old->new, exit code, who, where, why."""
    rows = _board(site_dir, config_file).history(dataset)
    if as_json:
        echo_json([r.__dict__ for r in rows])
        return
    for r in rows:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.time))
        change = f"{r.column or '--':<3}{r.old or '.'}->{r.new or '.'}" if r.column else f"--  {r.message}"
        code = "" if r.exit_code is None else f" rc={r.exit_code}"
        msg = f"  {r.message}" if r.column and r.message else ""
        click.echo(f"{stamp}  {change:<16}{code:<7} {r.who} @{r.host}:{r.pid}{msg}")
    if not rows:
        click.echo(f"no history for {dataset}")


@osf.command()
@site_option
@config_option
@reports_errors
def reap(site_dir, config_file) -> None:
    """Mark x every column held at p by a process of this host that has died."""
    reaped = _board(site_dir, config_file).reap(who="owl osf reap")
    for dataset, column in reaped:
        click.echo(f"{dataset}: {column} p -> x")
    click.echo(f"{len(reaped)} crashed column(s) found")


from pipeline.cli.hook import hook  # noqa: E402  (DAG node hooks, owned by orchestration)

osf.add_command(hook)
