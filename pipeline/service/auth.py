"""Who is asking: the bearer token of a request, checked against the token table, with failures slowed.

Tokens come only in the ``Authorization: Bearer`` header (never in a URL, so never in a log line).
Each client (address) that presents bad tokens waits longer after every failure (doubling, capped),
so guessing is slow; a good token resets its count.
"""

from __future__ import annotations

import threading
import time

from starlette.requests import Request

from pipeline.service.errors import ApiError
from pipeline.service.tokens import AuthFailure, Token, TokenStore

#: Failures a client may make before it is slowed, the first delay and its cap (seconds).
FREE_FAILURES, FIRST_DELAY, MAX_DELAY = 3, 0.25, 8.0
#: A client's failure count is forgotten after this long without failures.
FORGET_AFTER = 600.0


class FailureThrottle:
    """Per-client failure counts and the delay each next failure earns."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[int, float]] = {}

    def failed(self, client: str) -> float:
        """Count a failure; return how long to hold the refusal."""
        now = time.monotonic()
        with self._lock:
            count, last = self._seen.get(client, (0, now))
            count = 1 if now - last > FORGET_AFTER else count + 1
            self._seen[client] = (count, now)
            if len(self._seen) > 10000:  # bounded memory under a spray of addresses
                self._seen = dict(sorted(self._seen.items(), key=lambda kv: kv[1][1])[-5000:])
        return 0.0 if count <= FREE_FAILURES else min(MAX_DELAY, FIRST_DELAY * 2 ** (count - FREE_FAILURES - 1))

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._seen.pop(client, None)


def client_of(request: Request) -> str:
    return request.client.host if request.client else "-"


def identify(request: Request, tokens: TokenStore, throttle: FailureThrottle) -> Token | None:
    """The request's token record, None when it carries none; a bad token is a (slowed) 401."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, text = header.partition(" ")
    if scheme.lower() != "bearer" or not text.strip():
        raise ApiError(401, "Authorization header must be 'Bearer <token>'",
                       headers={"WWW-Authenticate": 'Bearer realm="owl"'})
    client = client_of(request)
    try:
        token = tokens.authenticate(text.strip())
    except AuthFailure as exc:
        raise SlowRefusal(throttle.failed(client), 401, exc.reason) from None
    throttle.succeeded(client)
    request.state.user = token.user
    return token


class SlowRefusal(ApiError):
    """A refusal the application holds for ``delay`` seconds (asynchronously) before answering."""

    def __init__(self, delay: float, status: int, message: str) -> None:
        super().__init__(status, message, headers={"WWW-Authenticate": 'Bearer realm="owl", error="invalid_token"'})
        self.delay = delay
