"""The OSF blackboard: one status row per dataset, one letter per stage column.

Every move of a column is a compare-and-set done by a single ``UPDATE ... WHERE letter IN
(expected)`` inside the same transaction as its history row, so two processes can never both move
one column and no move goes unrecorded. Processes that take a column to ``p`` are remembered
(host, pid, process start time) so that a process that died while ``p`` is detected and shown as
``x`` instead of staying ``p`` for ever.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from pipeline.core.dbapi import Database, is_lock_error, lock_timeout
from pipeline.core.errors import OwlError
from pipeline.core.exitcodes import ExitCode
from pipeline.core.names import DatasetName, parse_dataset

#: Stage columns in workflow order (DESIGN.md stage table).
COLUMNS: tuple[str, ...] = ("DR", "IN", "2F", "RF", "BC", "CA", "MD", "AC", "IS", "PV", "IP", "CL")
COLUMN_STAGES: dict[str, str] = {
    "DR": "dan_receipt", "IN": "INGEST", "2F": "2FITS", "RF": "RF", "BC": "BC", "CA": "CA", "MD": "MD",
    "AC": "AC", "IS": "INGEST_SCI", "PV": "PVW", "IP": "INGEST_PVW", "CL": "CL",
}
LETTERS: dict[str, str] = {
    "_": "not yet", "w": "waiting", "p": "processing", "c": "complete", "e": "error",
    "x": "crashed (process died while p)", "n": "not applicable", "h": "held",
}
EMPTY_STATUS = "_" * len(COLUMNS)


class OSFError(OwlError):
    code = ExitCode.USAGE


class UnknownDataset(OSFError):
    pass


class TransitionConflict(OSFError):
    """A column was not in an expected letter: someone else moved it, or it is held or done."""

    code = ExitCode.CONFLICT


def column_index(column: str) -> int:
    try:
        return COLUMNS.index(column.upper())
    except ValueError:
        raise OSFError(f"unknown OSF column {column!r} (columns: {' '.join(COLUMNS)})") from None


def check_letters(letters: str) -> str:
    bad = [c for c in letters if c not in LETTERS]
    if bad or not letters:
        raise OSFError(f"invalid OSF status letter(s) {''.join(bad) or letters!r} (letters: {''.join(LETTERS)})")
    return letters


#: The OSF tables as SQLAlchemy created them before (same columns, types, keys and index names), so
#: existing sites open unchanged and new ones get the same schema.
_DDL = {
    "osf": (
        "CREATE TABLE IF NOT EXISTS osf (dataset VARCHAR(9) NOT NULL, data_id VARCHAR(3) NOT NULL, "
        "dcf_num VARCHAR(3) NOT NULL, command VARCHAR(16) NOT NULL, status VARCHAR(12) NOT NULL, "
        "parent VARCHAR(9), workflow VARCHAR(32) NOT NULL, priority INTEGER NOT NULL, created FLOAT NOT NULL, "
        "updated FLOAT NOT NULL, PRIMARY KEY (dataset))",
        "CREATE INDEX IF NOT EXISTS ix_osf_data_id ON osf (data_id)",
        "CREATE INDEX IF NOT EXISTS ix_osf_parent ON osf (parent)"),
    "osf_process": (
        'CREATE TABLE IF NOT EXISTS osf_process (dataset VARCHAR(9) NOT NULL, "column" VARCHAR(2) NOT NULL, '
        "host VARCHAR(255) NOT NULL, pid INTEGER NOT NULL, pid_start INTEGER NOT NULL, started FLOAT NOT NULL, "
        'PRIMARY KEY (dataset, "column"))',),
    "osf_history": (
        'CREATE TABLE IF NOT EXISTS osf_history (id {serial} NOT NULL, dataset VARCHAR(9) NOT NULL, '
        '"column" VARCHAR(2) NOT NULL, old VARCHAR(12) NOT NULL, new VARCHAR(12) NOT NULL, '
        "exit_code INTEGER, message TEXT NOT NULL, who VARCHAR(64) NOT NULL, host VARCHAR(255) NOT NULL, "
        "pid INTEGER NOT NULL, time FLOAT NOT NULL, PRIMARY KEY (id))",
        "CREATE INDEX IF NOT EXISTS ix_osf_history_time ON osf_history (time)",
        "CREATE INDEX IF NOT EXISTS ix_osf_history_dataset ON osf_history (dataset)"),
}


#: The columns of an ``osf`` row, in :class:`OSFEntry` order.
ROW_COLUMNS = "dataset, data_id, dcf_num, command, status, parent, workflow, priority, created, updated"


@dataclass(frozen=True)
class OSFEntry:
    dataset: str
    data_id: str
    dcf_num: str
    command: str
    status: str
    parent: str | None
    workflow: str
    priority: int
    created: float
    updated: float

    def letter(self, column: str) -> str:
        return self.status[column_index(column)]

    def opus_name(self) -> str:
        """The OPUS OSF file name: ``time-status.dataset-dataid-dcfnum-command``, padded with ``_``."""
        command = (self.command or "").ljust(4, "_")[:16]
        fields = f"{self.dataset:_<9}-{self.data_id:_<3}-{self.dcf_num:_<3}-{command}"
        return f"{int(self.created):08x}-{self.status}.{fields}"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["columns"] = dict(zip(COLUMNS, self.status, strict=True))
        return d


@dataclass(frozen=True)
class HistoryEntry:
    time: float
    dataset: str
    column: str
    old: str
    new: str
    exit_code: int | None
    message: str
    who: str
    host: str
    pid: int


def aggregate(letters: Iterable[str]) -> str:
    """One letter summarising members' letters for their association's row."""
    s = set(letters)
    if not s:
        return "_"
    for worst in "exph":
        if worst in s:
            return worst
    if s <= {"n"}:
        return "n"
    if s <= {"c", "n"}:
        return "c"
    return "w" if s & {"c", "w"} else "_"  # some done, the rest waiting: the association waits


def _process_start(pid: int) -> int:
    """Start time (clock ticks since boot) of a process, to tell it apart from a later one with its pid."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def process_alive(pid: int, pid_start: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not pid_start or _process_start(pid) in (0, pid_start)


class Holder(NamedTuple):
    """A row of ``osf_process``: who holds a column at ``p``."""

    dataset: str
    column: str
    host: str
    pid: int
    pid_start: int
    started: float


def _in(values: Sequence[Any]) -> str:
    """``(?, ?, ?)`` for an ``IN`` over ``values``."""
    return "(" + ", ".join("?" * len(values)) + ")"


def _with_letter(i: int) -> str:
    """SQL for the status string with its letter ``i`` (0-based) replaced by the next parameter."""
    return f"substr(status, 1, {i}) || ? || substr(status, {i + 2})"


class Blackboard:
    """The OSF store behind one database URL."""

    def __init__(self, url: str, busy_timeout: float = 30.0) -> None:
        self.url = url
        self.busy_timeout = busy_timeout
        self.db = Database(url, busy_timeout)
        self.host = socket.gethostname()
        self.db.ensure_tables(_DDL)

    @property
    def engine(self):
        """The SQLAlchemy engine on the same database, for the controller's and service's own tables
        (imported on first use: the stage path never pays for SQLAlchemy)."""
        from pipeline.core.db import engine_for

        return engine_for(self.url, self.busy_timeout)

    # -- creation and lookup -------------------------------------------------------------------
    def create(
        self,
        dataset: DatasetName | str,
        data_id: str | None = None,
        *,
        parent: DatasetName | str | None = None,
        status: str | None = None,
        workflow: str = "",
        priority: int = 0,
        dcf_num: str = "000",
        who: str = "owl",
    ) -> bool:
        """Register a dataset; return False (and change nothing) when it is already registered."""
        ds = dataset if isinstance(dataset, DatasetName) else parse_dataset(dataset)
        par = None if parent is None else (parent if isinstance(parent, DatasetName) else parse_dataset(parent)).name
        st = status or EMPTY_STATUS
        if len(st) != len(COLUMNS):
            raise OSFError(f"status {st!r} must have {len(COLUMNS)} letters, one per column {' '.join(COLUMNS)}")
        check_letters(st)
        now = time.time()
        try:
            with self.db.write() as cur:
                cur.execute(f"INSERT INTO osf ({ROW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (ds.name, data_id or ds.data_id, dcf_num, "", st, par, workflow, priority, now, now))
                self._log(cur, ds.name, "", "", st, None, "created", who, os.getpid(), now)
        except self.db.IntegrityError:
            return False
        except Exception as exc:
            if is_lock_error(exc):
                raise lock_timeout(exc, f"creating {ds.name}") from exc
            raise
        return True

    def get(self, dataset: DatasetName | str) -> OSFEntry:
        name = str(dataset).lower()
        rows = self.db.read(f"SELECT {ROW_COLUMNS} FROM osf WHERE dataset = ?", (name,))
        if not rows:
            raise UnknownDataset(f"dataset {name} is not on the OSF blackboard")
        return OSFEntry(*rows[0])

    def find(self, dataset: DatasetName | str) -> OSFEntry | None:
        try:
            return self.get(dataset)
        except UnknownDataset:
            return None

    def members(self, association: DatasetName | str) -> list[str]:
        rows = self.db.read("SELECT dataset FROM osf WHERE parent = ? ORDER BY dataset", (str(association).lower(),))
        return [r[0] for r in rows]

    def query(
        self,
        column: str | None = None,
        letter: str | None = None,
        data_id: str | None = None,
        datasets: Sequence[str] | None = None,
        parent: str | None = None,
        workflow: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[OSFEntry]:
        """Rows matching every given filter; ``letter`` may list several letters (``'ex'``)."""
        where: list[str] = []
        params: list[Any] = []
        if column is not None or letter is not None:
            if column is None or letter is None:
                raise OSFError("filter by column needs both a column and a letter (e.g. -c CA -s e)")
            letters = list(check_letters(letter))
            where.append(f"substr(status, {column_index(column) + 1}, 1) IN {_in(letters)}")
            params += letters
        for clause, value in (("data_id = ?", data_id), ("parent = ?", parent and parent.lower()),
                              ("workflow = ?", workflow)):
            if value is not None:
                where.append(clause)
                params.append(value)
        if datasets is not None:
            names = [d.lower() for d in datasets]
            if not names:
                return []
            where.append(f"dataset IN {_in(names)}")
            params += names
        sql = f"SELECT {ROW_COLUMNS} FROM osf" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY created, dataset"
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            params += [-1 if limit is None and self.db.dialect == "sqlite" else limit, offset]
        return [OSFEntry(*r) for r in self.db.read(sql, params)]

    def counts(self, where: str = "", params: Sequence[Any] = ()) -> dict[str, dict[str, int]]:
        """Per column, how many rows hold each letter (letters in ``LETTERS`` order).

        One grouped query over the distinct status strings, which are few even on 100,000 rows;
        ``where`` (SQL over the ``osf`` columns, ``?`` placeholders for ``params``) restricts the rows
        (the status grid's filters).
        """
        sql = "SELECT status, count(*) FROM osf" + (f" WHERE {where}" if where else "") + " GROUP BY status"
        per_column: dict[str, Counter] = {c: Counter() for c in COLUMNS}
        for status, n in self.db.read(sql, params):
            for col, letter in zip(COLUMNS, status, strict=True):
                per_column[col][letter] += n
        order = list(LETTERS)
        return {c: dict(sorted(cnt.items(), key=lambda kv: order.index(kv[0]))) for c, cnt in per_column.items()}

    def last_change(self) -> float:
        """When any row last changed (0 for an empty blackboard): the console polls it to refresh its grid."""
        return float(self.db.read("SELECT max(updated) FROM osf")[0][0] or 0.0)

    def workflows(self) -> list[str]:
        """The workflows named by any row, sorted."""
        return [r[0] for r in self.db.read("SELECT DISTINCT workflow FROM osf ORDER BY workflow") if r[0]]

    def history(self, dataset: DatasetName | str | None = None, limit: int | None = None) -> list[HistoryEntry]:
        sql = 'SELECT time, dataset, "column", "old", "new", exit_code, message, who, host, pid FROM osf_history'
        params: list[Any] = []
        if dataset is not None:
            sql += " WHERE dataset = ?"
            params.append(str(dataset).lower())
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [HistoryEntry(*r) for r in self.db.read(sql, params)]

    def _log(self, cur, dataset: str, column: str, old: str, new: str, exit_code: int | None, message: str,
             who: str, pid: int, now: float) -> None:
        """One ``osf_history`` row, in the transaction of the change it records."""
        cur.execute('INSERT INTO osf_history (dataset, "column", "old", "new", exit_code, message, who, host, pid, '
                    "time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (dataset, column, old, new, exit_code, message, who, self.host, pid, now))

    # -- transitions ---------------------------------------------------------------------------
    def transition(
        self,
        datasets: DatasetName | str | Sequence[DatasetName | str],
        column: str,
        expect: str,
        new: str,
        *,
        exit_code: int | None = None,
        message: str = "",
        who: str = "",
        pid: int | None = None,
    ) -> None:
        """Move ``column`` of every dataset from a letter in ``expect`` to ``new``, all or none.

        Raises :class:`TransitionConflict` naming each dataset whose letter was not expected;
        nothing is changed then. Parents of moved rows get the column's aggregate letter.
        """
        names = [str(d).lower() for d in ([datasets] if isinstance(datasets, str | DatasetName) else datasets)]
        i = column_index(column)
        col = COLUMNS[i]
        check_letters(expect)
        check_letters(new)
        now = time.time()
        proc_pid = os.getpid() if pid is None else pid
        try:
            with self.db.write() as cur:
                before = {r[0]: (r[1], r[2]) for r in cur.fetchall(
                    f"SELECT dataset, status, parent FROM osf WHERE dataset IN {_in(names)}", names)}
                missing = [n for n in names if n not in before]
                if missing:
                    raise UnknownDataset(f"dataset(s) {', '.join(missing)} not on the OSF blackboard")
                moved = cur.execute(
                    f"UPDATE osf SET status = {_with_letter(i)}, updated = ? "
                    f"WHERE dataset IN {_in(names)} AND substr(status, {i + 1}, 1) IN {_in(expect)}",
                    [new, now, *names, *expect])
                if moved != len(names):  # raising inside write() rolls the update back
                    bad = ", ".join(f"{n} is '{before[n][0][i]}'" for n in names if before[n][0][i] not in expect)
                    raise TransitionConflict(
                        f"OSF column {col} cannot move {expect}->{new}: {bad or 'changed concurrently'}")
                for n in names:
                    self._log(cur, n, col, before[n][0][i], new, exit_code, message, who, proc_pid, now)
                cur.execute(f'DELETE FROM osf_process WHERE dataset IN {_in(names)} AND "column" = ?', [*names, col])
                if new == "p":
                    start = _process_start(proc_pid)
                    cur.executemany('INSERT INTO osf_process (dataset, "column", host, pid, pid_start, started) '
                                    "VALUES (?, ?, ?, ?, ?, ?)",
                                    [(n, col, self.host, proc_pid, start, now) for n in names])
                for par in {before[n][1] for n in names if before[n][1]} - set(names):
                    kids = [r[0][i] for r in cur.fetchall("SELECT status FROM osf WHERE parent = ?", (par,))]
                    cur.execute(f"UPDATE osf SET status = {_with_letter(i)}, updated = ? WHERE dataset = ?",
                                (aggregate(kids), now, par))
        except Exception as exc:
            if is_lock_error(exc):
                raise lock_timeout(exc, f"moving {col} of {', '.join(names)}") from exc
            raise

    def set_letter(self, dataset: DatasetName | str, column: str, new: str, *, who: str = "operator",
                   message: str = "") -> str:
        """Operator override (``osf_update``): set a column whatever it holds; return the old letter."""
        current = self.get(dataset).letter(column)
        self.transition(dataset, column, current, new, who=who, message=message or f"set {current}->{new}")
        return current

    def set_status(self, dataset: DatasetName | str, status: str, *, who: str = "operator") -> None:
        """Replace the whole status string (``osf_update -s <fullstatus>``); history records every change."""
        entry = self.get(dataset)
        if len(status) != len(COLUMNS):
            raise OSFError(f"status {status!r} must have {len(COLUMNS)} letters ({' '.join(COLUMNS)})")
        check_letters(status)
        for col, old, new in zip(COLUMNS, entry.status, status, strict=True):
            if old != new:
                self.transition(entry.dataset, col, old, new, who=who, message="status set by operator")

    def set_command(self, dataset: DatasetName | str, command: str, *, who: str = "operator") -> None:
        entry = self.get(dataset)
        now = time.time()
        with self.db.write() as cur:
            cur.execute("UPDATE osf SET command = ?, updated = ? WHERE dataset = ?", (command, now, entry.dataset))
            self._log(cur, entry.dataset, "", entry.status, entry.status, None,
                      f"command {entry.command!r} -> {command!r}", who, os.getpid(), now)

    def set_priority(self, dataset: DatasetName | str, priority: int, *, members: bool = False) -> None:
        """Set a row's priority (``members``: its members' rows too)."""
        name = str(dataset).lower()
        with self.db.write() as cur:
            cur.execute("UPDATE osf SET priority = ?, updated = ? WHERE dataset = ?"
                        + (" OR parent = ?" if members else ""),
                        (priority, time.time(), name, *([name] if members else [])))

    def set_workflow(self, datasets: Sequence[DatasetName | str], workflow: str, priority: int) -> None:
        """Record which workflow (and at what priority) now drives these rows."""
        names = [str(d).lower() for d in datasets]
        if not names:
            return
        with self.db.write() as cur:
            cur.execute(f"UPDATE osf SET workflow = ?, priority = ?, updated = ? WHERE dataset IN {_in(names)}",
                        [workflow, priority, time.time(), *names])

    def delete(self, dataset: DatasetName | str, *, who: str = "operator") -> None:
        """Remove a dataset's row (``osf_delete``); its history is kept."""
        entry = self.get(dataset)
        now = time.time()
        with self.db.write() as cur:
            cur.execute("DELETE FROM osf_process WHERE dataset = ?", (entry.dataset,))
            cur.execute("DELETE FROM osf WHERE dataset = ?", (entry.dataset,))
            self._log(cur, entry.dataset, "", entry.status, "", None, "deleted", who, os.getpid(), now)

    # -- crash detection -----------------------------------------------------------------------
    def holders(self) -> list[Holder]:
        """Every column held at ``p`` and by whom."""
        return [Holder(*r) for r in self.db.read(
            'SELECT dataset, "column", host, pid, pid_start, started FROM osf_process')]

    def reap(self, *, who: str = "reaper") -> list[tuple[str, str]]:
        """Mark ``x`` every column held at ``p`` by a process of this host that no longer exists."""
        reaped = []
        for proc in self.holders():
            if proc.host != self.host or process_alive(proc.pid, proc.pid_start):
                continue
            try:
                self.transition(proc.dataset, proc.column, "p", "x", exit_code=ExitCode.KILLED, who=who,
                                message=f"process {proc.pid} on {proc.host} died while processing")
                reaped.append((proc.dataset, proc.column))
            except (TransitionConflict, UnknownDataset):
                continue
        return reaped


def entries_json(entries: Iterable[OSFEntry]) -> str:
    return json.dumps([e.as_dict() for e in entries], indent=2)
