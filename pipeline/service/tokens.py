"""API tokens: printed once at creation, stored only as a SHA-256 digest, compared in constant time.

A token reads ``owl_<key>_<secret>``: the key (public, 12 hex digits) finds the row, the digest of the
whole token proves it. Tokens are long random strings, so a plain SHA-256 is the right hash (no
password stretching needed). A token may be limited to programs (the PI designates people that
way), may expire, and may be revoked; role ``operator`` reads every program.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import asdict, dataclass

from sqlalchemy import Float, Integer, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from pipeline.core.config import Site
from pipeline.core.db import Base, engine_for
from pipeline.core.errors import OwlError
from pipeline.core.exitcodes import ExitCode

ROLES = ("user", "operator")
_TOKEN_RE = re.compile(r"^owl_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}$")
_PROGRAM_RE = re.compile(r"^[A-Za-z0-9]{1,16}$")
_DURATION_RE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class TokenError(OwlError):
    code = ExitCode.USAGE


class TokenRow(Base):
    __tablename__ = "service_token"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(12), unique=True)
    digest: Mapped[str] = mapped_column(String(64))
    user: Mapped[str] = mapped_column(String(64), index=True)
    programs: Mapped[str] = mapped_column(String(1024), default="")
    role: Mapped[str] = mapped_column(String(16), default="user")
    created: Mapped[float] = mapped_column(Float)
    expires: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked: Mapped[float | None] = mapped_column(Float, nullable=True)


_TABLES = [TokenRow.__table__]


@dataclass(frozen=True)
class Token:
    """A token's record (never the token itself)."""

    key: str
    user: str
    programs: tuple[str, ...]
    role: str
    created: float
    expires: float | None
    revoked: float | None

    def state(self, now: float | None = None) -> str:
        if self.revoked is not None:
            return "revoked"
        if self.expires is not None and self.expires <= (now or time.time()):
            return "expired"
        return "valid"

    def may_read(self, program: str | None, pi: str | None) -> bool:
        """Operators read everything; a user reads programs named on the token and those they are PI of."""
        if self.role == "operator":
            return True
        if program is not None and program in self.programs:
            return True
        return pi is not None and pi.strip().lower() == self.user.lower()

    def as_dict(self) -> dict:
        return {**asdict(self), "state": self.state()}


class AuthFailure(Exception):
    """A presented token is not good; ``reason`` is safe to show (it never contains the token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_duration(text: str) -> float:
    """``30d``, ``12h``, ``2w`` → seconds."""
    m = _DURATION_RE.fullmatch(text.strip().lower())
    if m is None or int(m.group(1)) == 0:
        raise TokenError(f"--expires {text!r}: give a positive number with a unit s, m, h, d or w (e.g. 30d)")
    return int(m.group(1)) * _UNITS[m.group(2)]


def digest(secret: str) -> str:
    """What the database keeps of a secret (API token or console session id): its sha256."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _token(row) -> Token:
    return Token(row.key, row.user, tuple(p for p in row.programs.split(",") if p), row.role, row.created,
                 row.expires, row.revoked)


class TokenStore:
    """The ``service_token`` table of one site."""

    def __init__(self, site: Site) -> None:
        self.engine = engine_for(site.database_url, site.database.busy_timeout)
        Base.metadata.create_all(self.engine, tables=_TABLES)

    def create(self, user: str, *, programs: list[str] | None = None, expires_in: float | None = None,
               role: str = "user") -> tuple[str, Token]:
        """A new token for ``user``: (the token text, shown once; its record)."""
        if not _USER_RE.fullmatch(user):
            raise TokenError(f"user {user!r}: use letters, digits and _.@+- (at most 64 characters)")
        bad = [p for p in programs or [] if not _PROGRAM_RE.fullmatch(p)]
        if bad:
            raise TokenError(f"program {bad[0]!r} is not a program id (letters and digits)")
        if role not in ROLES:
            raise TokenError(f"role {role!r}: choose one of {', '.join(ROLES)}")
        key = secrets.token_hex(6)
        text = f"owl_{key}_{secrets.token_urlsafe(32)}"
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(TokenRow.__table__.insert().values(
                key=key, digest=digest(text), user=user, programs=",".join(sorted(set(programs or []))), role=role,
                created=now, expires=now + expires_in if expires_in else None, revoked=None))
        return text, self.get(key)

    def get(self, key: str) -> Token:
        with self.engine.connect() as conn:
            row = conn.execute(select(TokenRow).where(TokenRow.key == key)).first()
        if row is None:
            raise TokenError(f"no token with key {key!r} (see 'owl token list')")
        return _token(row)

    def all(self, user: str | None = None) -> list[Token]:
        stmt = select(TokenRow).order_by(TokenRow.id)
        if user is not None:
            stmt = stmt.where(TokenRow.user == user)
        with self.engine.connect() as conn:
            return [_token(r) for r in conn.execute(stmt)]

    def revoke(self, key: str) -> Token:
        token = self.get(key)
        if token.revoked is None:
            with self.engine.begin() as conn:
                conn.execute(update(TokenRow).where(TokenRow.key == key).values(revoked=time.time()))
        return self.get(key)

    def authenticate(self, text: str) -> Token:
        """The record of a valid token; :class:`AuthFailure` for a malformed, unknown, revoked or expired one."""
        m = _TOKEN_RE.fullmatch(text)
        with self.engine.connect() as conn:
            row = conn.execute(select(TokenRow).where(TokenRow.key == m.group(1))).first() if m else None
        expected = row.digest if row is not None else "0" * 64
        same = hmac.compare_digest(digest(text), expected)  # always compared: same work for every failure
        if m is None or row is None or not same:
            raise AuthFailure("token not recognised")
        token = _token(row)
        state = token.state()
        if state != "valid":
            raise AuthFailure(f"token {token.key} is {state}")
        return token
