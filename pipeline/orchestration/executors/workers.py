"""What each local executor's workers run now (OPUS's Process Manager view, for ``/console/dags``).

Every local executor process keeps one small JSON record, ``<dags area>/workers/<host>-<pid>.json``,
rewritten atomically whenever one of its jobs starts or ends: its host and pid, its worker count and
each running job's process id, DAG and node, dataset, stage, attempt and start time. Readers drop the
records of executors that are gone (same host, pid no longer alive) and delete them, so the area
does not grow by one file per executor ever run; another host's records are shown as written, with
their age.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.core.fsutil import atomic_write
from pipeline.core.osf import process_alive


@dataclass(frozen=True)
class WorkerJob:
    pid: int
    dag: str
    node: str
    dataset: str
    stage: str
    attempt: int
    since: float


@dataclass
class ExecutorRecord:
    host: str
    pid: int
    workers: int
    started: float
    updated: float
    jobs: list[WorkerJob] = field(default_factory=list)

    @property
    def idle(self) -> int:
        return max(0, self.workers - len(self.jobs))


class WorkerBoard:
    """The record of this executor process; ``started``/``finished`` keep it current."""

    def __init__(self, directory: Path, workers: int) -> None:
        self.record = ExecutorRecord(socket.gethostname(), os.getpid(), workers, time.time(), time.time())
        self.path = directory / f"{self.record.host}-{self.record.pid}.json"

    def started(self, pid: int, dag: str, node: str, dataset: str, stage: str, attempt: int) -> None:
        self.record.jobs.append(WorkerJob(pid, dag, node, dataset, stage, attempt, time.time()))
        self._write()

    def finished(self, pid: int) -> None:
        self.record.jobs = [j for j in self.record.jobs if j.pid != pid]
        self._write()

    def _write(self) -> None:
        self.record.updated = time.time()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path, "w") as fh:
            json.dump(asdict(self.record), fh)


def read_workers(directory: Path) -> list[ExecutorRecord]:
    """The records of the executors still running (this host) or last heard of (other hosts), newest first;
    this host's dead executors' records are removed."""
    here = socket.gethostname()
    out = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            raw = json.loads(path.read_text())
            record = ExecutorRecord(**{**raw, "jobs": [WorkerJob(**j) for j in raw.get("jobs", [])]})
        except (OSError, ValueError, TypeError):
            continue  # being replaced, or not one of ours
        if record.host != here or process_alive(record.pid, 0):
            out.append(record)
        else:
            path.unlink(missing_ok=True)  # its executor ended (or was killed) without a word
    return sorted(out, key=lambda r: -r.updated)
