"""The operators' console (issue 17) on 100,000 OSF rows: the grid page and its JSON delta, served by
the real application (in-process HTTP, Starlette's test client). Goal: a page under 0.3 s."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.bench_orchestration import _bulk_register, _site
from bench.common import Result, median_time


def console_grid(tmp: Path) -> list[Result]:
    from starlette.testclient import TestClient

    from pipeline.core.osf import Blackboard
    from pipeline.service.app import create_app
    from pipeline.service.console import mount

    site = _site(tmp / "big")
    site.console.public_read = True
    _bulk_register(Blackboard(site.database_url), 25_000, 3, status="cccc" + "e" + "_" * 7)
    client = TestClient(create_app(site, mounts=[mount()]))

    def get(url: str) -> None:
        r = client.get(url)
        assert r.status_code == 200, r.text[:200]

    page, runs = median_time(lambda: get("/console/"), repeats=5)
    filtered, _ = median_time(lambda: get("/console/?stage=CA&letter=e&page=40"), repeats=5)
    delta, _ = median_time(lambda: get("/console/grid.json?since=0"), repeats=5)
    return [Result("console grid page (100 rows + counts) on 100,000 OSF rows", page, "s", goal=0.3,
                   details={"runs": [round(r, 3) for r in runs]}),
            Result("console grid page 40 filtered CA=e on 100,000 OSF rows", filtered, "s", goal=0.3),
            Result("console grid.json delta on 100,000 OSF rows", delta, "s", goal=0.3)]


def run() -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="owl-bench-console-") as name:
        return console_grid(Path(name))


if __name__ == "__main__":
    for r in run():
        print(f"{r.name:<70} {r.value:10.3f} {r.unit}  {'' if r.ok is None else ('ok' if r.ok else 'MISSED')}")
