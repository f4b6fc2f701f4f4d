"""The JSON API for scripts: search, one dataset's record, file and tar downloads, requests, notifications.

Metadata are public; files of a dataset still in its exclusive period go only to a token whose user
is the program's PI, names the program, or is an operator (401 without a token, 403 otherwise).
Every download and refusal is written to the audit table.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipeline.archive.store import ArchivedFile, ArchiveVersion, VersionInfo
from pipeline.core.errors import OwlError
from pipeline.service import downloads, reprocessing, search
from pipeline.service.access import Rights, header_pi, rights
from pipeline.service.auth import client_of, identify
from pipeline.service.errors import ApiError
from pipeline.service.inputs import dataset_param, file_param, int_param, only, plain_param, query_params
from pipeline.service.tokens import Token

MAX_LIMIT = 1000
_SEARCH_PARAMS = {"id", "instrument", "target", "program", "date_from", "date_to", "ra", "dec", "radius", "calib",
                  "limit"}


def _state(request: Request):
    return request.app.state.service


def _float(name: str, text: str | None, low: float, high: float) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ApiError(400, f"{name}={text[:40]!r}: not a number") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name}={text[:40]}: outside [{low:g}, {high:g}]")
    return value


def search_datasets(request: Request) -> Response:
    """``GET /api/datasets``: products matching simple filters (the same search SIA uses)."""
    p = only(query_params(request), _SEARCH_PARAMS)
    c = search.Constraints()
    if "id" in p:
        c.ids.append(dataset_param(p["id"]).name)
    for key, target in (("instrument", c.instruments), ("target", c.targets), ("program", c.programs)):
        if key in p:
            target.append(plain_param(key, p[key]))
    for key in ("date_from", "date_to"):
        if key in p:
            if not all(ch.isdigit() or ch in "-:T" for ch in p[key]) or len(p[key]) > 19:
                raise ApiError(400, f"{key}={p[key][:40]!r}: expected an ISO date like 2012-06-01")
            setattr(c, key, p[key])
    cone = [_float(k, p.get(k), lo, hi) for k, lo, hi in (("ra", 0, 360), ("dec", -90, 90), ("radius", 0, 180))]
    if any(v is not None for v in cone):
        if any(v is None for v in cone):
            raise ApiError(400, "a cone search needs ra, dec and radius (degrees)")
        c.circles.append(tuple(cone))
    if "calib" in p:
        c.calibs.append(int_param("calib", p["calib"], high=4))
    limit = int_param("limit", p.get("limit"), low=1, high=MAX_LIMIT) or 100
    state = _state(request)
    found = list(search.search(state.archive.engine, state.programs, c, limit))
    base = state.public_url(request)
    return JSONResponse({"count": len(found), "limit": limit, "products": [
        {**p.as_dict(), "url": f"{base}/api/datasets/{p.obs_id}/files/{p.name}?version={p.version}"} for p in found]})


def _infos(request: Request, dataset: str) -> list[VersionInfo]:
    ds = dataset_param(dataset)
    infos = _state(request).archive.version_info(ds)
    if not infos:
        raise ApiError(404, f"{ds.name} is not archived")
    return infos


def dataset_rights(request: Request, infos: list[VersionInfo]) -> Rights:
    """Rights from the newest version's program and date; the PI from the program table, else the header."""
    state = _state(request)
    fields = infos[-1].fields
    program = fields.get("program")
    prog = state.programs.get(program) if program else None
    r = rights(prog, program, fields.get("date_obs"))
    if r.pi is None:
        v = ArchiveVersion
        with state.archive.engine.connect() as conn:
            row = conn.execute(select(v.header["PR_INV_F"].as_string(), v.header["PR_INV_L"].as_string())
                               .where(v.dataset == infos[-1].dataset, v.version == infos[-1].version)).first()
        r = Rights(r.program, header_pi(*row) if row else None, r.release_date, r.data_rights)
    return r


def _file_dict(base: str, f: ArchivedFile) -> dict[str, Any]:
    return {"kind": f.kind, "name": f.name, "size": f.size, "sha256": f.sha256, "version": f.version,
            "url": f"{base}/api/datasets/{f.dataset}/files/{f.name}?version={f.version}"}


def dataset_record(request: Request) -> Response:
    """``GET /api/datasets/{dataset}``: versions, files, context, software, rights and reprocessing state."""
    only(query_params(request), set())
    infos = _infos(request, request.path_params["dataset"])
    state = _state(request)
    base = state.public_url(request)
    newest = infos[-1]
    return JSONResponse({
        "dataset": newest.dataset, **dataset_rights(request, infos).as_dict(),
        "current_version": newest.version,
        "fields": {k: v for k, v in newest.fields.items() if k != "software"},
        "versions": [{"version": i.version, "ingested": i.ingested, "crds_context": i.fields.get("crds_context"),
                      "software": i.fields.get("software") or {}, "files": [_file_dict(base, f) for f in i.files]}
                     for i in infos],
        "reprocessing": reprocessing.state(state.site, newest.dataset, newest.version),
        "tar_url": f"{base}/api/datasets/{newest.dataset}/tar"})


def _authorise(request: Request, dataset: str, infos: list[VersionInfo], action: str, target: str) -> Token | None:
    """The caller's token if it may read the files (public data need none); 401/403 otherwise, all audited."""
    state = _state(request)
    client = client_of(request)
    try:
        token = identify(request, state.tokens, state.throttle)
    except ApiError as exc:
        state.audit.record(client=client, user=None, token=None, action=action, target=target, status=exc.status,
                           detail=exc.message)
        raise
    r = dataset_rights(request, infos)
    if r.public or (token is not None and token.may_read(r.program, r.pi)):
        return token
    user = token.user if token else None
    status, why = ((401, f"{dataset} is exclusive to program {r.program} until {r.release_date}: send a token "
                         "(Authorization: Bearer ...)") if token is None else
                   (403, f"{dataset} is exclusive to program {r.program} until {r.release_date}; user {token.user} "
                         "is neither its PI nor designated for it"))
    state.audit.record(client=client, user=user, token=token.key if token else None, action=action, target=target,
                       status=status, detail=why)
    headers = {"WWW-Authenticate": 'Bearer realm="owl"'} if status == 401 else None
    raise ApiError(status, why, headers)


def _download_params(request: Request) -> tuple[int | None, bool]:
    p = only(query_params(request), {"version", "verify"})
    verify = p.get("verify", "0")
    if verify not in ("0", "1", "true", "false"):
        raise ApiError(400, f"verify={verify[:20]!r}: use 1 or 0")
    return int_param("version", p.get("version"), low=1), verify in ("1", "true")


def _served(request: Request, f: ArchivedFile, verify: bool, token: Token | None, action: str,
            infos: list[VersionInfo]) -> dict[str, str]:
    """Check the blob, audit the access, and return the reprocessing header for the response."""
    state = _state(request)
    audit = {"client": client_of(request), "user": token.user if token else None,
             "token": token.key if token else None, "action": action, "target": f"{f.dataset} v{f.version} {f.name}"}
    try:
        downloads.check_blob(f, verify)
    except ApiError as exc:
        state.audit.record(**audit, status=exc.status, detail=exc.message)
        raise
    status = 206 if request.headers.get("range") else 200
    state.audit.record(**audit, status=status, detail="verified" if verify else "")
    return reprocessing.header_line(reprocessing.state(state.site, f.dataset, infos[-1].version))


def download_file(request: Request) -> Response:
    """``GET /api/datasets/{dataset}/files/{name}``: one file (newest version holding it, or ``version``)."""
    name = file_param(request.path_params["name"])
    version, verify = _download_params(request)
    infos = _infos(request, request.path_params["dataset"])
    candidates = [f for i in reversed(infos) if version is None or i.version == version for f in i.files
                  if f.name == name]
    if not candidates:
        raise ApiError(404, f"{infos[-1].dataset} has no archived file {name}"
                            + (f" in version {version}" if version else ""))
    f = candidates[0]
    token = _authorise(request, f.dataset, infos, "file", f"{f.dataset} v{f.version} {f.name}")
    extra = _served(request, f, verify, token, "file", infos)
    return downloads.file_response(request, f, extra)


def download_tar(request: Request) -> Response:
    """``GET /api/datasets/{dataset}/tar``: a version's files (default: the newest file of each kind) as a tar."""
    version, verify = _download_params(request)
    infos = _infos(request, request.path_params["dataset"])
    ds = infos[-1].dataset
    files = _state(request).archive.files(ds, version)
    if not files:
        raise ApiError(404, f"{ds} has no version {version}; versions: {', '.join(str(i.version) for i in infos)}")
    token = _authorise(request, ds, infos, "tar", f"{ds} tar v{version or 'newest'}")
    extra: dict[str, str] = {}
    for f in files:
        extra = _served(request, f, verify, token, "tar", infos)
    return downloads.tar_response(f"{ds}_v{version}" if version else ds, files, extra)


def _require_token(request: Request) -> Token:
    state = _state(request)
    token = identify(request, state.tokens, state.throttle)
    if token is None:
        raise ApiError(401, "this needs a token (Authorization: Bearer ...)",
                       {"WWW-Authenticate": 'Bearer realm="owl"'})
    return token


def request_dataset(request: Request) -> Response:
    """``POST /api/datasets/{dataset}/request``: prioritise as ``owl request`` does and subscribe the caller."""
    from pipeline.orchestration.campaign import request as prioritise

    only(query_params(request), set())
    token = _require_token(request)
    infos = _infos(request, request.path_params["dataset"])
    ds = infos[-1].dataset
    state = _state(request)
    try:
        actions = prioritise(state.site, ds)
    except OwlError as exc:
        actions = [f"not prioritised: {exc.line()}"]
    subscription = state.notifications.subscribe(token.user, ds)
    state.audit.record(client=client_of(request), user=token.user, token=token.key, action="request", target=ds,
                       status=200, detail=f"subscription {subscription}")
    return JSONResponse({"dataset": ds, "actions": actions, "subscription": subscription,
                         "reprocessing": reprocessing.state(state.site, ds, infos[-1].version)})


def notifications(request: Request) -> Response:
    """``GET /api/notifications?since=ID``: the caller's notifications, oldest first."""
    p = only(query_params(request), {"since", "limit"})
    token = _require_token(request)
    feed = _state(request).notifications.feed(token.user, int_param("since", p.get("since")) or 0,
                                              int_param("limit", p.get("limit"), low=1, high=1000) or 100)
    return JSONResponse({"user": token.user, "notifications": [n.as_dict() for n in feed]})


async def webhook(request: Request) -> Response:
    """``PUT /api/webhook`` ``{"url": "https://..."}`` registers the caller's webhook (if the site's webhook
    policy allows the URL: 400 naming the rule otherwise); ``DELETE`` removes it."""
    from starlette.concurrency import run_in_threadpool

    token = await run_in_threadpool(_require_token, request)
    url = None
    if request.method == "PUT":
        try:
            body = json.loads((await request.body())[:10000] or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "body must be JSON like {\"url\": \"https://example.org/hook\"}") from None
        url = body.get("url") if isinstance(body, dict) else None
        refused = await run_in_threadpool(_state(request).notifications.policy.refusal, url)
        if refused is not None:
            raise ApiError(400, refused)
    await run_in_threadpool(_state(request).notifications.set_webhook, token.user, url)
    return JSONResponse({"user": token.user, "webhook": url})


routes = [
    Route("/datasets", search_datasets),
    Route("/datasets/{dataset}", dataset_record),
    Route("/datasets/{dataset}/files/{name}", download_file),
    Route("/datasets/{dataset}/tar", download_tar),
    Route("/datasets/{dataset}/request", request_dataset, methods=["POST"]),
    Route("/notifications", notifications),
    Route("/webhook", webhook, methods=["PUT", "DELETE"]),
]
