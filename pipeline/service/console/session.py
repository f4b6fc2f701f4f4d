"""Console sessions: an operator token exchanged once for a random session id in an HttpOnly,
SameSite=Strict cookie, and a per-session CSRF token every form carries back.

Sessions live in the site database (the SHA-256 of the id only), so a restarted server keeps its
operators logged in; they end at expiry, at logout, or when the operator's token is revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Float, String, delete, or_, select, update
from sqlalchemy.orm import Mapped, mapped_column
from starlette.requests import Request
from starlette.responses import Response

from pipeline.core.config import Site
from pipeline.core.db import Base, engine_for
from pipeline.service.tokens import TokenRow, digest

COOKIE = "owl_console"
LOGIN_COOKIE = "owl_console_login"
PATH = "/console"
_UNKNOWN = object()


@dataclass(frozen=True)
class Session:
    user: str
    token_key: str
    csrf: str
    expires: float


class SessionRow(Base):
    """One console session: only the SHA-256 of its id is stored (the cookie holds the id itself)."""

    __tablename__ = "console_session"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(String(64), index=True)
    token_key: Mapped[str] = mapped_column(String(12), index=True)
    created: Mapped[float] = mapped_column(Float)
    expires: Mapped[float] = mapped_column(Float, index=True)
    revoked: Mapped[float | None] = mapped_column(Float, nullable=True)


def csrf_of(sid: str) -> str:
    """The session's CSRF token, derived from its id (so the database holds nothing a form could use)."""
    return hmac.new(sid.encode(), b"owl-console-csrf", hashlib.sha256).hexdigest()


class Sessions:
    """Sessions in the site database: they outlive a server restart, end at ``expires``, at logout, and
    when the operator token that opened them is revoked or expires (``owl token revoke``)."""

    def __init__(self, site: Site, hours: float) -> None:
        self.seconds = hours * 3600
        self.engine = engine_for(site.database_url, site.database.busy_timeout)
        Base.metadata.create_all(self.engine, tables=[SessionRow.__table__])

    def open(self, user: str, token_key: str) -> tuple[str, Session]:
        sid = secrets.token_urlsafe(32)
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(delete(SessionRow).where(SessionRow.expires < now - 86400))  # long-ended ones
            conn.execute(SessionRow.__table__.insert().values(digest=digest(sid), user=user, token_key=token_key,
                                                              created=now, expires=now + self.seconds, revoked=None))
        return sid, Session(user, token_key, csrf_of(sid), now + self.seconds)

    def of(self, request: Request) -> Session | None:
        """The request's live session: not expired, not revoked, opened by a token still valid. Looked up
        once per request (a page asks when it checks access and again when it renders)."""
        found = getattr(request.state, "console_session", _UNKNOWN)
        if found is _UNKNOWN:
            found = request.state.console_session = self._lookup(request)
        return found

    def _lookup(self, request: Request) -> Session | None:
        sid = request.cookies.get(COOKIE)
        if not sid or len(sid) > 100:
            return None
        now = time.time()
        s, t = SessionRow, TokenRow
        with self.engine.connect() as conn:
            row = conn.execute(select(s.user, s.token_key, s.expires).join(t, t.key == s.token_key).where(
                s.digest == digest(sid), s.revoked.is_(None), s.expires > now, t.revoked.is_(None),
                or_(t.expires.is_(None), t.expires > now))).first()
        return None if row is None else Session(row.user, row.token_key, csrf_of(sid), row.expires)

    def close(self, request: Request) -> None:
        sid = request.cookies.get(COOKIE, "")
        with self.engine.begin() as conn:
            conn.execute(update(SessionRow).where(SessionRow.digest == digest(sid), SessionRow.revoked.is_(None))
                         .values(revoked=time.time()))


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    """HttpOnly, SameSite=Strict, only under /console; Secure when clients reach us over HTTPS (a TLS
    proxy's ``--public-url https://...``)."""
    secure = request.app.state.service.public_url(request).startswith("https:")
    response.set_cookie(name, value, max_age=max_age, path=PATH, httponly=True, samesite="strict", secure=secure)


def same(a: str | None, b: str | None) -> bool:
    """Constant-time comparison of two secrets, False when either is missing."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))
