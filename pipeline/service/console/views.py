"""The console's pages and actions. Pages read through the same queries as ``owl status``, ``owl dag
status`` and the campaign store; actions call the same functions as ``owl retry``, ``owl dag
hold/release/remove/rescue`` and ``owl request``."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from importlib.resources import files
from urllib.parse import parse_qsl, urlencode

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from pipeline.core.errors import OwlError
from pipeline.core.names import BadName, parse_dataset
from pipeline.core.osf import COLUMN_STAGES, COLUMNS, LETTERS, Blackboard
from pipeline.core.status import Filters, grid
from pipeline.service.auth import client_of
from pipeline.service.console.session import COOKIE, LOGIN_COOKIE, Session, Sessions, same, set_cookie
from pipeline.service.console.story import story, utc
from pipeline.service.tokens import AuthFailure

PAGE_SIZES = (50, 100, 200, 500)
#: Seconds of OSF updates sent again on every poll: a writer's timestamp may precede its commit.
SETTLE = 2.0
#: Seconds one server-sent event stream of the grid lasts before the browser reconnects.
STREAM_SECONDS = 15.0
ACTIONS = ("retry", "hold", "release", "remove", "rescue", "request")
#: Where an action's form may ask to return to (the page it was on).
BACK = {"dag": "/console/dags/{name}", "campaigns": "/console/campaigns"}
_STATIC = {"console.css": "text/css", "console.js": "text/javascript"}


def _template(name: str) -> str:
    return (files("pipeline.service.console") / "templates" / name).read_text(encoding="utf-8")


_env = jinja2.Environment(loader=jinja2.FunctionLoader(_template), autoescape=True, undefined=jinja2.StrictUndefined)
_env.filters["utc"] = utc


class Console:
    """The console's share of the service: its blackboard and sessions, made on first use."""

    def __init__(self, service) -> None:
        self.service = service
        self.site = service.site
        self.bb = Blackboard(self.site.database_url, self.site.database.busy_timeout)
        self.sessions = Sessions(self.site, self.site.console.session_hours)


_made = threading.Lock()


def _console(request: Request) -> Console:
    """The application's one :class:`Console` (handlers and their worker threads may ask first together)."""
    app_state = request.app.state
    with _made:
        if not hasattr(app_state, "console"):
            app_state.console = Console(app_state.service)
    return app_state.console


def _render(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
    c = _console(request)
    session = c.sessions.of(request)
    html = _env.get_template(name).render(site=c.site.name, user=session.user if session else None,
                                          csrf=session.csrf if session else "", columns=COLUMNS,
                                          letters=LETTERS, stages=COLUMN_STAGES, **context)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store",
                                                           "Content-Security-Policy": "default-src 'self'",
                                                           "X-Frame-Options": "DENY"})


def _reader(request: Request) -> Response | None:
    """None when the page may be shown; else a redirect to the login page."""
    c = _console(request)
    if c.site.console.public_read or c.sessions.of(request) is not None:
        return None
    return RedirectResponse(f"/console/login?{urlencode({'next': request.url.path})}", status_code=303)


class BadFilter(OwlError):
    pass


def _filters(request: Request) -> tuple[Filters, int, int, dict[str, str]]:
    """Filters, page size and page from the query string (every value checked), and the values to echo."""
    q = request.query_params
    given = {k: q.get(k, "").strip() for k in ("stage", "letter", "instrument", "workflow", "prefix", "association")}
    stage, letters = given["stage"].upper(), given["letter"]
    if stage and stage not in COLUMNS:
        raise BadFilter(f"unknown stage column {stage!r}")
    if letters and not all(ch in LETTERS for ch in letters):
        raise BadFilter(f"unknown OSF letter(s) {letters!r} (letters: {''.join(LETTERS)})")
    for key in ("instrument", "workflow", "prefix", "association"):
        if given[key] and not given[key].replace("_", "").replace("-", "").isalnum():
            raise BadFilter(f"{key} must be letters and digits, not {given[key][:40]!r}")
    if letters and not stage:
        raise BadFilter("letters filter one stage column: choose the stage too")
    if stage and not letters:
        letters = "".join(LETTERS)
    size = int(q.get("size", "100")) if q.get("size", "100").isdigit() else 100
    size = size if size in PAGE_SIZES else 100
    page = max(1, int(q["page"])) if q.get("page", "").isdigit() else 1
    f = Filters(column=stage or None, letters=letters if stage else None, data_id=given["instrument"].lower() or None,
                workflow=given["workflow"] or None, association=given["association"] or None,
                prefix=given["prefix"] or None)
    return f, size, page, given


async def _form(request: Request) -> dict[str, str]:
    """The posted form (urlencoded, as the console's forms send it; 16 kB at most), first value of each field."""
    body = await request.body()
    if len(body) > 16384:
        return {}
    fields: dict[str, str] = {}
    for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        fields.setdefault(key, value)
    return fields


def _page(request: Request):
    c = _console(request)
    f, size, page, given = _filters(request)
    return c, grid(c.bb, f, limit=size, offset=(page - 1) * size), size, page, given


def _grid_context(request: Request) -> dict:
    c, g, size, page, given = _page(request)
    query = {k: v for k, v in given.items() if v} | {"size": str(size)}
    return {"grid": g, "page": page, "pages": max(1, -(-g.total // size)), "size": size, "sizes": PAGE_SIZES,
            "given": given, "stamp": c.bb.last_change(), "parents": {r.parent for r in g.rows if r.parent},
            "query": urlencode(query), "workflows": c.bb.workflows()}


async def grid_page(request: Request) -> Response:
    if (refusal := _reader(request)) is not None:
        return refusal
    try:
        context = await run_in_threadpool(_grid_context, request)
    except OwlError as exc:
        return _render(request, "error.html", 400, message=exc.line())
    return _render(request, "grid.html", **context)


def _delta(request: Request, since: float) -> dict:
    """The page's order and counts, and its rows updated since ``since`` (less :data:`SETTLE`)."""
    g = _page(request)[1]
    return {"stamp": max([since, *(r.updated for r in g.rows)]), "total": g.total,
            "order": [r.dataset for r in g.rows], "counts": g.counts,
            "rows": {r.dataset: {"status": r.status, "parent": r.parent, "workflow": r.workflow, "data_id": r.data_id}
                     for r in g.rows if r.updated > since - SETTLE}}


async def grid_delta(request: Request) -> Response:
    """The page's rows that changed since ``since`` (the newest OSF update the page has seen): the polling path."""
    if _reader(request) is not None:
        return JSONResponse({"error": "log in first"}, status_code=401)
    try:
        delta = await run_in_threadpool(_delta, request, float(request.query_params.get("since", "0")))
    except (OwlError, ValueError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(delta, headers={"Cache-Control": "no-store"})


async def grid_events(request: Request) -> Response:
    """Server-sent events of the same deltas, pushed within a second of an OSF change (``EventSource``).

    Each stream ends after :data:`STREAM_SECONDS` (bounded work per connection), or within a second
    when the server stops; the browser reconnects by itself with ``Last-Event-ID`` = the stamp it has.
    """
    if _reader(request) is not None:
        return JSONResponse({"error": "log in first"}, status_code=401)
    try:
        since = float(request.headers.get("last-event-id") or request.query_params.get("since", "0"))
        _filters(request)
    except (OwlError, ValueError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return StreamingResponse(_events(request, since), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _events(request: Request, since: float):
    c = _console(request)
    yield "retry: 1000\n\n"
    end = time.monotonic() + STREAM_SECONDS
    seen, changed, quiet = None, 0.0, 0
    while time.monotonic() < end and not c.service.stopping.is_set():
        stamp = await run_in_threadpool(c.bb.last_change)
        if stamp != seen:
            seen, changed = stamp, time.monotonic()
        if time.monotonic() - changed <= SETTLE + 1:  # a change, and a late commit may still follow it
            delta = await run_in_threadpool(_delta, request, since)
            since = delta["stamp"]
            yield f"id: {since!r}\ndata: {json.dumps(delta, separators=(',', ':'))}\n\n"
            quiet = 0
        elif (quiet := quiet + 1) % 10 == 0:
            yield ": quiet\n\n"  # keeps proxies from closing an idle stream
        await asyncio.sleep(1.0)


async def dataset_page(request: Request) -> Response:
    if (refusal := _reader(request)) is not None:
        return refusal
    c = _console(request)
    try:
        name = parse_dataset(request.path_params["dataset"]).name
        s = await run_in_threadpool(story, c.site, c.bb, c.service.archive, name)
    except BadName as exc:
        return _render(request, "error.html", 404, message=str(exc))
    except OwlError as exc:
        return _render(request, "error.html", 404, message=exc.line())
    return _render(request, "dataset.html", s=s, message=request.query_params.get("done", "")[:300])


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _STATIC:
        return Response("not found", status_code=404)
    body = (files("pipeline.service.console") / "static" / name).read_bytes()
    return Response(body, media_type=_STATIC[name], headers={"Cache-Control": "max-age=60"})


# -- login -----------------------------------------------------------------------------------------
def _next(value: str | None) -> str:
    return value if value and value.startswith("/console") and "//" not in value else "/console/"


async def login_page(request: Request) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = _render(request, "login.html", nonce=nonce, next=_next(request.query_params.get("next")), error="")
    set_cookie(request, response, LOGIN_COOKIE, nonce, 600)
    return response


async def login(request: Request) -> Response:
    c = _console(request)
    form = await _form(request)
    target = _next(str(form.get("next", "")))
    client = client_of(request)
    if not same(request.cookies.get(LOGIN_COOKIE), str(form.get("nonce", ""))):
        c.service.audit.record(client=client, user=None, token=None, action="console-login", target="-",
                               status=403, detail="login form not from this browser (CSRF)")
        return _render(request, "error.html", 403, message="the login form expired or came from elsewhere: reload it")
    try:
        token = await run_in_threadpool(c.service.tokens.authenticate, str(form.get("token", "")).strip())
        if token.role != "operator":
            raise AuthFailure(f"token {token.key} of {token.user} is not an operator's (role {token.role})")
    except AuthFailure as exc:
        await asyncio.sleep(c.service.throttle.failed(client))
        c.service.audit.record(client=client, user=None, token=None, action="console-login", target="-",
                               status=401, detail=exc.reason)
        nonce = secrets.token_urlsafe(24)
        response = _render(request, "login.html", 401, nonce=nonce, next=target, error=exc.reason)
        set_cookie(request, response, LOGIN_COOKIE, nonce, 600)
        return response
    c.service.throttle.succeeded(client)
    sid, _ = c.sessions.open(token.user, token.key)
    c.service.audit.record(client=client, user=token.user, token=token.key, action="console-login", target="-",
                           status=200)
    response = RedirectResponse(target, status_code=303)
    set_cookie(request, response, COOKIE, sid, int(c.sessions.seconds))
    response.delete_cookie(LOGIN_COOKIE, path="/console")
    return response


async def logout(request: Request) -> Response:
    c = _console(request)
    session = c.sessions.of(request)
    form = await _form(request)
    if session is not None and same(session.csrf, str(form.get("csrf", ""))):
        c.sessions.close(request)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


# -- actions ---------------------------------------------------------------------------------------
def _act(c: Console, action: str, dataset: str, from_stage: str | None) -> str:
    """Do one action through the same functions as the ``owl`` commands; one line saying what happened."""
    from pipeline.orchestration.campaign import request as do_request
    from pipeline.orchestration.controller import Controller
    from pipeline.orchestration.operator import control, rescue, retry

    if action == "request":
        return "; ".join(do_request(c.site, dataset))
    ctl = Controller(c.site)
    if action == "retry":
        done = retry(ctl, dataset, from_stage)
        if ctl.kind == "condor":
            ctl.dispatch(raise_errors=True)
        reset = ", ".join(done.reset) or "nothing failed"
        return (f"{done.dataset}: reset {reset}; submission {done.submission.id} queued"
                + ("" if ctl.kind == "condor" else " (the running 'owl watch' starts it)"))
    if action == "rescue":
        ctl, sub = rescue(ctl, dataset)
        if ctl.kind == "condor":
            ctl.dispatch(raise_errors=True)
        return f"{sub.dataset}: rescue submission {sub.id} ({sub.workflow}, {sub.executor})"
    return control(ctl, action, dataset)


def _machines(c: Console) -> dict:
    """Recent submissions by state, the throttles, which datasets each stage processes now, and what
    each local executor's workers run (their records in the dags area)."""
    from pipeline.orchestration.controller import Controller
    from pipeline.orchestration.dag import dag_files
    from pipeline.orchestration.executors.workers import read_workers

    subs = Controller(c.site).submissions()
    states: dict[str, int] = {}
    for sub in subs:
        states[sub.state] = states.get(sub.state, 0) + 1
    g = grid(c.bb, limit=0)
    busy = {col: [e.dataset for e in grid(c.bb, Filters(column=col, letters="p"), limit=20).rows]
            for col in COLUMNS if g.counts[col].get("p")}
    waiting = {col: g.counts[col].get("w", 0) for col in COLUMNS if g.counts[col].get("w")}
    recent = list(reversed(subs))[:100]
    halted = {sub.dataset for sub in recent if dag_files(c.site, sub.dataset).halt.exists()}
    return {"subs": recent, "halted": halted, "states": states, "busy": busy, "waiting": waiting,
            "throttles": c.site.throttles, "executor": c.site.executor,
            "workers": read_workers(c.site.areas.dags / "workers")}


async def dags_page(request: Request) -> Response:
    if (refusal := _reader(request)) is not None:
        return refusal
    return _render(request, "dags.html", **await run_in_threadpool(_machines, _console(request)))


def _dag(c: Console, dataset: str) -> dict:
    from pipeline.orchestration.controller import Controller
    from pipeline.orchestration.operator import dag_view

    return dag_view(Controller(c.site), dataset)


async def dag_page(request: Request) -> Response:
    if (refusal := _reader(request)) is not None:
        return refusal
    try:
        name = parse_dataset(request.path_params["dataset"]).name
        dag = await run_in_threadpool(_dag, _console(request), name)
    except BadName as exc:
        return _render(request, "error.html", 404, message=str(exc))
    except OwlError as exc:
        return _render(request, "error.html", 404, message=exc.line())
    return _render(request, "dag.html", dag=dag, message=request.query_params.get("done", "")[:300])


def _campaigns(c: Console) -> list[dict]:
    from pipeline.orchestration.campaign import CampaignStore

    store = CampaignStore(c.site)
    out = []
    for campaign in reversed(store.all()):
        counts = store.counts(campaign)
        open_rows = store.datasets(campaign, ("pending", "submitted", "failed"))
        out.append({"campaign": campaign, "counts": counts, "total": sum(counts.values()),
                    "rows": open_rows[:100], "more": max(0, len(open_rows) - 100)})
    return out


async def campaigns_page(request: Request) -> Response:
    if (refusal := _reader(request)) is not None:
        return refusal
    campaigns = await run_in_threadpool(_campaigns, _console(request))
    return _render(request, "campaigns.html", campaigns=campaigns,
                   message=request.query_params.get("done", "")[:300])


async def action(request: Request) -> Response:
    c = _console(request)
    verb, dataset = request.path_params["action"], request.path_params["dataset"]
    session: Session | None = c.sessions.of(request)
    form = await _form(request)
    client = client_of(request)

    def audit(status: int, detail: str) -> None:
        c.service.audit.record(client=client, user=session.user if session else None,
                               token=session.token_key if session else None, action=f"console-{verb}",
                               target=dataset, status=status, detail=detail)

    if verb not in ACTIONS:
        return _render(request, "error.html", 404, message=f"no such action {verb[:20]!r}")
    if session is None:
        audit(401, "not logged in")
        return _render(request, "error.html", 401, message="log in as an operator to act on datasets")
    if not same(session.csrf, str(form.get("csrf", ""))):
        audit(403, "CSRF token missing or wrong")
        return _render(request, "error.html", 403, message="this form did not come from your console session")
    from_stage = str(form.get("from_stage", "")).upper() or None
    if from_stage and from_stage not in COLUMNS:
        return _render(request, "error.html", 400, message=f"unknown stage column {from_stage!r}")
    if form.get("confirmed") != "yes":
        return _render(request, "confirm.html", verb=verb, dataset=dataset, from_stage=from_stage or "",
                       back=form.get("back") if form.get("back") in BACK else "")
    try:
        name = parse_dataset(dataset).name
        line = await run_in_threadpool(_act, c, verb, name, from_stage)
    except BadName as exc:
        return _render(request, "error.html", 404, message=str(exc))
    except OwlError as exc:
        audit(409, exc.line())
        return _render(request, "error.html", 409, message=exc.line())
    audit(200, line)
    back = form.get("back") if form.get("back") in BACK else ("dag" if verb in ("remove", "rescue") else "")
    return RedirectResponse(BACK.get(back, "/console/datasets/{name}").format(name=name) + "?"
                            + urlencode({"done": line}), status_code=303)


routes = [
    Route("/", grid_page, name="grid"),
    Route("/grid.json", grid_delta),
    Route("/grid.events", grid_events),
    Route("/datasets/{dataset}", dataset_page),
    Route("/datasets/{dataset}/{action}", action, methods=["POST"]),
    Route("/dags", dags_page),
    Route("/campaigns", campaigns_page),
    Route("/dags/{dataset}", dag_page),
    Route("/login", login_page),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/static/{name}", static),
]
