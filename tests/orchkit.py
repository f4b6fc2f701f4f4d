"""Stand-in stages for orchestration tests: real Stage subclasses on the real wrapper, no calibration.

Each kit stage writes ``<work>/<COLUMN>.out``: a digest of its dataset, its members and the
outputs of earlier kit stages in the same work area, so a rerun that skips or repeats work
produces byte-identical products only if the orchestration is right. What a stage does on each
attempt comes from the JSON file named by ``OWL_KIT_PLAN``:
``{"CA": {"j9cv58abq": ["eio", "ok"]}, "MD": {"*": ["sleep:30"]}}`` (attempt n uses entry n, the
last entry repeats; default ``ok``). :func:`install` writes executables ``kit-<column>`` that run them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

from pipeline.core import hostenv
from pipeline.core.errors import BadInput, TransientIO
from pipeline.core.stage import Stage, StageContext, run_stage

REPO = Path(__file__).resolve().parent.parent
KIT_COLUMNS = ("IN", "2F", "RF", "BC", "CA", "MD", "AC", "IS", "PV", "IP", "CL")


def _action(column: str, dataset: str, attempt: int) -> str:
    plan_file = os.environ.get("OWL_KIT_PLAN")
    if not plan_file or not Path(plan_file).exists():
        return "ok"
    plan = json.loads(Path(plan_file).read_text()).get(column, {})
    steps = plan.get(dataset) or plan.get("*") or ["ok"]
    return steps[min(attempt, len(steps) - 1)]


def make_stage(col: str) -> type[Stage]:
    class KitStage(Stage):
        name = f"kit-{col.lower()}"
        column = col
        scope = "exposure" if col == "CA" else "association"
        summary = f"orchestration test stage for column {col}"

        def run(self, ctx: StageContext) -> None:
            attempts = ctx.work / f".{col}.attempts"
            attempt = len(attempts.read_text().splitlines()) if attempts.exists() else 0
            with open(attempts, "a") as fh:
                fh.write(f"{os.getpid()}\n")
            (ctx.work / f".{col}.threads").write_text(os.environ.get("OMP_NUM_THREADS", ""))
            cpus_now = [hostenv.cpus_now(hostenv.cpus())]   # what the node may keep busy, at start and end
            action = _action(col, ctx.dataset.name, attempt)
            if action.startswith("sleep:"):
                time.sleep(float(action.split(":")[1]))
            elif action == "eio":
                raise TransientIO(f"kit {col}: simulated transient I/O error")
            elif action == "bad":
                raise BadInput(f"kit {col}: simulated bad input")
            elif action == "crash":
                os.kill(os.getpid(), 9)
            cpus_now.append(hostenv.cpus_now(hostenv.cpus()))
            (ctx.work / f".{col}.cpus_now").write_text(" ".join(map(str, cpus_now)))
            area = ctx.site.areas.work
            digest = hashlib.sha256(f"{col} {ctx.dataset.name} {' '.join(sorted(ctx.members))}".encode())
            earlier = sorted(p for d in {ctx.dataset.name, *ctx.members} for p in (area / d).glob("*.out")
                             if p.stem != col)
            for p in earlier:
                digest.update(p.name.encode() + p.read_bytes())
            (ctx.work / f"{col}.out").write_text(digest.hexdigest() + "\n")
            ctx.log(f"kit {col} wrote {col}.out")

    KitStage.__name__ = f"Kit{col}Stage"
    return KitStage


def main(column: str) -> None:
    sys.exit(run_stage(make_stage(column), sys.argv[1:]))


def install(bin_dir: Path) -> Path:
    """Write ``kit-<column>`` executables (this Python, this repository) into ``bin_dir``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for col in KIT_COLUMNS:
        exe = bin_dir / f"kit-{col.lower()}"
        exe.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO)!r})\n"
                       f"from tests.orchkit import main\nmain({col!r})\n")
        exe.chmod(0o755)
    return bin_dir


KIT_WORKFLOW = REPO / "tests" / "data" / "workflows" / "kit.toml"
#: INGEST -> CA per member -> CL: for tests about submissions rather than node semantics.
KIT_SHORT = REPO / "tests" / "data" / "workflows" / "kit_short.toml"


def kit_site(site, tmp_path: Path, monkeypatch) -> Path:
    """Put the kit executables on PATH for ``site``'s tests; return the plan file (empty: all ``ok``)."""
    bin_dir = install(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    plan = tmp_path / "plan.json"
    plan.write_text("{}")
    monkeypatch.setenv("OWL_KIT_PLAN", str(plan))
    return plan


def register(bb, association: str = "j9cv58020", members: tuple[str, ...] = ("j9cv58abq", "j9cv58acq")) -> None:
    """An association received completely: rows with parent links and DR ``c``."""
    bb.create(association, who="test")
    for m in members:
        bb.create(m, parent=association, who="test")
    bb.transition([association, *members], "DR", "_", "c", who="test")


def kit_board(site, tmp_path, monkeypatch):
    """The kit site with the default association registered; its blackboard."""
    from pipeline.core.osf import Blackboard

    kit_site(site, tmp_path, monkeypatch)
    bb = Blackboard(site.database_url)
    register(bb)
    return bb


def products(site) -> dict[str, str]:
    """Every kit product of a site: ``dataset/COLUMN.out`` -> digest."""
    return {f"{p.parent.name}/{p.name}": p.read_text() for p in sorted(site.areas.work.glob("*/*.out"))}
