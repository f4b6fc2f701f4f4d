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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import Float, Integer, Select, String, Text, delete, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Mapped, mapped_column

from pipeline.core.db import Base, engine_for, is_lock_error, lock_timeout
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


class OSFRow(Base):
    __tablename__ = "osf"
    dataset: Mapped[str] = mapped_column(String(9), primary_key=True)
    data_id: Mapped[str] = mapped_column(String(3), index=True)
    dcf_num: Mapped[str] = mapped_column(String(3), default="000")
    command: Mapped[str] = mapped_column(String(16), default="")
    status: Mapped[str] = mapped_column(String(len(COLUMNS)))
    parent: Mapped[str | None] = mapped_column(String(9), index=True, nullable=True)
    workflow: Mapped[str] = mapped_column(String(32), default="")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[float] = mapped_column(Float)
    updated: Mapped[float] = mapped_column(Float)


class OSFProcess(Base):
    """Who holds a column at ``p``: the evidence needed to call a dead holder ``x``."""

    __tablename__ = "osf_process"
    dataset: Mapped[str] = mapped_column(String(9), primary_key=True)
    column: Mapped[str] = mapped_column(String(2), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    pid_start: Mapped[int] = mapped_column(Integer, default=0)
    started: Mapped[float] = mapped_column(Float)


class OSFHistory(Base):
    __tablename__ = "osf_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset: Mapped[str] = mapped_column(String(9), index=True)
    column: Mapped[str] = mapped_column(String(2))
    old: Mapped[str] = mapped_column(String(len(COLUMNS)))
    new: Mapped[str] = mapped_column(String(len(COLUMNS)))
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    who: Mapped[str] = mapped_column(String(64), default="")
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    time: Mapped[float] = mapped_column(Float, index=True)


_TABLES = [OSFRow.__table__, OSFProcess.__table__, OSFHistory.__table__]


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


def _entry(row) -> OSFEntry:
    return OSFEntry(row.dataset, row.data_id, row.dcf_num, row.command, row.status, row.parent,
                    row.workflow, row.priority, row.created, row.updated)


class Blackboard:
    """The OSF store behind one database URL."""

    def __init__(self, url: str, busy_timeout: float = 30.0) -> None:
        self.url = url
        self.engine = engine_for(url, busy_timeout)
        self.host = socket.gethostname()
        Base.metadata.create_all(self.engine, tables=_TABLES)

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
            with self.engine.begin() as conn:
                conn.execute(insert(OSFRow).values(
                    dataset=ds.name, data_id=data_id or ds.data_id, dcf_num=dcf_num, command="", status=st,
                    parent=par, workflow=workflow, priority=priority, created=now, updated=now))
                conn.execute(insert(OSFHistory).values(
                    dataset=ds.name, column="", old="", new=st, exit_code=None, message="created",
                    who=who, host=self.host, pid=os.getpid(), time=now))
        except IntegrityError:
            return False
        except OperationalError as exc:
            if is_lock_error(exc):
                raise lock_timeout(exc, f"creating {ds.name}") from exc
            raise
        return True

    def get(self, dataset: DatasetName | str) -> OSFEntry:
        name = str(dataset).lower()
        with self.engine.connect() as conn:
            row = conn.execute(select(OSFRow).where(OSFRow.dataset == name)).first()
        if row is None:
            raise UnknownDataset(f"dataset {name} is not on the OSF blackboard")
        return _entry(row)

    def find(self, dataset: DatasetName | str) -> OSFEntry | None:
        try:
            return self.get(dataset)
        except UnknownDataset:
            return None

    def members(self, association: DatasetName | str) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(OSFRow.dataset).where(OSFRow.parent == str(association).lower())
                                .order_by(OSFRow.dataset))
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
        stmt = select(OSFRow)
        if column is not None or letter is not None:
            if column is None or letter is None:
                raise OSFError("filter by column needs both a column and a letter (e.g. -c CA -s e)")
            i = column_index(column)
            stmt = stmt.where(func.substr(OSFRow.status, i + 1, 1).in_(list(check_letters(letter))))
        if data_id is not None:
            stmt = stmt.where(OSFRow.data_id == data_id)
        if datasets is not None:
            stmt = stmt.where(OSFRow.dataset.in_([d.lower() for d in datasets]))
        if parent is not None:
            stmt = stmt.where(OSFRow.parent == parent.lower())
        if workflow is not None:
            stmt = stmt.where(OSFRow.workflow == workflow)
        stmt = stmt.order_by(OSFRow.created, OSFRow.dataset)
        if limit is not None:
            stmt = stmt.limit(limit)
        if offset:
            stmt = stmt.offset(offset)
        with self.engine.connect() as conn:
            return [_entry(r) for r in conn.execute(stmt)]

    def counts(self, restrict: Callable[[Select], Select] | None = None) -> dict[str, dict[str, int]]:
        """Per column, how many rows hold each letter (letters in ``LETTERS`` order).

        One grouped query over the distinct status strings, which are few even on 100,000 rows;
        ``restrict`` may add WHERE clauses to that query (the status grid's filters).
        """
        stmt = select(OSFRow.status, func.count()).group_by(OSFRow.status)
        if restrict is not None:
            stmt = restrict(stmt)
        per_column: dict[str, Counter] = {c: Counter() for c in COLUMNS}
        with self.engine.connect() as conn:
            for status, n in conn.execute(stmt):
                for col, letter in zip(COLUMNS, status, strict=True):
                    per_column[col][letter] += n
        order = list(LETTERS)
        return {c: dict(sorted(cnt.items(), key=lambda kv: order.index(kv[0]))) for c, cnt in per_column.items()}

    def history(self, dataset: DatasetName | str | None = None, limit: int | None = None) -> list[HistoryEntry]:
        stmt = select(OSFHistory).order_by(OSFHistory.id)
        if dataset is not None:
            stmt = stmt.where(OSFHistory.dataset == str(dataset).lower())
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.engine.connect() as conn:
            return [HistoryEntry(h.time, h.dataset, h.column, h.old, h.new, h.exit_code, h.message, h.who,
                                 h.host, h.pid) for h in conn.execute(stmt)]

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
        letter = func.substr(OSFRow.status, i + 1, 1)
        now = time.time()
        proc_pid = os.getpid() if pid is None else pid
        try:
            with self.engine.begin() as conn:
                before = {r.dataset: (r.status, r.parent) for r in conn.execute(
                    select(OSFRow.dataset, OSFRow.status, OSFRow.parent).where(OSFRow.dataset.in_(names)))}
                missing = [n for n in names if n not in before]
                if missing:
                    raise UnknownDataset(f"dataset(s) {', '.join(missing)} not on the OSF blackboard")
                result = conn.execute(
                    update(OSFRow)
                    .where(OSFRow.dataset.in_(names), letter.in_(list(expect)))
                    .values(status=func.substr(OSFRow.status, 1, i) + literal(new)
                            + func.substr(OSFRow.status, i + 2), updated=now)
                    .execution_options(synchronize_session=False))
                if result.rowcount != len(names):  # raising inside begin() rolls the update back
                    bad = ", ".join(f"{n} is '{before[n][0][i]}'" for n in names if before[n][0][i] not in expect)
                    raise TransitionConflict(
                        f"OSF column {col} cannot move {expect}->{new}: {bad or 'changed concurrently'}")
                for n in names:
                    old = before[n][0]
                    conn.execute(insert(OSFHistory).values(
                        dataset=n, column=col, old=old[i], new=new, exit_code=exit_code, message=message,
                        who=who, host=self.host, pid=proc_pid, time=now))
                conn.execute(delete(OSFProcess).where(OSFProcess.dataset.in_(names), OSFProcess.column == col))
                if new == "p":
                    conn.execute(insert(OSFProcess), [
                        {"dataset": n, "column": col, "host": self.host, "pid": proc_pid,
                         "pid_start": _process_start(proc_pid), "started": now} for n in names])
                parents = {before[n][1] for n in names if before[n][1]} - set(names)
                for par in parents:
                    self._refresh_parent(conn, par, i, now)
        except OperationalError as exc:
            if is_lock_error(exc):
                raise lock_timeout(exc, f"moving {col} of {', '.join(names)}") from exc
            raise

    def _refresh_parent(self, conn, parent: str, i: int, now: float) -> None:
        kids = [r[0][i] for r in conn.execute(select(OSFRow.status).where(OSFRow.parent == parent))]
        conn.execute(
            update(OSFRow).where(OSFRow.dataset == parent)
            .values(status=func.substr(OSFRow.status, 1, i) + literal(aggregate(kids))
                    + func.substr(OSFRow.status, i + 2), updated=now))

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
        with self.engine.begin() as conn:
            conn.execute(update(OSFRow).where(OSFRow.dataset == entry.dataset).values(command=command, updated=now))
            conn.execute(insert(OSFHistory).values(
                dataset=entry.dataset, column="", old=entry.status, new=entry.status, exit_code=None,
                message=f"command {entry.command!r} -> {command!r}", who=who, host=self.host,
                pid=os.getpid(), time=now))

    def set_priority(self, dataset: DatasetName | str, priority: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(OSFRow).where(OSFRow.dataset == str(dataset).lower())
                         .values(priority=priority, updated=time.time()))

    def set_workflow(self, datasets: Sequence[DatasetName | str], workflow: str, priority: int) -> None:
        """Record which workflow (and at what priority) now drives these rows."""
        names = [str(d).lower() for d in datasets]
        with self.engine.begin() as conn:
            conn.execute(update(OSFRow).where(OSFRow.dataset.in_(names))
                         .values(workflow=workflow, priority=priority, updated=time.time()))

    def delete(self, dataset: DatasetName | str, *, who: str = "operator") -> None:
        """Remove a dataset's row (``osf_delete``); its history is kept."""
        entry = self.get(dataset)
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(delete(OSFProcess).where(OSFProcess.dataset == entry.dataset))
            conn.execute(delete(OSFRow).where(OSFRow.dataset == entry.dataset))
            conn.execute(insert(OSFHistory).values(
                dataset=entry.dataset, column="", old=entry.status, new="", exit_code=None, message="deleted",
                who=who, host=self.host, pid=os.getpid(), time=now))

    # -- crash detection -----------------------------------------------------------------------
    def holders(self) -> list:
        """Rows of ``osf_process``: (dataset, column, host, pid, pid_start, started)."""
        with self.engine.connect() as conn:
            return list(conn.execute(select(OSFProcess)))

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
