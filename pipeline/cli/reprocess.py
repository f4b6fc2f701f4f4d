"""``owl reprocess`` (select and run a reprocessing campaign) and ``owl request`` (prioritise a dataset)."""

from __future__ import annotations

import datetime as dt
import sys

import click

from pipeline.cli.common import (
    ProgressDisplay,
    config_option,
    echo_json,
    json_option,
    open_site,
    reports_errors,
    site_option,
)


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(highlight=False, stderr=stderr)


def _instruments(values: tuple[str, ...]) -> list[str]:
    return sorted({v.strip().upper() for item in values for v in item.split(",") if v.strip()})


def _since(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date like 2012-06-01", param_hint="--since") from None


def _select(site, new_context, old_context, instruments, since, quiet: bool):
    """The selection, with a progress bar on stderr when someone watches."""
    from pipeline.orchestration.reprocess import select_affected

    if quiet or not sys.stderr.isatty():
        return select_affected(site, new_context, old_context=old_context, instruments=instruments, since=since)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("selecting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=_console(stderr=True), transient=True) as bar:
        task = bar.add_task("select", total=None)
        return select_affected(site, new_context, old_context=old_context, instruments=instruments, since=since,
                               progress=lambda done, total: bar.update(task, completed=done, total=total))


def _print_selection(sel, old_context: str | None) -> None:
    changed = sorted({f"{inst} {t.upper()}" for per in sel.changed_types.values() for inst, ts in per.items()
                      for t in ts})
    olds = ", ".join(sorted(sel.changed_types)) or "-"
    click.echo(f"new context {sel.new_context}; old context {olds}"
               + ("" if old_context else " (each exposure's catalogued CRDS_CTX)"))
    click.echo(f"rules that differ: {', '.join(changed) or 'none'}")
    if sel.affected:
        click.echo(f"{'dataset':<10} {'association':<11} {'instrument':<10} {'old context':<14} {'type':<9} old -> new")
    for a in sel.affected:
        for i, c in enumerate(a.changes):
            lead = (f"{a.dataset:<10} {a.unit:<11} {a.instrument:<10} {a.old_context:<14}" if i == 0
                    else " " * 48)
            why = f"  ({c.reason})" if c.reason else ""
            click.echo(f"{lead} {c.reftype.upper():<9} {c.old} -> {c.new}{why}")
    for reason, names in sel.skipped.items():
        shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
        click.echo(f"skipped {len(names)}: {reason}: {shown}")
    click.echo(f"{len(sel.affected)} of {sel.considered} exposure(s) considered are affected, in "
               f"{len(sel.units)} DAG(s); {sel.lookups} lookup pair(s), {sel.spared} spared by USEAFTER, "
               f"{sel.seconds:.1f} s")


class CampaignDisplay(ProgressDisplay):
    """A bar over the campaign's datasets, a line per submission and outcome."""

    def __init__(self, console, name: str, total: int) -> None:
        super().__init__(console, f"campaign {name}", total)
        self.name = name

    def update(self, report) -> None:
        flying = ", ".join(report.in_flight[:3]) + (" ..." if len(report.in_flight) > 3 else "")
        self.progress.update(self.task, completed=report.counts["done"] + report.counts["failed"],
                             description=f"campaign {self.name}" + (f": running {flying}" if flying else ""))


def _print_report(report) -> None:
    c = report.counts
    click.echo(f"campaign {report.name} ({report.new_context}): {report.selected} selected "
               f"({report.exposures} exposures), {c['done']} done, {c['failed']} failed, "
               f"{c['submitted']} in flight, {c['pending']} pending; {report.state}")
    for dataset, why in report.failed:
        click.echo(f"  failed {dataset}: {why}")
    if c["pending"] or c["submitted"]:
        click.echo("  rerun the same 'owl reprocess' to continue the campaign")


@click.command()
@click.option("--new-context", required=True, metavar="hst_NNNN.pmap", help="the CRDS context to reprocess with")
@click.option("--old-context", metavar="hst_NNNN.pmap",
              help="compare against this context (default: the one each exposure was processed with)")
@click.option("--instrument", "instruments", multiple=True, metavar="NAME",
              help="only these instruments (repeatable or comma list, e.g. wfc3,acs)")
@click.option("--since", help="only exposures observed on or after this date (ISO, e.g. 2012-06-01)")
@click.option("--dry-run", is_flag=True, help="list the affected datasets and what changes; submit nothing")
@click.option("--name", help="campaign name (default: reprocess-<new context>); a rerun continues it")
@click.option("--max-in-flight", type=click.IntRange(1), help="DAGs submitted at once (default: "
              "throttles.max_dags_in_flight)")
@click.option("--executor", type=click.Choice(["local", "condor"]), help="override the site's executor.kind")
@click.option("--workers", type=click.IntRange(1, 256), help="local executor worker count")
@site_option
@config_option
@json_option
@reports_errors
def reprocess(new_context, old_context, instruments, since, dry_run, name, max_in_flight, executor, workers,
              site_dir, config_file, as_json) -> None:
    """Reprocess exactly the archived datasets whose best references a new CRDS context changes.

    Every archived exposure's references are recomputed from its catalogued header under the new
    context and under the one it was processed with; the affected exposures' associations are
    reprocessed from their archived pods (workflow 'reprocess') as a named campaign, below live
    data in priority, at most --max-in-flight DAGs at a time. A rerun continues the campaign and
    never submits a dataset twice. Exit status: 0 when nothing failed, 1 otherwise.
    """
    from pipeline.orchestration.campaign import CampaignRun, CampaignStore, check_context, default_name

    site = open_site(site_dir, config_file)
    scope = {"old_context": old_context, "instruments": _instruments(instruments), "since": _since(since)}
    if dry_run:
        sel = _select(site, new_context, old_context, scope["instruments"], scope["since"], as_json)
        if as_json:
            echo_json(sel.as_dict())
        else:
            _print_selection(sel, old_context)
        return
    store = CampaignStore(site)
    name = name or default_name(new_context)
    campaign = store.find(name)
    if campaign is not None:
        if campaign.new_context != new_context or campaign.scope() != scope:
            raise click.UsageError(f"campaign {name!r} exists for {campaign.new_context} with {campaign.scope()}; "
                                   "rerun it with the same options or choose another --name")
        if not as_json:
            click.echo(f"continuing campaign {name}")
    else:
        check_context(site, new_context)  # before selecting: a campaign RF would not honour is refused early
        sel = _select(site, new_context, old_context, scope["instruments"], scope["since"], as_json)
        campaign = store.create(name, sel, **scope)
        if not as_json:
            _print_selection(sel, old_context)
            click.echo(f"campaign {name}: {len(sel.units)} DAG(s) to run")
    run = CampaignRun(site, campaign, max_in_flight=max_in_flight, executor=executor, workers=workers)
    if as_json:
        report = run.run()
        echo_json(report.as_dict())
    else:
        console = _console()
        display = CampaignDisplay(console, name, len(store.datasets(campaign)))
        run.say = display.say
        with display:
            try:
                report = run.run(progress=display.update)
            except KeyboardInterrupt:
                display.say("[yellow]interrupted: running nodes stopped; rerun to continue the campaign[/yellow]")
                sys.exit(130)
        _print_report(report)
    sys.exit(1 if report.counts["failed"] else 0)


@click.command()
@click.argument("dataset")
@site_option
@config_option
@json_option
@reports_errors
def request(dataset, site_dir, config_file, as_json) -> None:
    """Prioritise DATASET: move it to the front of its reprocessing campaign, or raise the priority of its
    queued DAG (or OSF row) to the site's priorities.requested."""
    from pipeline.orchestration.campaign import request as do_request

    lines = do_request(open_site(site_dir, config_file), dataset)
    if as_json:
        echo_json({"dataset": dataset, "actions": lines})
    else:
        for line in lines:
            click.echo(line)
