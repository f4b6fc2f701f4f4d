"""A site's identity: one UUID kept in its own database, so jobs on a shared pool say whose they are.

Submission ids are a per-site counter, and association names repeat between a live site and a
reprocessing or test site, so neither tells one site's HTCondor jobs from another's. The UUID
does: ``owl init`` creates it, every DAG owlpipe submits carries it (``OwlSite``), and every
schedd query is constrained by it. It lives in the database rather than in ``owl.toml`` so that a
database re-created at the same path (a re-initialised site) gets a new identity and never
matches its predecessor's jobs. A database from before identities existed gets one on first use.
"""

from __future__ import annotations

import time
import uuid

from sqlalchemy import Engine, Float, Integer, String, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from pipeline.core.db import Base, create_tables


class SiteIdentityRow(Base):
    """The single row (``id`` 1) holding the site's UUID."""

    __tablename__ = "site_identity"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False)
    created: Mapped[float] = mapped_column(Float, nullable=False)


def site_identity(engine: Engine) -> str:
    """The site's UUID, created (once, even by concurrent first users) if the database has none."""
    create_tables(engine, [SiteIdentityRow.__table__])
    stmt = select(SiteIdentityRow.uuid).where(SiteIdentityRow.id == 1)
    with engine.connect() as conn:
        found = conn.execute(stmt).scalar_one_or_none()
    if found is not None:
        return found
    try:
        with engine.begin() as conn:
            conn.execute(insert(SiteIdentityRow).values(id=1, uuid=str(uuid.uuid4()), created=time.time()))
    except IntegrityError:  # another process created it first: theirs is the identity
        pass
    with engine.connect() as conn:
        return conn.execute(stmt).scalar_one()
