"""CPU of what the non-MD nodes cut (issue 15 items 1 and 4), each beside what it replaced.

- decoding a full-frame WFC3/UVIS pod with every check, and as INGEST and 2FITS now decode bytes whose
  SHA-256 is that of a pod already checked whole (no packet CRC-16 pass; the hash is included);
- building the association table in a fresh process, and ``BinTableHDU.from_columns`` (which imports
  astropy.table and its asdf plugins) the same way;
- importing PVW's preview module in a fresh process, with and without ``scipy.ndimage``.

CPU seconds, median of 5 (fresh processes: their whole CPU, from ``RUSAGE_CHILDREN``).
"""

from __future__ import annotations

import hashlib
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.bench_telemetry import full_frame_uvis
from bench.common import Result
from pipeline.science.telemetry import decode_pod, write_pod

REPEATS = 5

FRESH = {
    "association table: build_asn_table": ("from pipeline.core.asntable import build_asn_table\n"
                                           "build_asn_table('ib4606060', ['ib4606c5q', 'ib4606c6q'], 'DITHER')"),
    "association table: BinTableHDU.from_columns (before)": (
        "import numpy as np\nfrom astropy.io import fits\nfits.BinTableHDU.from_columns("
        "[fits.Column(name='MEMNAME', format='14A', array=np.array(['IB4606C5Q']))], name='ASN')"),
    "PVW: import pipeline.science.preview": "import pipeline.science.preview",
    "PVW: import preview + scipy.ndimage (before)": "import pipeline.science.preview, scipy.ndimage",
}


def _cpu_self(fn: Callable[[], object]) -> float:
    before = resource.getrusage(resource.RUSAGE_SELF)
    fn()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def _cpu_fresh(code: str) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def run() -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory(prefix="owl-bench-stage-") as tmp:
        raw = full_frame_uvis()
        pod = write_pod(raw, Path(tmp))
        data = pod.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        decode_pod(pod, data=data)  # warm
        full, trusted = [], []
        for _ in range(REPEATS):  # alternating, so a load change hits both
            full.append(_cpu_self(lambda: decode_pod(pod, data=data)))
            trusted.append(_cpu_self(lambda: decode_pod(pod, data=data, trusted_sha256=sha)))
    for name, runs in (("pod decode, every check (full-frame UVIS)", full),
                       ("pod decode, bytes already checked: no packet CRCs, SHA-256 included", trusted)):
        results.append(Result(name, statistics.median(runs), "CPU s", details={"runs": runs}))
    for name, code in FRESH.items():
        runs = [_cpu_fresh(code) for _ in range(REPEATS)]
        results.append(Result(f"{name}, fresh process", statistics.median(runs), "CPU s", details={"runs": runs}))
    return results
