"""``owl watch``, ``owl submit``, ``owl retry`` and ``owl status``: the operator's side of the controller."""

from __future__ import annotations

import signal
import sys
import time

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
from pipeline.core.osf import COLUMNS

executor_option = click.option("--executor", type=click.Choice(["local", "condor"]),
                               help="override the site's executor.kind")
workers_option = click.option("--workers", type=click.IntRange(1, 256), help="local executor worker count")


class RunDisplay(ProgressDisplay):
    """Live progress of local DAG runs: a bar over all nodes, one line per node outcome."""

    def __init__(self, console) -> None:
        super().__init__(console, "nodes", 0)
        self.dags: dict[int, object] = {}
        self.failed = 0

    def __call__(self, event: str, dag, node) -> None:
        from pipeline.core.exitcodes import meaning
        from pipeline.orchestration.executors.local import State, node_log_tail

        self.dags[id(dag)] = dag
        out = self.progress.console
        if event == "done":
            out.print(f"[green]done[/green]    {dag.dataset} {node.name} ({time.monotonic() - node.started:.1f} s)")
        elif event == "skipped":
            out.print(f"[green]done[/green]    {dag.dataset} {node.name} (already complete)")
        elif event == "retry":
            out.print(f"[yellow]retry[/yellow]   {dag.dataset} {node.name}: exit {node.exit_code} "
                      f"({meaning(node.exit_code or 0)}); attempt {node.retry + 1} of {node.node.stage.retries + 1}")
        elif event == "failed" and node.state is State.FAILED:
            self.failed += 1
            out.print(f"[bold red]FAILED[/bold red]  {dag.dataset} {node.name}: exit {node.exit_code} "
                      f"({meaning(node.exit_code or 0)}); log {dag.files.node_error(node.name)}")
            for line in node_log_tail(dag.files, node.name):
                out.print(f"          [dim]{line}[/dim]")
        elif event == "dag-done":
            verdict = "[green]complete[/green]" if dag.succeeded else "[red]incomplete[/red]"
            out.print(f"DAG {dag.dataset}: {verdict} in {dag.finished - dag.started:.1f} s")
        runs = list(self.dags.values())
        running = [f"{n.name} {d.dataset}" for d in runs for n in d.nodes.values() if n.state is State.RUNNING]
        self.progress.update(self.task, total=sum(len(d.nodes) for d in runs),
                             completed=sum(d.count(State.DONE, State.FAILED, State.FUTILE) for d in runs),
                             description=("running " + ", ".join(running[:3])) if running else "nodes")


def _console():
    from rich.console import Console

    return Console(highlight=False)


def _controller(site_dir, config_file, executor=None, workers=None, workflow="new_science"):
    from pipeline.orchestration.controller import Controller

    site = open_site(site_dir, config_file)
    return Controller(site, executor=executor, workers=workers, workflow=workflow)


def run_with_display(ctl, console, action) -> int:
    """Run ``action`` (which drives the local executor) under a progress display; Ctrl-C stops cleanly."""
    display = RunDisplay(console)
    ctl.listener = display
    ctl.say = display.say

    def terminated(signum, _frame):  # a service manager's stop: the same clean stop as Ctrl-C
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminated)
    with display:
        try:
            action()
        except KeyboardInterrupt:
            display.say("[yellow]interrupted: running nodes stopped; their columns are x or w. "
                        "Rerun to resume.[/yellow]")
            ctl.stop()
            return 130
    return 1 if display.failed else 0


@click.command()
@site_option
@config_option
@click.option("--once", is_flag=True, help="handle what is in the inbox now, wait for local DAGs, and return")
@click.option("--interval", type=float, help="seconds between inbox polls (default: watch.interval)")
@click.option("--workflow", default="new_science", show_default=True,
              help="workflow for received associations (name or file); its trigger stage receives DANs")
@executor_option
@workers_option
@reports_errors
def watch(site_dir, config_file, once, interval, workflow, executor, workers) -> None:
    """Watch the inbox: receive each new DAN and submit one DAG per complete association.

    Every submission is recorded in the site database before it runs, so a restarted watcher or a
    DAN arriving twice never submits an association twice.
    """
    console = _console()
    ctl = _controller(site_dir, config_file, executor, workers, workflow)
    console.print(f"watching {ctl.site.areas.inbox} ({ctl.kind} executor"
                  + ("" if once else f", every {interval or ctl.site.watch.interval:g} s; Ctrl-C to stop") + ")")
    code = run_with_display(ctl, console, lambda: ctl.watch(once=once, interval=interval))
    from pipeline.orchestration.executors.condor import ForeignJob

    foreign = [exc for exc in ctl.start_failures if isinstance(exc, ForeignJob)]
    sys.exit(code or (int(foreign[0].code) if foreign else 0))


def _show_row(console, ctl, dataset: str) -> None:
    from pipeline.cli.statusview import render
    from pipeline.core.status import Filters, grid

    render(grid(ctl.bb, Filters(association=dataset), limit=200), console)


@click.command()
@click.argument("dataset")
@site_option
@config_option
@click.option("--workflow", default="new_science", show_default=True,
              help="workflow name (workflows/*.toml) or path to a workflow file")
@click.option("--priority", type=int, help="DAG priority (default: the site's priority for the workflow)")
@click.option("--fresh", is_flag=True, help="reset the workflow's columns first (reprocess a completed dataset)")
@click.option("--fits", "fits_dir", type=click.Path(exists=True, file_okay=False),
              help="raw FITS (<asn>_asn.fits, <exp>_raw.fits) to recalibrate: registers the dataset and "
                   "stages the files (use with --workflow recalibrate)")
@executor_option
@workers_option
@reports_errors
def submit(dataset, site_dir, config_file, workflow, priority, fresh, fits_dir, executor, workers) -> None:
    """Submit one association's DAG; the local executor runs it now, with a progress display."""
    from pathlib import Path

    console = _console()
    ctl = _controller(site_dir, config_file, executor, workers)
    if fits_dir:
        members = ctl.stage_fits(dataset, Path(fits_dir))
        console.print(f"{dataset}: staged raw FITS from {fits_dir}" + (f" ({len(members)} members)" if members
                                                                       else " (singleton)"))
    sub = ctl.submit(dataset, workflow, priority=priority, fresh=fresh)
    console.print(f"{sub.dataset}: submission {sub.id}, workflow {ctl.workflow(sub.workflow).name}, "
                  f"priority {sub.priority}")
    _run_submission(console, ctl, sub.dataset)


def _run_submission(console, ctl, dataset: str) -> None:
    if ctl.kind == "condor":
        for started in ctl.dispatch(raise_errors=True):
            console.print(f"{started.dataset}: {started.message}; follow with 'owl dag status {started.dataset}'")
        return
    code = run_with_display(ctl, console, ctl.run_local)
    _show_row(console, ctl, dataset)
    sys.exit(code)


@click.command()
@click.argument("dataset")
@site_option
@config_option
@click.option("--from", "from_stage", help="also rerun this stage and every stage after it (e.g. CA)")
@click.option("--workflow", help="workflow to rerun (default: the one the dataset last ran)")
@executor_option
@workers_option
@reports_errors
def retry(dataset, site_dir, config_file, from_stage, workflow, executor, workers) -> None:
    """Reset failed (e, x) columns, or every column from a stage on, and submit the DAG again."""
    from pipeline.orchestration.operator import retry as do_retry

    console = _console()
    ctl = _controller(site_dir, config_file, executor, workers)
    done = do_retry(ctl, dataset, from_stage, workflow)
    changed, sub = done.reset, done.submission
    console.print(f"{done.dataset}: reset {len(changed)} column(s) to '_'" + (f": {', '.join(changed)}" if changed
                                                                            else " (nothing failed)"))
    console.print(f"{sub.dataset}: submission {sub.id}, workflow {ctl.workflow(sub.workflow).name}")
    _run_submission(console, ctl, sub.dataset)


@click.command()
@site_option
@config_option
@click.option("-c", "--column", type=click.Choice(COLUMNS, case_sensitive=False), help="stage column to filter on")
@click.option("-s", "--status", "letters", help="letter(s) that column must hold, e.g. 'ex'")
@click.option("--instrument", "data_id", help="data_id class (wf3, acs, ...)")
@click.option("--workflow", help="only datasets of this workflow")
@click.option("--association", help="one association and its members")
@click.option("--top", is_flag=True, help="associations and singletons only (no member rows)")
@click.option("--limit", type=click.IntRange(0, 100000), default=50, show_default=True, help="rows per page")
@click.option("--page", type=click.IntRange(1), default=1, show_default=True, help="page number")
@json_option
@reports_errors
def status(site_dir, config_file, column, letters, data_id, workflow, association, top, limit, page,
           as_json) -> None:
    """The OSF grid: a row per dataset, a column per stage, per-stage counts of every letter."""
    from pipeline.cli.statusview import render
    from pipeline.core.osf import Blackboard
    from pipeline.core.status import Filters, grid

    if (column is None) != (letters is None):
        raise click.UsageError("filter with both -c COLUMN and -s LETTERS, e.g. -c CA -s e")
    site = open_site(site_dir, config_file)
    bb = Blackboard(site.database_url, site.database.busy_timeout)
    g = grid(bb, Filters(column and column.upper(), letters, data_id, workflow, association, top),
             limit=limit, offset=(page - 1) * limit)
    if as_json:
        echo_json(g.as_dict())
        return
    render(g, _console(), title=f"OSF of site {site.name!r} ({site.root})")
