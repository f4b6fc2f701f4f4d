"""``owl demo``: a fresh site, a simulated downlink, the watcher and local executor, the OSF grid.

The demo is the operator's path end to end with nothing staged by hand: ``owl simulate`` writes
pods and a DAN into the inbox, ``owl watch --once`` receives them and runs one DAG per
association, and the grid shows where every dataset got to. While some stage executables are not
installed yet, the demo runs the part of ``new_science`` that exists and names what is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click

from pipeline.cli.common import reports_errors

MARKER = ".owl-demo"


def _fresh_site(directory: Path, say) -> Path:
    """Create the demo site; a previous demo site (recognised by its marker) is replaced, nothing else is."""
    from pipeline.core.config import init_site

    if directory.exists() and any(directory.iterdir()):
        if not (directory / MARKER).exists():
            raise click.ClickException(f"{directory} exists and is not an owl demo site; choose another --dir")
        say(f"replacing the previous demo site in {directory}")
        shutil.rmtree(directory)
    site = init_site(directory, name="owl-demo")
    (site.root / MARKER).write_text("created by 'owl demo'; 'owl demo' replaces this directory\n")
    return site.root


def _workflow_for_demo(root: Path, say) -> str:
    """``new_science``, or the runnable part of it written into the site, naming what is missing."""
    from pipeline.orchestration.workflow import load_workflow, missing_executables, runnable_subset

    wf = load_workflow("new_science")
    missing = missing_executables(wf)
    if not missing:
        return wf.ref
    names = ", ".join(f"{s.name} ({s.executable})" for s in missing)
    say(f"[yellow]not installed yet: {names}; the demo runs the stages before them[/yellow]")
    path = root / "workflows" / "new_science-available.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(runnable_subset(wf, [s.name for s in wf if s not in missing],
                                    f"new_science cut to the stages installed on {time.strftime('%Y-%m-%d')}\n"
                                    f"missing: {names}"))
    return str(path)


def _simulate(root: Path, associations: int, seed: int, say) -> None:
    from pipeline.cli import COMMANDS

    if "simulate" not in COMMANDS:
        raise click.ClickException("'owl simulate' is not installed yet: the demo has no downlink to process")
    owl = Path(sys.executable).parent / "owl"
    argv = [str(owl if owl.exists() else "owl"), "simulate", "--site", str(root), "--size", "subarray",
            "--associations", str(associations), "--instruments", "wfc3,acs,wfc3ir", "--seed", str(seed), "--sbc", "1",
            "--recent", "1"]  # one association still exclusive to its program: the service's token path
    say(f"simulating a downlink: owl {' '.join(argv[1:])}")
    proc = subprocess.run(argv, env={**os.environ, "OWL_SITE": str(root)})
    if proc.returncode != 0:
        raise click.ClickException(f"owl simulate failed (exit {proc.returncode}); see its message above")


def _products(root: Path, console) -> None:
    """Copy each association's drizzled product and previews out of the archive into ``products/<asn>/``."""
    from pipeline.archive.store import Archive
    from pipeline.core.config import load_site
    from pipeline.core.osf import Blackboard

    site = load_site(root)
    bb = Blackboard(site.database_url)
    archive = Archive(site)
    out_root = root / "products"
    console.print(f"\n[bold]products[/bold] (copied out of the archive {site.areas.archive} into {out_root}; "
                  "more with 'owl archive get DATASET --kind KIND --dest DIR')")
    for ds in (e.dataset for e in bb.query() if e.parent is None):
        shown = [f for f in archive.files(ds) if f.kind in ("drz", "drc") or f.name.endswith((".jpg", ".png"))]
        if not shown:
            console.print(f"  {ds}: no drizzled product or preview archived")
            continue
        copied = [p for f in shown for p in archive.get(ds, kind=f.kind, version=f.version, dest=out_root / ds)]
        console.print(f"  {ds}/  " + "  ".join(sorted(p.name for p in copied)))
    if site.areas.work.exists() and any(site.areas.work.iterdir()):
        console.print(f"  work areas kept (incomplete or failed datasets): {site.areas.work}")


@click.command()
@click.option("--dir", "directory", default="owl-demo", show_default=True, type=click.Path(file_okay=False),
              help="directory of the demo site (replaced if it holds a previous demo)")
@click.option("--associations", type=click.IntRange(1, 50), default=5, show_default=True,
              help="associations in the simulated downlink (cycling WFC3/UVIS, ACS/WFC, WFC3/IR; "
                   "the 5 of the default are 2 UVIS, 2 ACS/WFC and 1 IR)")
@click.option("--seed", type=int, default=2024, show_default=True, help="simulator seed")
@click.option("--workers", type=click.IntRange(1, 64), help="local executor workers (default: the site's)")
@reports_errors
def demo(directory, associations, seed, workers) -> None:
    """Create a site, simulate a downlink, process it with the watcher and local executor, show the OSF."""
    from pipeline.cli.controller import _console, run_with_display
    from pipeline.cli.statusview import render
    from pipeline.core.config import load_site
    from pipeline.core.osf import Blackboard
    from pipeline.core.status import Filters, grid
    from pipeline.orchestration.controller import Controller

    console = _console()
    say = console.print
    started = time.monotonic()
    root = _fresh_site(Path(directory).resolve(), say)
    say(f"demo site: {root}")
    workflow = _workflow_for_demo(root, say)
    _simulate(root, associations, seed, say)
    site = load_site(root)
    ctl = Controller(site, executor="local", workers=workers, workflow=workflow)
    code = run_with_display(ctl, console, lambda: ctl.watch(once=True))
    bb = Blackboard(site.database_url)
    render(grid(bb, Filters(), limit=500), console, title=f"OSF of the demo site ({root})")
    _products(root, console)
    subs = ctl.submissions()
    done = sum(s.state == "done" for s in subs)
    say(f"\n{done} of {len(subs)} association DAG(s) complete in {time.monotonic() - started:.0f} s"
        + ("" if workflow == "new_science" else " (partial workflow: see the note above)"))
    say(f"explore: owl status --site {root}   owl dag status <assoc> --site {root}   "
        f"owl osf history <dataset> --site {root}")
    sys.exit(code)
