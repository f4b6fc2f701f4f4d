"""The application factory: one Starlette app carrying every part of the service.

``create_app`` mounts the parts under their prefixes (``/sia``, ``/api``) and takes more mounts from
its caller, so the operators' console (Jinja2 pages, sessions, CSRF, under ``/console``) becomes one
more ``Mount`` with its own middleware, sharing :class:`ServiceState` (``request.app.state.service``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from pipeline.archive.store import Archive
from pipeline.core.config import Site
from pipeline.service import api, search, sia
from pipeline.service.access import ProgramStore
from pipeline.service.audit import AuditLog
from pipeline.service.auth import FailureThrottle, SlowRefusal
from pipeline.service.errors import ApiError, json_error
from pipeline.service.notifications import Notifications, NotifierThread
from pipeline.service.tokens import TokenStore

log = logging.getLogger("owl.service")


class ServiceState:
    """What every request handler shares: the site's stores and the server's settings."""

    def __init__(self, site: Site, *, public_url: str | None = None, webhook_backoff: float = 5.0) -> None:
        self.site = site
        self.archive = Archive(site)
        search.ensure_indexes(self.archive.engine)
        self.programs = ProgramStore(site)
        self.tokens = TokenStore(site)
        self.audit = AuditLog(site)
        self.notifications = Notifications(site, backoff=webhook_backoff)
        self.throttle = FailureThrottle()
        #: Set when the server begins to stop: long-lived answers (the console's event streams) end then.
        self.stopping = threading.Event()
        self._public_url = public_url.rstrip("/") if public_url else None

    def public_url(self, request: Request) -> str:
        """Where clients reach the service (``--public-url`` behind a reverse proxy, else the request's host)."""
        return self._public_url or str(request.base_url).rstrip("/")


class RequestLog:
    """ASGI middleware: one log line per request (method, path, status, bytes, time, client, user).

    The query string is left out and tokens only travel in headers, so no token reaches a log.
    Paths that are not UTF-8 are refused here, before routing.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        seen = {"status": 0, "bytes": 0}

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                seen["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            path = scope.get("path", "")
            if "\ufffd" in path or any(0xD800 <= ord(c) <= 0xDFFF or ord(c) < 32 for c in path):
                await json_error(400, "request path is not valid UTF-8 text")(scope, receive, sending)
            else:
                await self.app(scope, receive, sending)
        finally:
            client = scope.get("client") or ("-", 0)
            user = scope.get("state", {}).get("user", "-")
            safe_path = scope.get("path", "").encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
            log.info("%s %s %s %d %dB %.1fms user=%s", client[0], scope.get("method"), safe_path[:300],
                     seen["status"], seen["bytes"], (time.perf_counter() - start) * 1000, user)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if isinstance(exc, SlowRefusal) and exc.delay:
        await asyncio.sleep(exc.delay)
    if isinstance(exc, sia.SiaError):
        return Response(sia.error_votable(exc.message), status_code=exc.status, media_type=sia.VOTABLE)
    return json_error(exc.status, exc.message, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: f"no such resource: {request.url.path[:200]}",
               405: f"method {request.method} not allowed here"}.get(exc.status_code, exc.detail)
    return json_error(exc.status_code, message, dict(exc.headers or {}))


async def _internal(request: Request, exc: Exception) -> Response:
    log.exception("internal error on %s %s", request.method, request.url.path)
    return json_error(500, f"internal error ({type(exc).__name__}); the operators' log has the details")


async def _root(request: Request) -> Response:
    base = request.app.state.service.public_url(request)
    return JSONResponse({"service": "owlpipe archive", "site": request.app.state.service.site.name,
                         "sia": f"{base}/sia", "api": f"{base}/api"})


def create_app(site: Site, *, public_url: str | None = None, notify_interval: float = 2.0,
               webhook_backoff: float = 5.0, mounts: Sequence[BaseRoute] = ()) -> Starlette:
    """The service over ``site``; ``mounts`` adds more parts (the console) to the same application."""
    state = ServiceState(site, public_url=public_url, webhook_backoff=webhook_backoff)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        worker = NotifierThread(state.notifications, notify_interval, log.info)
        worker.start()
        try:
            yield
        finally:
            worker.stop()

    routes: list[BaseRoute] = [Route("/", _root), Mount("/sia", routes=sia.routes), Mount("/api", routes=api.routes),
                               *mounts]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _internal})
    app.state.service = state
    app.add_middleware(RequestLog)
    return app
