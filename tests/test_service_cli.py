"""owl token / program / audit, and owl serve as a process: serves, logs one line per request, stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.service.audit import AuditLog
from tests.service_kit import PRIVATE, fill, free_port


def _owl(*args: str):
    return CliRunner().invoke(main, list(args))


def test_token_program_and_audit_commands(site):
    made = _owl("token", "create", "--user", "ehubble", "--programs", "16001,11360", "--expires", "30d")
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[0]
    assert token.startswith("owl_")
    key = token.split("_")[1]
    listed = _owl("token", "list")
    assert key in listed.output and token not in listed.output and "valid" in listed.output
    assert "11360,16001" in listed.output
    assert _owl("token", "create", "--user", "x", "--expires", "soon").exit_code == 2
    assert _owl("token", "create", "--user", "../etc").exit_code == 2
    assert _owl("token", "revoke", key).exit_code == 0
    assert "revoked" in _owl("token", "list").output
    assert _owl("token", "revoke", "ffffffffffff").exit_code == 2

    set_ = _owl("program", "set", "16001", "--pi", "ehubble", "--exclusive-months", "12")
    assert set_.exit_code == 0 and "PI ehubble, exclusive 12 month(s)" in set_.output
    assert "released" in _owl("program", "set", "16001", "--release-now").output
    assert _owl("program", "set", "16001", "--release-now", "--exclusive-months", "3").exit_code == 2
    assert _owl("program", "set", "16001").exit_code == 2
    assert "16001" in _owl("program", "list").output

    AuditLog(site).record(client="127.0.0.1", user="ehubble", token=key, action="file", target="x v1 x_raw.fits",
                          status=403, detail="not designated")
    shown = _owl("audit", "--refused")
    assert "403" in shown.output and "ehubble" in shown.output and "not designated" in shown.output


def test_owl_serve_process_logs_and_stops_on_sigterm(site, tmp_path):
    fill(site, tmp_path / "src")
    port = free_port()
    env = {**os.environ, "OWL_SITE": str(site.root), "OWL_CONSOLE__PUBLIC_READ": "true"}
    owl = str(Path(sys.executable).parent / "owl")
    proc = subprocess.Popen([owl, "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/datasets/{PRIVATE}")
                break
            except httpx.ConnectError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
                time.sleep(0.05)
        assert r.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/api/datasets/{PRIVATE}/files/{PRIVATE}_raw.fits",
                         headers={"Authorization": "Bearer owl_0123456789ab_secret"}).status_code == 401
        events = httpx.stream("GET", f"http://127.0.0.1:{port}/console/grid.events", timeout=30)
        stream = events.__enter__()  # an open console grid: a stream that would last 15 s
        assert stream.headers["content-type"].startswith("text/event-stream")
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        _out, err = proc.communicate(timeout=20)
        assert time.monotonic() - t0 < 4.0  # the stream ended at once, not after uvicorn's 5 s grace
        events.__exit__(None, None, None)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    lines = [line for line in err.splitlines() if " GET /api" in line]
    assert len(lines) == 2 and f"/api/datasets/{PRIVATE} 200" in lines[0] and " 401 " in lines[1]
    assert "secret" not in err and "stopped" in err.splitlines()[-1]
