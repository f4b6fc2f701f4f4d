"""Load on the archive service: many concurrent clients searching and downloading while the pipeline ingests.

Used by ``bench/bench_service.py`` (64 clients, 60 s) and by ``tests/test_service_load.py`` (a few
seconds). Loopback only, bounded in clients and time, and it stops by itself. Every download is
hashed and compared with its ETag (and, for pinned versions, with the catalogue's sha256); the
server runs as a real ``owl serve`` process whose resident memory is sampled throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LoadReport:
    requests: int = 0
    searches: int = 0
    downloads: int = 0
    bytes: int = 0
    failures: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    ingested: int = 0

    @property
    def rss_growth_mb(self) -> float:
        """Growth of the server's memory after the first quarter of the run (warm-up excluded)."""
        if len(self.rss_mb) < 4:
            return 0.0
        settled = self.rss_mb[len(self.rss_mb) // 4:]
        return max(settled) - settled[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def owl_serve(site_root: Path, timeout: float = 60.0) -> Iterator[tuple[str, subprocess.Popen, float]]:
    """An ``owl serve`` process on a free loopback port: (base URL, process, seconds it took to answer)."""
    import httpx

    port = free_port()
    owl = str(Path(sys.executable).parent / "owl")
    t0 = time.perf_counter()
    proc = subprocess.Popen([owl, "serve", "--site", str(site_root), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "CONDOR_CONFIG": "/dev/null"})
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                httpx.get(f"{base}/sia/availability", timeout=5)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.perf_counter() - t0 > timeout:
                    raise RuntimeError(f"owl serve did not start (exit {proc.poll()})") from None
                time.sleep(0.02)
        yield base, proc, time.perf_counter() - t0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def _one_client(seed: int, base: str, files: list[tuple[str, str | None]], searches: list[dict],
                      stop_at: float, report: LoadReport) -> None:
    import httpx

    rng = random.Random(seed)
    async with httpx.AsyncClient(timeout=60) as client:
        while time.monotonic() < stop_at:
            t0 = time.perf_counter()
            try:
                if rng.random() < 0.5:
                    r = await client.get(f"{base}/sia/query", params=rng.choice(searches))
                    if r.status_code != 200 or b'name="QUERY_STATUS" value="ERROR"' in r.content:
                        report.failures.append(f"search {r.status_code}: {r.text[:120]}")
                    report.searches += 1
                else:
                    url, sha = rng.choice(files)
                    h = hashlib.sha256()
                    async with client.stream("GET", url) as r:
                        async for chunk in r.aiter_bytes(1 << 20):
                            h.update(chunk)
                            report.bytes += len(chunk)
                        etag = r.headers.get("etag", "").strip('"')
                    if r.status_code != 200 or h.hexdigest() != etag or (sha is not None and etag != sha):
                        report.failures.append(f"download {url}: status {r.status_code}, sha {h.hexdigest()[:12]}, "
                                               f"etag {etag[:12]}, catalogue {(sha or '-')[:12]}")
                    report.downloads += 1
            except httpx.HTTPError as exc:
                report.failures.append(f"{type(exc).__name__}: {exc}")
            report.requests += 1
            report.latencies.append(time.perf_counter() - t0)


def run_load(base: str, pid: int, files: list[tuple[str, str | None]], searches: list[dict], *, clients: int,
             seconds: float, ingest: Callable[[int], None] | None = None, ingest_every: float = 0.5) -> LoadReport:
    """``clients`` concurrent clients for ``seconds``; ``ingest(i)`` runs in a thread meanwhile (the pipeline)."""
    report = LoadReport()
    stop = threading.Event()

    def background() -> None:
        i = 0
        while not stop.is_set():
            report.rss_mb.append(rss_mb(pid))
            if ingest is not None:
                ingest(i)
                report.ingested += 1
                i += 1
            stop.wait(ingest_every)

    worker = threading.Thread(target=background, daemon=True)
    worker.start()
    stop_at = time.monotonic() + seconds

    async def everyone() -> None:
        await asyncio.gather(*(_one_client(k, base, files, searches, stop_at, report) for k in range(clients)))

    try:
        asyncio.run(everyone())
    finally:
        stop.set()
        worker.join(timeout=30)
    report.rss_mb.append(rss_mb(pid))
    return report
