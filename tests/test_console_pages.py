"""The console's pages and actions over the real application and a real site (in-process HTTP):
login and its refusals, CSRF, the grid's filters and JSON delta, hold/release/request, public reading."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from pipeline.core.osf import COLUMNS, Blackboard
from pipeline.orchestration.controller import Controller
from pipeline.orchestration.dag import dag_files
from pipeline.service.app import create_app
from pipeline.service.audit import AuditLog
from pipeline.service.console import mount
from pipeline.service.tokens import TokenStore
from tests.orchkit import KIT_SHORT, register

ASN, MEMBERS = "j9cv58020", ("j9cv58abq", "j9cv58acq")


@pytest.fixture
def client(site):
    register(Blackboard(site.database_url))
    register(Blackboard(site.database_url), "ib1f01010", ("ib1f01a1q", "ib1f01a2q"))
    return TestClient(create_app(site, mounts=[mount()]))


def log_in(client: TestClient, token: str, status: int = 303):
    page = client.get("/console/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
    r = client.post("/console/login", data={"nonce": nonce, "token": token, "next": "/console/"},
                    follow_redirects=False)
    assert r.status_code == status, r.text[:300]
    return r


def csrf_of(client: TestClient, dataset: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(f"/console/datasets/{dataset}").text).group(1)


def test_login_cookie_and_refusals(site, client):
    r = client.get("/console/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
    assert client.get("/console/grid.json").status_code == 401
    user_token, _ = TokenStore(site).create("bob")  # a user, not an operator
    assert "not an operator" in log_in(client, user_token, 401).text
    assert "token not recognised" in log_in(client, "owl_000000000000_" + "x" * 43, 401).text
    forged = client.post("/console/login", data={"nonce": "guess", "token": user_token}, follow_redirects=False)
    assert forged.status_code == 403
    token, _ = TokenStore(site).create("ann", role="operator")
    cookie = log_in(client, token).headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert client.get("/console/").status_code == 200 and "Secure" not in cookie
    behind_tls = TestClient(create_app(site, public_url="https://archive.example.org", mounts=[mount()]))
    assert "Secure" in behind_tls.get("/console/login").headers["set-cookie"]  # the login nonce, likewise the session
    refused = [(a.action, a.status) for a in AuditLog(site).recent() if a.action == "console-login"]
    assert refused.count(("console-login", 401)) == 2 and ("console-login", 200) in refused


def test_grid_filters_paging_and_delta(site, client):
    token, _ = TokenStore(site).create("ann", role="operator")
    log_in(client, token)
    page = client.get("/console/?prefix=j9cv&size=50").text
    assert re.findall(r'<tr id="r-(\w+)"', page) == [ASN, *MEMBERS]
    assert 'aria-expanded="true"' in page and 'title="CA: not yet"' in page
    assert re.findall(r'<tr id="r-(\w+)"', client.get("/console/?instrument=wf3").text)[0] == "ib1f01010"
    bb = Blackboard(site.database_url)
    bb.transition([MEMBERS[0]], "IN", "_", "e", who="test")
    assert re.findall(r'<tr id="r-(\w+)"', client.get("/console/?stage=IN&letter=e").text) == [ASN, MEMBERS[0]]
    assert client.get("/console/?letter=q&stage=IN").status_code == 400
    assert "choose the stage" in client.get("/console/?letter=e").text
    assert client.get("/console/?prefix=a%27--").status_code == 400
    full = client.get("/console/grid.json?since=0").json()
    assert full["total"] == 6 and full["counts"]["IN"] == {"_": 4, "e": 2} and len(full["rows"]) == 6
    later = client.get(f"/console/grid.json?since={full['stamp'] + 10}").json()
    assert later["rows"] == {} and later["order"] == full["order"]  # nothing changed: nothing sent
    second = client.get("/console/grid.json?size=50&page=2").json()
    assert second["order"] == []


def test_hold_release_and_request_as_the_commands_do(site, client):
    token, _ = TokenStore(site).create("ann", role="operator")
    log_in(client, token)
    ctl = Controller(site, executor="local")
    ctl.submit(ASN, str(KIT_SHORT))
    csrf = csrf_of(client, ASN)
    ask = client.post(f"/console/datasets/{ASN}/hold", data={"csrf": csrf})
    assert ask.status_code == 200 and "Yes, hold" in ask.text and not dag_files(site, ASN).halt.exists()
    done = client.post(f"/console/datasets/{ASN}/hold", data={"csrf": csrf, "confirmed": "yes"})
    assert done.status_code == 200 and "hold requested" in done.text
    assert dag_files(site, ASN).halt.exists() and ctl.submissions(ASN)[-1].state == "held"
    assert re.search(r'class="Lh L">held<', done.text)
    dag_page = client.get(f"/console/dags/{ASN}").text
    assert "<strong>held</strong>" in dag_page and 'id="node-CA_j9cv58abq"' in dag_page
    assert re.search(r'<span class="L Lh">held</span>', client.get("/console/dags").text)
    client.post(f"/console/datasets/{ASN}/release", data={"csrf": csrf, "confirmed": "yes"})
    assert not dag_files(site, ASN).halt.exists() and ctl.submissions(ASN)[-1].state == "queued"
    member = client.post(f"/console/datasets/{MEMBERS[0]}/retry", data={"csrf": csrf, "confirmed": "yes"})
    assert member.status_code == 409 and "retry the association" in member.text
    req = client.post(f"/console/datasets/{ASN}/request", data={"csrf": csrf, "confirmed": "yes"})
    assert req.status_code == 200
    assert ctl.submissions(ASN)[-1].priority == site.priorities.requested
    client.post(f"/console/datasets/{ASN}/remove", data={"csrf": csrf, "confirmed": "yes"})
    assert ctl.submissions(ASN)[-1].state == "removed"
    rescued = client.post(f"/console/datasets/{ASN}/rescue", data={"csrf": csrf, "confirmed": "yes"})
    assert rescued.status_code == 200 and "rescue submission" in rescued.text
    assert [s.state for s in ctl.submissions(ASN)] == ["removed", "queued"]
    audit = [(a.action, a.status) for a in AuditLog(site).recent()]
    assert {("console-hold", 200), ("console-release", 200), ("console-retry", 409), ("console-request", 200)} <= \
        set(audit)


def test_public_read_opens_pages_but_not_actions(site):
    register(Blackboard(site.database_url))
    site.console.public_read = True
    client = TestClient(create_app(site, mounts=[mount()]))
    assert ASN in client.get("/console/").text
    assert client.get(f"/console/datasets/{ASN}").status_code == 200
    assert client.post(f"/console/datasets/{ASN}/hold", data={"csrf": "", "confirmed": "yes"}).status_code == 401
    assert client.get("/console/datasets/zz").status_code == 404


def test_campaigns_page_shows_progress_and_requests(site, tmp_path, client):
    from pipeline.orchestration.campaign import CampaignStore
    from pipeline.orchestration.reprocess import Affected, Change, Selection
    from tests.service_kit import fill

    fill(site, tmp_path / "src")
    change = (Change("bpixtab", "old_bpx.fits", "new_bpx.fits"),)
    names = ("ib4606c5q", "ib4606c6q", "ic1h01a1q")
    store = CampaignStore(site)
    campaign = store.create("repro-test", Selection("hst_0349.pmap", {"hst_0300.pmap": {"WFC3": ["bpixtab"]}},
                                                    affected=[Affected(d, d, "WFC3", 1, "hst_0300.pmap", change)
                                                              for d in names]),
                            old_context=None, instruments=["WFC3"], since=None)
    store.set(campaign, names[0], state="failed", message="CA exit 20: bad input data")
    token, _ = TokenStore(site).create("ann", role="operator")
    log_in(client, token)
    page = client.get("/console/campaigns").text
    assert "repro-test" in page and "2 queued" in page and "1 failed" in page and "CA exit 20" in page
    assert page.count("Request…") == 2  # only queued rows can be moved to the front
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    done = client.post(f"/console/datasets/{names[2]}/request",
                       data={"csrf": csrf, "confirmed": "yes", "back": "campaigns"})
    assert done.status_code == 200 and "repro-test" in done.text and f"{names[2]}</a> (requested)" in done.text
    assert store.datasets(campaign, ("pending",))[0].dataset == names[2]


def test_dataset_story_shows_versions_and_previews(site, tmp_path, client):
    from PIL import Image

    from pipeline.archive.store import Archive
    from tests.service_kit import fill

    fill(site, tmp_path / "src")
    ds = "ib4606c5q"
    Blackboard(site.database_url).create(ds, who="test")
    pics = []
    for name, size in ((f"{ds}_flt.jpg", 512), (f"{ds}_flt_thumb.jpg", 128)):
        Image.new("L", (size, size), 90).save(tmp_path / name)
        pics.append((tmp_path / name, "flt_jpg" if size == 512 else "flt_thumb_jpg"))
    Archive(site).ingest(ds, pics)
    token, _ = TokenStore(site).create("ann", role="operator")
    log_in(client, token)
    page = client.get(f"/console/datasets/{ds}").text
    assert "version 2" in page and "version 1" in page and "hst_0300.pmap" in page
    flt = next(f for f in Archive(site).files(ds, 1) if f.kind == "flt")
    assert flt.sha256 in page and f"<td>{flt.size}</td>" in page
    assert f'<img src="/api/datasets/{ds}/files/{ds}_flt_thumb.jpg?version=2"' in page
    assert f'href="/api/datasets/{ds}/files/{ds}_flt.jpg"' in page and "Never submitted" in page


def test_sessions_survive_a_restart_and_end_with_logout_expiry_or_revocation(site, client):
    """Sessions are rows of the site database (the id's hash only): a new server process keeps them."""
    import hashlib
    import time

    from sqlalchemy import select, update

    from pipeline.service.console.session import COOKIE, SessionRow

    store = TokenStore(site)
    token, record = store.create("ann", role="operator")
    log_in(client, token)
    sid = client.cookies[COOKIE]
    restarted = TestClient(create_app(site, mounts=[mount()]))  # another app over the same site
    restarted.cookies.set(COOKIE, sid, path="/console")
    assert restarted.get("/console/", follow_redirects=False).status_code == 200
    assert csrf_of(restarted, ASN) == csrf_of(client, ASN)  # derived from the session id, not stored
    engine = Blackboard(site.database_url).engine
    with engine.connect() as conn:
        rows = conn.execute(select(SessionRow.digest, SessionRow.user)).all()
    assert rows == [(hashlib.sha256(sid.encode()).hexdigest(), "ann")]  # no session id in the database

    with engine.begin() as conn:  # expiry
        conn.execute(update(SessionRow).values(expires=time.time() - 1))
    assert restarted.get("/console/", follow_redirects=False).status_code == 303
    with engine.begin() as conn:
        conn.execute(update(SessionRow).values(expires=time.time() + 3600))
    assert restarted.get("/console/", follow_redirects=False).status_code == 200
    store.revoke(record.key)  # owl token revoke ends the sessions the token opened
    assert restarted.get("/console/", follow_redirects=False).status_code == 303

    token2, _ = store.create("ann", role="operator")
    log_in(client, token2)
    csrf = csrf_of(client, ASN)
    client.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    stale = TestClient(create_app(site, mounts=[mount()]))
    stale.cookies.set(COOKIE, client.cookies.get(COOKIE) or "", path="/console")
    assert stale.get("/console/", follow_redirects=False).status_code == 303


def _events(lines, count: int) -> list[dict]:
    """The next ``count`` data events of a server-sent event stream."""
    import json

    out = []
    for line in lines:
        if line.startswith("data: "):
            out.append(json.loads(line[6:]))
            if len(out) == count:
                return out
    raise AssertionError("stream ended")


def test_grid_events_push_changes(site):
    import httpx

    from tests.service_kit import running

    register(Blackboard(site.database_url))
    with running(create_app(site, mounts=[mount()])) as base:
        assert httpx.get(f"{base}/console/grid.events").status_code == 401  # login first, as for grid.json
        assert httpx.get(f"{base}/console/grid.events?prefix=a%27--").status_code in (400, 401)
    site.console.public_read = True
    bb = Blackboard(site.database_url)
    with running(create_app(site, mounts=[mount()])) as base, httpx.Client(timeout=20) as client:
        with client.stream("GET", f"{base}/console/grid.events?since=0") as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = r.iter_lines()
            first = _events(lines, 1)[0]
            assert first["total"] == 3 and set(first["rows"]) == {ASN, *MEMBERS}
            bb.transition([MEMBERS[1]], "IN", "_", "e", who="test")
            col = COLUMNS.index("IN")
            for _ in range(8):  # one event a second while a change settles; the change comes within a few
                pushed = _events(lines, 1)[0]
                if MEMBERS[1] in pushed["rows"] and pushed["rows"][MEMBERS[1]]["status"][col] == "e":
                    break
            else:
                raise AssertionError("the change was not pushed")
            assert pushed["counts"]["IN"]["e"] == 2  # the member and its association
        with client.stream("GET", f"{base}/console/grid.events",
                           headers={"Last-Event-ID": str(pushed["stamp"] + 10)}) as r:  # a reconnect resumes
            assert _events(r.iter_lines(), 1)[0]["rows"] == {}


def test_a_page_looks_its_session_up_once(site, client, monkeypatch):
    """Access check and rendering share one session look-up per request (each is a database query)."""
    from pipeline.service.console.session import Sessions

    token, _ = TokenStore(site).create("ann", role="operator")
    log_in(client, token)
    calls: list[str] = []
    lookup = Sessions._lookup

    def counted(self, request):
        calls.append(request.url.path)
        return lookup(self, request)

    monkeypatch.setattr(Sessions, "_lookup", counted)
    page = client.get("/console/datasets/j9cv58020")
    assert page.status_code == 200 and "ann" in page.text
    assert calls == ["/console/datasets/j9cv58020"]
