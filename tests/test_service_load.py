"""A short, bounded load on a real ``owl serve`` (16 clients, a few seconds, loopback) while ingests go on.

The full run (64 clients, 60 s) is ``python -m bench bench_service``.
"""

from __future__ import annotations

import httpx

from bench.service_load import owl_serve, run_load
from pipeline.archive.store import Archive
from tests.service_kit import DATASETS, PRIVATE, fill, make_fits

CHANGING = "ib4606c6q"


def test_concurrent_searches_and_downloads_during_ingest(site, tmp_path):
    fill(site, tmp_path / "src")
    archive = Archive(site)

    def ingest(i: int) -> None:  # the pipeline archiving new versions while clients read
        raw = make_fits(tmp_path / f"new_{i}_raw.fits", CHANGING, seed=1000 + i)
        archive.ingest(CHANGING, [(raw, "raw")])

    with owl_serve(site.root) as (base, proc, _startup):
        files: list[tuple[str, str | None]] = []
        for ds in DATASETS:
            if ds == PRIVATE:
                continue
            for f in httpx.get(f"{base}/api/datasets/{ds}").json()["versions"][0]["files"]:
                files.append((f["url"], f["sha256"]))
        files.append((f"{base}/api/datasets/{CHANGING}/files/{CHANGING}_raw.fits", None))  # newest: moves
        searches = [{"MAXREC": "50"}, {"INSTRUMENT": "WFC3", "CALIB": "2"}, {"POS": "CIRCLE 49.92 -19.41 0.1"},
                    {"BAND": "5e-7 7e-7"}, {"ID": CHANGING}]
        report = run_load(base, proc.pid, files, searches, clients=16, seconds=4, ingest=ingest, ingest_every=0.3)
    assert not report.failures, report.failures[:5]
    assert report.searches > 20 and report.downloads > 20 and report.ingested >= 3
    assert len(archive.versions(CHANGING)) == 1 + report.ingested
