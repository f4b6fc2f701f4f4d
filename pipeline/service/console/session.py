"""Console sessions: an operator token exchanged once for a random session id in an HttpOnly,
SameSite=Strict cookie, and a per-session CSRF token every form carries back.

Sessions live in the server's memory: a restarted server asks operators to log in again.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "owl_console"
LOGIN_COOKIE = "owl_console_login"
PATH = "/console"


@dataclass(frozen=True)
class Session:
    user: str
    token_key: str
    csrf: str
    expires: float


class Sessions:
    """Session id -> :class:`Session`, thread-safe, expired entries dropped when seen."""

    def __init__(self, hours: float) -> None:
        self.seconds = hours * 3600
        self._lock = threading.Lock()
        self._by_id: dict[str, Session] = {}

    def open(self, user: str, token_key: str) -> tuple[str, Session]:
        sid = secrets.token_urlsafe(32)
        session = Session(user, token_key, secrets.token_urlsafe(32), time.time() + self.seconds)
        with self._lock:
            self._by_id[sid] = session
        return sid, session

    def of(self, request: Request) -> Session | None:
        sid = request.cookies.get(COOKIE)
        if not sid:
            return None
        with self._lock:
            session = self._by_id.get(sid)
            if session is not None and session.expires < time.time():
                del self._by_id[sid]
                session = None
        return session

    def close(self, request: Request) -> None:
        with self._lock:
            self._by_id.pop(request.cookies.get(COOKIE, ""), None)


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    """HttpOnly, SameSite=Strict, only under /console; Secure when clients reach us over HTTPS (a TLS
    proxy's ``--public-url https://...``)."""
    secure = request.app.state.service.public_url(request).startswith("https:")
    response.set_cookie(name, value, max_age=max_age, path=PATH, httponly=True, samesite="strict", secure=secure)


def same(a: str | None, b: str | None) -> bool:
    """Constant-time comparison of two secrets, False when either is missing."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))
