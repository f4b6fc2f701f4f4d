"""Download now or wait: a dataset queued in a campaign says so, a request moves it to the front and
subscribes, and the new version's ingest notifies the feed and a loopback webhook (retried across a restart)."""

from __future__ import annotations

import http.server
import json
import threading
import time

import httpx
import pytest

from pipeline.orchestration.campaign import CampaignStore
from pipeline.orchestration.reprocess import Affected, Change, Selection
from pipeline.service.notifications import Notifications
from pipeline.service.tokens import TokenStore
from tests.service_kit import fill, make_fits, running

ASKED = "ic1h01a1q"
NEW = "hst_0349.pmap"


class Receiver(http.server.BaseHTTPRequestHandler):
    """A webhook endpoint that fails its first ``fail`` POSTs with 503, then records them."""

    fail = 0
    got: list[dict] = []  # noqa: RUF012  (class-level state shared with the test)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if Receiver.fail > 0:
            Receiver.fail -= 1
            self.send_response(503)
        else:
            Receiver.got.append(body)
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    Receiver.fail, Receiver.got = 2, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def _campaign(site) -> None:
    change = (Change("bpixtab", "old_bpx.fits", "new_bpx.fits"),)
    affected = [Affected(d, d, "WFC3", 1, "hst_0300.pmap", change) for d in ("ib4606c5q", "ib4606c6q", ASKED)]
    CampaignStore(site).create("repro-test", Selection(NEW, {"hst_0300.pmap": {"WFC3": ["bpixtab"]}},
                                                       affected=affected), old_context=None, instruments=["WFC3"],
                               since=None)


def _wait(what, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_request_prioritises_subscribes_and_notifies(site, tmp_path, receiver):
    from pipeline.service.app import create_app

    fill(site, tmp_path / "src")
    _campaign(site)
    site.service.webhook_schemes, site.service.webhook_allow = ["http", "https"], ["127.0.0.1"]  # the receiver
    token, _ = TokenStore(site).create("astro")
    auth = {"Authorization": f"Bearer {token}"}
    store = CampaignStore(site)
    campaign = store.find("repro-test")
    assert [r.dataset for r in store.datasets(campaign)][-1] == ASKED

    app = create_app(site, notify_interval=0.2, webhook_backoff=3.0)
    with running(app) as base:
        rec = httpx.get(f"{base}/api/datasets/{ASKED}").json()
        assert rec["reprocessing"]["state"] == "queued" and rec["reprocessing"]["serving_version"] == 1
        assert rec["reprocessing"]["campaign"] == "repro-test"
        dl = httpx.get(f"{base}/api/datasets/{ASKED}/files/{ASKED}_raw.fits")
        assert dl.status_code == 200 and "queued in campaign repro-test" in dl.headers["x-owl-reprocessing"]
        assert httpx.post(f"{base}/api/datasets/{ASKED}/request").status_code == 401
        assert httpx.put(f"{base}/api/webhook", json={"url": "file:///etc/passwd"}, headers=auth).status_code == 400
        assert httpx.put(f"{base}/api/webhook", json={"url": receiver}, headers=auth).status_code == 200

        asked = httpx.post(f"{base}/api/datasets/{ASKED}/request", headers=auth)
        assert asked.status_code == 200, asked.text
        assert "moved to the front of campaign repro-test" in asked.json()["actions"][0]
        assert store.datasets(campaign)[0].dataset == ASKED
        assert store.datasets(campaign)[0].requested is not None
        assert httpx.get(f"{base}/api/notifications", headers=auth).json()["notifications"] == []

        # the reprocessed version lands (what INGEST_SCI does at the end of the campaign's DAG)
        from pipeline.archive.store import Archive

        raw = make_fits(tmp_path / f"{ASKED}_raw.fits", ASKED, seed=99, context=NEW)
        assert Archive(site).ingest(ASKED, [(raw, "raw")]) == 2
        feed = _wait(lambda: httpx.get(f"{base}/api/notifications", headers=auth).json()["notifications"])
        assert feed[0]["dataset"] == ASKED
        assert feed[0]["payload"]["versions"] == [{"dataset": ASKED, "version": 2, "crds_context": NEW}]
        _wait(lambda: Receiver.fail == 1)  # one failed attempt so far; the server now stops
    deliveries = Notifications(site).feed("astro")[0].deliveries
    assert deliveries[0]["state"] == "pending" and deliveries[0]["attempts"] >= 1

    with running(create_app(site, notify_interval=0.2, webhook_backoff=0.3)) as base:  # a restart loses nothing
        got = _wait(lambda: Receiver.got)
        assert got[0]["dataset"] == ASKED and got[0]["versions"][0]["version"] == 2
        delivered = _wait(lambda: httpx.get(f"{base}/api/notifications", headers=auth).json()["notifications"][0]
                          ["deliveries"][0]["state"] == "delivered")
        assert delivered
    assert len(Receiver.got) == 1
