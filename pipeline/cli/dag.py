"""``owl dag write|status|hold|release|remove|rescue``: one association's DAG, for operators."""

from __future__ import annotations

import click

from pipeline.cli.common import config_option, echo_json, json_option, open_site, reports_errors, site_option


def _controller(site_dir, config_file):
    from pipeline.orchestration.controller import Controller

    return Controller(open_site(site_dir, config_file))


def _latest(ctl, dataset: str):
    from pipeline.orchestration.operator import latest

    return latest(ctl, dataset)


@click.group()
def dag() -> None:
    """One association's HTCondor DAG: write it, follow it, hold, release, remove or rescue it."""


@dag.command()
@click.argument("association")
@site_option
@config_option
@click.option("--workflow", default="new_science", show_default=True, help="workflow name or file")
@click.option("--priority", type=int, help="DAG priority (default: the site's priority for the workflow)")
@reports_errors
def write(association, site_dir, config_file, workflow, priority) -> None:
    """Write <site>/dags/<assoc>/ and print the condor_submit_dag command that runs it."""
    from pipeline.core.osf import Blackboard
    from pipeline.orchestration.dag import write_dag
    from pipeline.orchestration.workflow import load_workflow

    site = open_site(site_dir, config_file)
    bb = Blackboard(site.database_url, site.database.busy_timeout)
    files = write_dag(site, load_workflow(workflow), association, bb, priority=priority)
    click.echo(f"{files.dag}: {len(files.nodes)} nodes, {len(files.done)} already done (written DONE)")
    for name, request in files.memory.items():
        click.echo(f"  {name:<16} request_memory {request.mb:>6} MB  from {request.source}")
    click.echo(files.submit_command())


@dag.command()
@click.argument("association")
@site_option
@config_option
@json_option
@reports_errors
def status(association, site_dir, config_file, as_json) -> None:
    """Each node's OSF letters and, for HTCondor runs, DAGMan's status, retries and holds."""
    from pipeline.orchestration.operator import dag_view

    ctl = _controller(site_dir, config_file)
    info = dag_view(ctl, association)
    sub, rows = _latest(ctl, association), info["nodes"]
    files_dag = info["dag"]
    if as_json:
        echo_json(info)
        return
    click.echo(f"{sub.dataset}: submission {sub.id} ({sub.workflow}, {sub.executor}) {sub.state}"
               + (f": {sub.message}" if sub.message else ""))
    click.echo(f"  DAG {files_dag}" + (f"; DAGMan says {info['dagman_status']} {info['dagman_counts']}"
                                        if info["dagman_status"] else ""))
    if "schedd" in info:
        click.echo(f"  schedd: {info['schedd']}")
    click.echo(f"  {'node':<16} {'dataset':<10} {'col':<4} {'OSF':<6} {'DAGMan':<10} {'retries':<8} event")
    for r in rows:
        extra = f"held: {r['held']}" if r["held"] else (r["event"] or "")
        click.echo(f"  {r['node']:<16} {r['dataset']:<10} {r['column']:<4} {r['osf']:<6} {r['dagman'] or '-':<10} "
                   f"{'-' if r['retries'] is None else r['retries']:<8} {extra}")


def _control(action: str, association: str, site_dir, config_file) -> None:
    from pipeline.orchestration.operator import control

    click.echo(control(_controller(site_dir, config_file), action, association))


@dag.command()
@click.argument("association")
@site_option
@config_option
@reports_errors
def hold(association, site_dir, config_file) -> None:
    """Pause a DAG: condor_hold its DAGMan job, or halt its local run (no new node starts)."""
    _control("hold", association, site_dir, config_file)


@dag.command()
@click.argument("association")
@site_option
@config_option
@reports_errors
def release(association, site_dir, config_file) -> None:
    """Resume a held DAG."""
    _control("release", association, site_dir, config_file)


@dag.command()
@click.argument("association")
@site_option
@config_option
@reports_errors
def remove(association, site_dir, config_file) -> None:
    """Remove a DAG (condor_rm of its DAGMan job; locally: no new node starts). 'owl dag rescue' restarts it."""
    _control("remove", association, site_dir, config_file)


@dag.command()
@click.argument("association")
@site_option
@config_option
@click.option("--workers", type=click.IntRange(1, 256), help="local executor worker count")
@reports_errors
def rescue(association, site_dir, config_file, workers) -> None:
    """Run a stopped or failed DAG again from where it stopped (complete nodes are DONE, failed ones rerun)."""
    from pipeline.cli.controller import _console, _run_submission
    from pipeline.orchestration.operator import rescue as do_rescue

    ctl, new = do_rescue(_controller(site_dir, config_file), association, workers)
    click.echo(f"{new.dataset}: rescue submission {new.id} ({new.workflow}, {new.executor})")
    _run_submission(_console(), ctl, new.dataset)
