"""``owl osf hook pre|post``: the DAG node hooks as DAGMan runs them (SCRIPT PRE / SCRIPT POST).

A hook must never turn a job's outcome into a Python traceback: every failure here prints one
line and still returns the code DAGMan should act on.
"""

from __future__ import annotations

import sys

import click

from pipeline.core.errors import OwlError
from pipeline.core.exitcodes import ExitCode, dagman_code
from pipeline.orchestration.executors import hooks


def _ref(site_dir: str | None, column: str, dataset: str, node: str):
    from pipeline.core.config import load_site
    from pipeline.core.osf import Blackboard

    site = load_site(site_dir)
    return Blackboard(site.database_url, site.database.busy_timeout), hooks.NodeRef(site, column.upper(),
                                                                                    dataset.lower(), node)


@click.group()
def hook() -> None:
    """DAG node hooks run by DAGMan (SCRIPT PRE/POST); the local executor calls the same code.

    \b
    pre  COLUMN DATASET NODE                          exit 0, 99 (skip: done) or 98 (defer: held/busy)
    post COLUMN DATASET NODE RETURN RETRY MAX_RETRIES exit the job's code for DAGMan (fatal -> 100)
    """


@hook.command()
@click.option("--site", "site_dir", help="site directory")
@click.argument("column")
@click.argument("dataset")
@click.argument("node")
def pre(site_dir, column, dataset, node) -> None:
    """Mark the node's OSF rows w (queued) before its job is submitted."""
    try:
        bb, ref = _ref(site_dir, column, dataset, node)
    except OwlError as exc:
        click.echo(f"owl hook pre {node}: {exc.line()}", err=True)
        sys.exit(dagman_code(int(exc.code)))
    sys.exit(hooks.pre(bb, ref))


@hook.command(context_settings={"ignore_unknown_options": True})  # $RETURN may be negative (-9)
@click.option("--site", "site_dir", help="site directory")
@click.argument("column")
@click.argument("dataset")
@click.argument("node")
@click.argument("returncode", type=int)
@click.argument("retry", type=int)
@click.argument("max_retries", type=int)
def post(site_dir, column, dataset, node, returncode, retry, max_retries) -> None:
    """Record the job's outcome on the OSF and exit with the code DAGMan should act on."""
    try:
        bb, ref = _ref(site_dir, column, dataset, node)
    except OwlError as exc:
        click.echo(f"owl hook post {node}: {exc.line()}; exit {returncode} not recorded", err=True)
        sys.exit(dagman_code(int(ExitCode.KILLED) if returncode < 0 else returncode))
    sys.exit(hooks.post(bb, ref, returncode, retry, max_retries))
