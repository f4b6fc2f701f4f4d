"""The audit table: every file access and every refusal, with who, what and from where (never a token)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from sqlalchemy import Float, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from pipeline.core.config import Site
from pipeline.core.db import Base, engine_for


class AuditRow(Base):
    __tablename__ = "service_audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[float] = mapped_column(Float, index=True)
    client: Mapped[str] = mapped_column(String(64))
    user: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    token: Mapped[str | None] = mapped_column(String(12), nullable=True)
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(300))
    status: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(String(300), default="")


_TABLES = [AuditRow.__table__]


@dataclass(frozen=True)
class AuditEntry:
    time: float
    client: str
    user: str | None
    token: str | None
    action: str
    target: str
    status: int
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


class AuditLog:
    def __init__(self, site: Site) -> None:
        self.engine = engine_for(site.database_url, site.database.busy_timeout)
        Base.metadata.create_all(self.engine, tables=_TABLES)

    def record(self, *, client: str, user: str | None, token: str | None, action: str, target: str, status: int,
               detail: str = "") -> None:
        """One row; ``token`` is the token's public key only."""
        with self.engine.begin() as conn:
            conn.execute(AuditRow.__table__.insert().values(
                time=time.time(), client=client[:64], user=user, token=token, action=action, target=target[:300],
                status=status, detail=detail[:300]))

    def recent(self, limit: int = 50, user: str | None = None, refused: bool = False) -> list[AuditEntry]:
        """Newest first."""
        stmt = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if user is not None:
            stmt = stmt.where(AuditRow.user == user)
        if refused:
            stmt = stmt.where(AuditRow.status >= 400)
        with self.engine.connect() as conn:
            return [AuditEntry(r.time, r.client, r.user, r.token, r.action, r.target, r.status, r.detail)
                    for r in conn.execute(stmt)]
