"""What each stage node cost: peak memory and wall time, kept in the site database to size new DAGs.

The stage wrapper calls :func:`record` once per node, however it ends; DAG writers ask
:func:`memory_request` for a node's ``request_memory``. calcloud learns its memory requests from
past jobs the same way; a DAGMan user otherwise guesses, and a guess too low kills the job while a
guess too high keeps it idle waiting for a slot that large.

Peak RSS is ``getrusage``'s ``ru_maxrss`` of the node's process, or of its largest child (hstcal
executables), whichever is larger: a node runs as its own process (HTCondor job or local-executor
subprocess), so the process's lifetime peak is the node's. Children that ran at the same time (MD's
two AstroDrizzle processes) add up, which ``getrusage`` cannot see: the stage notes their sum with
:func:`note_concurrent_peak`.
"""

from __future__ import annotations

import contextlib
import math
import resource
import statistics
import time
from dataclasses import astuple, dataclass
from pathlib import Path

from pipeline.core.dbapi import Database

#: Samples needed before history overrides the workflow's request.
MIN_SAMPLES = 5
#: The most recent samples of a key that count (older runs may predate faster code or new data).
WINDOW = 200
#: The percentile of past peaks a request covers, and the margin added on top.
PERCENTILE = 95
MARGIN = 0.25
MARGIN_MB = 128
#: Requests are rounded up to this many MB (HTCondor slots are carved in MB; round numbers read well).
ROUND_MB = 64
#: The first retry of a node asks for this factor more memory, the next for its square, ... up to the ceiling.
RETRY_FACTOR = 2


@dataclass(frozen=True)
class Sample:
    """What one node run is, for the history table (the wrapper knows these before the run)."""

    stage: str
    dataset: str
    instrument: str
    detector: str
    nexp: int
    input_mb: float


@dataclass(frozen=True)
class NodeUsage(Sample):
    """One finished node run: what it was and what it cost (a row of ``node_usage``)."""

    peak_rss_mb: float
    wall_s: float
    exit_code: int
    finished: float


_FIELDS = ", ".join(NodeUsage.__dataclass_fields__)
_INSERT = f"INSERT INTO node_usage ({_FIELDS}) VALUES ({', '.join('?' * len(NodeUsage.__dataclass_fields__))})"

#: ``node_usage`` as SQLAlchemy created it before (same columns, types and index).
_DDL = {"node_usage": (
        "CREATE TABLE IF NOT EXISTS node_usage (id {serial} NOT NULL, stage VARCHAR(32) NOT NULL, "
        "dataset VARCHAR(9) NOT NULL, instrument VARCHAR(16) NOT NULL, detector VARCHAR(16) NOT NULL, "
        "nexp INTEGER NOT NULL, input_mb FLOAT NOT NULL, peak_rss_mb FLOAT NOT NULL, wall_s FLOAT NOT NULL, "
        "exit_code INTEGER NOT NULL, finished FLOAT NOT NULL, PRIMARY KEY (id))",
        "CREATE INDEX IF NOT EXISTS ix_node_usage_key ON node_usage (instrument, stage, nexp, detector)")}


def _open(url: str, busy_timeout: float) -> Database:
    """The site database with the ``node_usage`` table (created on first use)."""
    db = Database(url, busy_timeout)
    db.ensure_tables(_DDL)
    return db


_concurrent_peak_mb = 0.0


def note_concurrent_peak(mb: float) -> None:
    """Record a peak this process's node reached that ``getrusage`` does not show (children at once)."""
    global _concurrent_peak_mb
    _concurrent_peak_mb = max(_concurrent_peak_mb, mb)


def own_peak_rss_mb() -> float:
    """This process's own peak resident set (Linux: KiB -> MiB), without its children's."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def peak_rss_mb() -> float:
    """The larger of this process's and its largest child's peak resident set (Linux: KiB -> MiB), or of
    a noted concurrent peak."""
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own_peak_rss_mb(), child / 1024.0, _concurrent_peak_mb)


def fits_keyword(path: Path, keyword: str) -> str:
    """A string keyword of a FITS primary header, read as 80-byte cards (no astropy: the wrapper must stay
    light to import); '' when the file or keyword is missing."""
    key = keyword.upper().ljust(8).encode()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(2880):
                for i in range(0, len(block) - 79, 80):
                    card = block[i:i + 80]
                    if card[:8] == key and card[8:10] == b"= ":
                        return card[10:].split(b"/")[0].strip().strip(b"'").strip().decode("ascii", "replace")
                    if card[:8] == b"END     ":
                        return ""
    except OSError:
        return ""
    return ""


def describe(stage: str, dataset: str, instrument: str, work: Path | list[Path], members: list[str]) -> Sample:
    """The history key of a node over ``members`` in ``work`` (a directory, or the node's own and its
    association's, where CA finds its exposure): their detector (from the first raw or calibrated file
    found) and the megabytes of their files there when the node starts."""
    dirs = [d for d in ([work] if isinstance(work, Path) else work) if d.is_dir()]
    files = list(dict.fromkeys(p for d in dirs for m in members for p in d.glob(f"{m.lower()}_*.fits")))
    detector = next((d for p in files if (d := fits_keyword(p, "DETECTOR"))), "")
    size = 0
    for p in files:
        with contextlib.suppress(OSError):  # a file another node just moved away
            size += p.stat().st_size
    size /= 2**20
    return Sample(stage, dataset, instrument.upper(), detector.upper(), len(members), round(size, 1))


def record(url: str, sample: Sample, wall_s: float, exit_code: int, busy_timeout: float = 30.0) -> None:
    """Add one run to the site's history (creating the table on first use). Wall time is kept to the
    microsecond: a node that fails at once can take under a millisecond, and 0 would read as unmeasured."""
    add(url, [NodeUsage(*astuple(sample), round(peak_rss_mb(), 1), round(wall_s, 6), int(exit_code), time.time())],
        busy_timeout)


def add(url: str, runs: list[NodeUsage], busy_timeout: float = 30.0) -> None:
    """Add finished runs to the site's history."""
    with _open(url, busy_timeout).write() as cur:
        cur.executemany(_INSERT, [astuple(r) for r in runs])


def all_runs(url: str, busy_timeout: float = 30.0) -> list[NodeUsage]:
    """Every recorded run, oldest first (what a benchmark or a report walks)."""
    rows = _open(url, busy_timeout).read(f"SELECT {_FIELDS} FROM node_usage ORDER BY id", [])
    return [NodeUsage(*r) for r in rows]


def typical_walls(url: str, busy_timeout: float = 30.0, window: int = 10 * WINDOW) -> dict[tuple[str, str], float]:
    """{(stage, instrument): median wall time (s)} of the most recent successful runs: how long a
    scheduler may expect such a node to take."""
    rows = _open(url, busy_timeout).read(
        "SELECT stage, instrument, wall_s FROM node_usage WHERE exit_code = 0 ORDER BY id DESC LIMIT ?", [window])
    walls: dict[tuple[str, str], list[float]] = {}
    for stage, instrument, wall in rows:
        walls.setdefault((stage, instrument), []).append(wall)
    return {key: statistics.median(values) for key, values in walls.items()}


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: the answer is a peak that happened)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100.0 * len(ordered)) - 1)]


@dataclass(frozen=True)
class MemoryRequest:
    """A node's ``request_memory`` (MB) and where it came from."""

    mb: int
    source: str
    samples: int = 0


def history(url: str, stage: str, instrument: str, nexp: int, detector: str = "",
            busy_timeout: float = 30.0) -> list[NodeUsage]:
    """The most recent successful runs of a key (any detector when ``detector`` is '')."""
    sql = f"SELECT {_FIELDS} FROM node_usage WHERE stage = ? AND instrument = ? AND nexp = ? AND exit_code = 0"
    params: list = [stage, instrument.upper(), nexp]
    if detector:
        sql += " AND detector = ?"
        params.append(detector.upper())
    rows = _open(url, busy_timeout).read(sql + " ORDER BY id DESC LIMIT ?", [*params, WINDOW])
    return [NodeUsage(*r) for r in rows]


def memory_request(url: str, stage: str, instrument: str, nexp: int, default_mb: int, ceiling_mb: int,
                   detector: str = "", busy_timeout: float = 30.0) -> MemoryRequest:
    """p95 of the key's past peaks plus the margin, rounded up and capped at ``ceiling_mb``; the workflow's
    ``default_mb`` until the key has :data:`MIN_SAMPLES` successful runs."""
    runs = history(url, stage, instrument, nexp, detector, busy_timeout)
    if len(runs) < MIN_SAMPLES:
        return MemoryRequest(default_mb, f"workflow default (history n={len(runs)} < {MIN_SAMPLES})", len(runs))
    peak = percentile([r.peak_rss_mb for r in runs], PERCENTILE)
    mb = math.ceil((peak * (1 + MARGIN) + MARGIN_MB) / ROUND_MB) * ROUND_MB
    capped = min(mb, ceiling_mb)
    what = f"history n={len(runs)} p{PERCENTILE}={peak:.0f} MB +{MARGIN:.0%}+{MARGIN_MB} MB"
    return MemoryRequest(capped, what + (f", capped at {ceiling_mb} MB" if capped < mb else ""), len(runs))
