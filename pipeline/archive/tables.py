"""The archive catalogue's two tables, defined once (SQLAlchemy, on the shared :class:`pipeline.core.db.Base`):
``archive_version`` (a dataset's version, its catalogue fields and header as JSON) and ``archive_file``
(the version's files and their blobs). :mod:`pipeline.archive.ingest` writes them through the DB-API
layer; :mod:`pipeline.archive.store` queries them.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pipeline.core.config import Site
from pipeline.core.db import Base, create_tables, engine_for


# -- catalogue tables ----------------------------------------------------------------------------
class ArchiveVersion(Base):
    __tablename__ = "archive_version"
    __table_args__ = (UniqueConstraint("dataset", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset: Mapped[str] = mapped_column(String(9), index=True)
    version: Mapped[int] = mapped_column(Integer)
    ingested: Mapped[float] = mapped_column(Float, index=True)
    association: Mapped[str | None] = mapped_column(String(9), index=True, nullable=True)
    instrument: Mapped[str | None] = mapped_column(String(16), index=True, nullable=True)
    detector: Mapped[str | None] = mapped_column(String(16), index=True, nullable=True)
    target: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    ra: Mapped[float | None] = mapped_column(Float, nullable=True)
    dec: Mapped[float | None] = mapped_column(Float, nullable=True)
    filters: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    exptime: Mapped[float | None] = mapped_column(Float, nullable=True)
    date_obs: Mapped[str | None] = mapped_column(String(32), index=True, nullable=True)
    expstart: Mapped[float | None] = mapped_column(Float, nullable=True)
    program: Mapped[str | None] = mapped_column(String(16), index=True, nullable=True)
    crds_context: Mapped[str | None] = mapped_column(String(32), index=True, nullable=True)
    software: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    header: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    extra: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class ArchiveFile(Base):
    __tablename__ = "archive_file"
    #: (dataset, kind, version) finds "the newest file of each kind" without scanning: 100,000s of rows
    __table_args__ = (UniqueConstraint("version_id", "name"), Index("ix_archive_file_newest", "dataset", "kind",
                                                                     "version"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("archive_version.id"), index=True)
    dataset: Mapped[str] = mapped_column(String(9))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    ingested: Mapped[float] = mapped_column(Float)


_TABLES = [ArchiveVersion.__table__, ArchiveFile.__table__]


def create_catalogue(site: Site) -> None:
    """Create the catalogue's tables if missing (safely from many processes at once)."""
    create_tables(engine_for(site.database_url, site.database.busy_timeout), _TABLES)
