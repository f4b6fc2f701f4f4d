"""JSON API, downloads and exclusive access over the real server, with httpx and the owl client."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tarfile
import time

import httpx
import pytest
from click.testing import CliRunner

from pipeline.archive.store import Archive
from pipeline.service.access import ProgramStore
from pipeline.service.audit import AuditLog
from pipeline.service.tokens import TokenStore
from tests.service_kit import DATASETS, PRIVATE, fill, running

PUBLIC = "ib4606c5q"


@pytest.fixture
def served(site, tmp_path, caplog):
    from pipeline.service.app import create_app

    caplog.set_level(logging.INFO, logger="owl.service")
    sources = fill(site, tmp_path / "src")
    with running(create_app(site)) as base:
        yield site, base, sources


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_dataset_record_and_search(served):
    _site, base, sources = served
    rec = httpx.get(f"{base}/api/datasets/{PUBLIC}").json()
    assert rec["dataset"] == PUBLIC and rec["current_version"] == 1 and rec["program"] == "11360"
    assert rec["pi"] == "Edwin Hubble" and rec["release_date"] == "2010-08-11" and rec["data_rights"] == "public"
    assert rec["reprocessing"] is None
    v1 = rec["versions"][0]
    assert v1["crds_context"] == "hst_0300.pmap" and v1["software"] == {"CAL_VER": "3.7.1"}
    files = {f["kind"]: f for f in v1["files"]}
    assert files["flt"]["sha256"] == _sha(sources[PUBLIC]["flt"])
    assert files["flt"]["size"] == sources[PUBLIC]["flt"].stat().st_size
    private = httpx.get(f"{base}/api/datasets/{PRIVATE}").json()  # metadata are public, as at MAST
    assert private["data_rights"] == "proprietary"

    found = httpx.get(f"{base}/api/datasets", params={"instrument": "wfc3", "calib": 2}).json()
    assert sorted(p["obs_id"] for p in found["products"]) == sorted(d for d in DATASETS if d[0] == "i")
    cone = httpx.get(f"{base}/api/datasets", params={"ra": 204.25, "dec": -29.86, "radius": 0.01}).json()
    assert {p["obs_id"] for p in cone["products"]} == {"ic1h01a1q"}
    assert httpx.get(f"{base}/api/datasets/ib4606zzq").status_code == 404


def test_public_download_range_tar_and_verify(served):
    site, base, sources = served
    flt = sources[PUBLIC]["flt"]
    url = f"{base}/api/datasets/{PUBLIC}/files/{PUBLIC}_flt.fits"
    r = httpx.get(url)
    assert r.status_code == 200 and r.content == flt.read_bytes()
    assert r.headers["etag"] == f'"{_sha(flt)}"' and int(r.headers["content-length"]) == flt.stat().st_size
    part = httpx.get(url, headers={"Range": "bytes=1000-2999"})
    assert part.status_code == 206 and part.content == flt.read_bytes()[1000:3000]
    assert part.headers["content-range"] == f"bytes 1000-2999/{flt.stat().st_size}"
    tail = httpx.get(url, headers={"Range": "bytes=-100"})
    assert tail.content == flt.read_bytes()[-100:]
    assert httpx.get(url, headers={"Range": "bytes=99999999-"}).status_code == 416
    assert httpx.get(url, headers={"If-None-Match": r.headers["etag"]}).status_code == 304

    tar = httpx.get(f"{base}/api/datasets/{PUBLIC}/tar")
    assert tar.status_code == 200 and int(tar.headers["content-length"]) == len(tar.content)
    with tarfile.open(fileobj=io.BytesIO(tar.content)) as tf:
        assert sorted(tf.getnames()) == [f"{PUBLIC}/{PUBLIC}_flt.fits", f"{PUBLIC}/{PUBLIC}_raw.fits"]
        assert tf.extractfile(f"{PUBLIC}/{PUBLIC}_flt.fits").read() == flt.read_bytes()

    assert httpx.get(url, params={"verify": 1}).status_code == 200
    blob = Archive(site).files(PUBLIC, kind="flt")[0].path
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[5000] ^= 0xFF  # same size, other bytes: only a re-hash sees it
    blob.write_bytes(bytes(data))
    bad = httpx.get(url, params={"verify": 1})
    assert bad.status_code == 500 and "hashes to" in bad.json()["error"] and "not served" in bad.json()["error"]


def test_exclusive_access_with_tokens(served, caplog):
    site, base, sources = served
    url = f"{base}/api/datasets/{PRIVATE}/files/{PRIVATE}_raw.fits"
    tokens = TokenStore(site)
    ProgramStore(site).set("16001", pi="ehubble")
    pi_token, _ = tokens.create("ehubble")
    other, _ = tokens.create("someone", programs=["11360"])
    designated, _ = tokens.create("coi", programs=["16001"])
    operator, _ = tokens.create("op", role="operator")

    none = httpx.get(url)
    assert none.status_code == 401 and "exclusive to program 16001" in none.json()["error"]
    assert none.text.count("\n") == 0
    assert httpx.get(url, headers={"Authorization": f"Bearer {other}"}).status_code == 403
    for good in (pi_token, designated, operator):
        r = httpx.get(url, headers={"Authorization": f"Bearer {good}"})
        assert r.status_code == 200 and r.content == sources[PRIVATE]["raw"].read_bytes()
    assert httpx.get(f"{base}/api/datasets/{PRIVATE}/tar").status_code == 401

    tokens.revoke(designated.split("_")[1])
    revoked = httpx.get(url, headers={"Authorization": f"Bearer {designated}"})
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]
    short, _ = tokens.create("coi", programs=["16001"], expires_in=0.5)
    time.sleep(0.6)
    expired = httpx.get(url, headers={"Authorization": f"Bearer {short}"})
    assert expired.status_code == 401 and "expired" in expired.json()["error"]

    ProgramStore(site).set("16001", release_now=True)
    assert httpx.get(url).status_code == 200

    audit = AuditLog(site).recent(100)
    assert {e.status for e in audit} >= {200, 401, 403}
    assert any(e.user == "ehubble" and e.status == 200 for e in audit)
    everything = caplog.text + repr([e.as_dict() for e in audit])
    for secret in (pi_token, other, designated, operator, short):
        assert secret not in everything and secret.split("_", 2)[2] not in everything  # the secret may hold "_"
    assert f"/api/datasets/{PRIVATE}/files/{PRIVATE}_raw.fits 401" in caplog.text  # one line per request


def test_bad_tokens_are_slowed(served):
    _site, base, _ = served
    url = f"{base}/api/datasets/{PRIVATE}/files/{PRIVATE}_raw.fits"
    times = []
    for i in range(5):
        t0 = time.perf_counter()
        r = httpx.get(url, headers={"Authorization": f"Bearer owl_0123456789ab_{'x' * 42}{i}"})
        times.append(time.perf_counter() - t0)
        assert r.status_code == 401
    assert times[3] >= 0.25 and times[4] >= 0.5, times  # held 0.25 s, then 0.5 s, after three free failures


@pytest.mark.parametrize("path", [
    "/api/datasets/..%2F..%2Fowl.db",
    "/api/datasets/ib4606c5q/files/..%2F..%2F..%2Fowl.db",
    "/api/datasets/ib4606c5q/files/%2E%2E",
    "/api/datasets/ib4606c5q/files/%2Fetc%2Fpasswd",
    "/api/datasets/ib4606c5q'%20OR%20'1'='1",
    "/api/datasets/ib4606c5q/files/ib4606c5q_flt.fits?version=1%20OR%201=1",
    "/api/datasets/ib4606c5q/files/ib4606c5q_flt.fits?verify=maybe",
    "/api/datasets/ib4606c5q/files/ib4606c5q_flt.fits?path=/etc/passwd",
    "/api/datasets?instrument=%FF",
    "/api/datasets?limit=100000",
    "/api/datasets?ra=10&dec=95&radius=1",
    "/api/datasets?date_from=2010';DROP",
    "/api/datasets?target=M83'%20OR%201=1--",
    "/api/datasets/%FF%FEabc",
    "/api/datasets/ib4606c5q/tar?version=99",
])
def test_attacks_get_4xx(served, path):
    _site, base, _ = served
    r = httpx.get(base + path)
    assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
    assert "error" in r.json() and "\n" not in r.text
    assert b"SQLite format" not in r.content and b"root:" not in r.content


def test_owl_archive_get_from_server(served, tmp_path, monkeypatch):
    from pipeline.cli import main

    site, base, sources = served
    out = tmp_path / "got"
    result = CliRunner().invoke(main, ["archive", "get", PUBLIC, "--server", base, "--dest", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / f"{PUBLIC}_flt.fits").read_bytes() == sources[PUBLIC]["flt"].read_bytes()
    refused = CliRunner().invoke(main, ["archive", "get", PRIVATE, "--server", base, "--dest", str(out)])
    assert refused.exit_code == 2 and "HTTP 401" in refused.output and not (out / f"{PRIVATE}_raw.fits").exists()
    token, _ = TokenStore(site).create("op", role="operator")
    (tmp_path / "token").write_text(token + "\n")
    ok = CliRunner().invoke(main, ["archive", "get", PRIVATE, "--server", base, "--dest", str(out), "--kind", "raw",
                                   "--token-file", str(tmp_path / "token")])
    assert ok.exit_code == 0, ok.output
    assert (out / f"{PRIVATE}_raw.fits").read_bytes() == sources[PRIVATE]["raw"].read_bytes()
    monkeypatch.setenv("OWL_TOKEN", token)
    env = CliRunner().invoke(main, ["archive", "get", PRIVATE, "--server", base, "--dest", str(tmp_path / "e")])
    assert env.exit_code == 0 and token not in env.output
