"""Exclusive access: each program's PI and exclusive period, and the release date it gives a dataset.

A dataset is exclusive to its program until observation date + the program's exclusive period (six
months unless ``owl program set`` says otherwise, or the program was released early). Metadata stay
searchable by everyone; only files are protected (see :mod:`pipeline.service.auth`).
"""

from __future__ import annotations

import calendar
import datetime as dt
import time
from dataclasses import asdict, dataclass

from sqlalchemy import Float, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from pipeline.core.config import Site
from pipeline.core.db import Base, engine_for

DEFAULT_EXCLUSIVE_MONTHS = 6


class ProgramRow(Base):
    __tablename__ = "service_program"
    program: Mapped[str] = mapped_column(String(16), primary_key=True)
    pi: Mapped[str | None] = mapped_column(String(64), nullable=True)
    exclusive_months: Mapped[int] = mapped_column(Integer, default=DEFAULT_EXCLUSIVE_MONTHS)
    #: ISO date the program was released early (``--release-now``); None: the period rules.
    released: Mapped[str | None] = mapped_column(String(10), nullable=True)
    updated: Mapped[float] = mapped_column(Float)


_TABLES = [ProgramRow.__table__]


@dataclass(frozen=True)
class Program:
    program: str
    pi: str | None = None
    exclusive_months: int = DEFAULT_EXCLUSIVE_MONTHS
    released: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Rights:
    """What a dataset's access looks like: ``data_rights`` is ObsCore's ``public`` or ``proprietary``."""

    program: str | None
    pi: str | None
    release_date: str | None
    data_rights: str

    @property
    def public(self) -> bool:
        return self.data_rights == "public"

    def as_dict(self) -> dict:
        return asdict(self)


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by whole months, clamped to the month's end (Aug 31 + 6 months = Feb 28/29)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def rights(program: Program | None, program_id: str | None, date_obs: str | None, *, now: str | None = None) -> Rights:
    """The release date and rights of a dataset observed on ``date_obs`` under ``program``.

    A dataset without an observation date cannot be dated: it stays proprietary until its program
    is released (safe default for an archive).
    """
    prog = program or Program(program_id or "")
    release: str | None = prog.released
    if release is None and date_obs:
        try:
            observed = dt.date.fromisoformat(date_obs[:10])
        except ValueError:
            observed = None
        if observed is not None:
            release = add_months(observed, prog.exclusive_months).isoformat()
    public = release is not None and release <= (now or today())
    return Rights(program_id, prog.pi, release, "public" if public else "proprietary")


def header_pi(first: str | None, last: str | None) -> str | None:
    """The PI as the raw header names it (``PR_INV_F PR_INV_L``), when the program table has none."""
    name = " ".join(x.strip() for x in (first, last) if x and x.strip())
    return name or None


class ProgramStore:
    """The ``service_program`` table of one site."""

    def __init__(self, site: Site) -> None:
        self.engine = engine_for(site.database_url, site.database.busy_timeout)
        Base.metadata.create_all(self.engine, tables=_TABLES)

    def get(self, program: str) -> Program | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(ProgramRow).where(ProgramRow.program == program)).first()
        return None if row is None else Program(row.program, row.pi, row.exclusive_months, row.released)

    def all(self) -> list[Program]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(ProgramRow).order_by(ProgramRow.program)).all()
        return [Program(r.program, r.pi, r.exclusive_months, r.released) for r in rows]

    def set(self, program: str, *, pi: str | None = None, exclusive_months: int | None = None,
            release_now: bool = False) -> Program:
        """Create or change a program; fields not given keep their value."""
        with self.engine.begin() as conn:
            row = conn.execute(select(ProgramRow).where(ProgramRow.program == program)).first()
            values = {"updated": time.time()}
            if pi is not None:
                values["pi"] = pi
            if exclusive_months is not None:
                values["exclusive_months"] = exclusive_months
            if release_now:
                values["released"] = today()
            if row is None:
                conn.execute(ProgramRow.__table__.insert().values(
                    program=program, pi=values.get("pi"), released=values.get("released"),
                    exclusive_months=values.get("exclusive_months", DEFAULT_EXCLUSIVE_MONTHS),
                    updated=values["updated"]))
            else:
                conn.execute(ProgramRow.__table__.update().where(ProgramRow.program == program).values(**values))
        found = self.get(program)
        assert found is not None
        return found
