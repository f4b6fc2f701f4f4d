"""The service's own client: ``owl archive get DATASET --server URL`` (stdlib HTTP, no extra dependency).

Files are chosen as ``owl archive get`` chooses them locally (the newest file of each kind, or one
version, or one kind), streamed to a temporary name, checked against the record's sha256 (and the
ETag), and only then renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from pipeline.core.errors import OwlError
from pipeline.core.exitcodes import ExitCode
from pipeline.core.fsutil import _CHUNK, atomic_write


class ServiceError(OwlError):
    code = ExitCode.USAGE


def _open(url: str, token: str | None, timeout: float):
    headers = {"User-Agent": "owlpipe-client"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read().decode()).get("error", "")
        except (ValueError, UnicodeDecodeError, AttributeError):
            message = exc.reason
        code = ExitCode.TRANSIENT_IO if exc.code >= 500 else ExitCode.USAGE
        raise ServiceError(f"{url}: HTTP {exc.code}: {message}", code=code) from None
    except (urllib.error.URLError, OSError) as exc:
        raise ServiceError(f"{url}: {getattr(exc, 'reason', exc)}", code=ExitCode.TRANSIENT_IO) from None


def choose(record: dict[str, Any], kind: str | None, version: int | None) -> list[dict[str, Any]]:
    """The files of ``version``, else the newest file(s) of each kind; only ``kind`` when given."""
    newest: dict[str, tuple[int, list[dict]]] = {}
    chosen: list[dict] = []
    for v in record["versions"]:
        for f in v["files"]:
            if kind is not None and f["kind"] != kind:
                continue
            if version is not None:
                if v["version"] == version:
                    chosen.append(f)
            elif f["kind"] not in newest or newest[f["kind"]][0] < v["version"]:
                newest[f["kind"]] = (v["version"], [f])
            elif newest[f["kind"]][0] == v["version"]:
                newest[f["kind"]][1].append(f)
    if version is None:
        chosen = [f for _v, files in newest.values() for f in files]
    return sorted(chosen, key=lambda f: (f["kind"], f["name"]))


def fetch(server: str, dataset: str, *, kind: str | None = None, version: int | None = None,
          dest: Path | str = ".", token: str | None = None, timeout: float = 60.0) -> list[tuple[Path, dict]]:
    """Download a dataset's files from an archive service into ``dest``; return (path, file record) pairs."""
    base = server.rstrip("/")
    name = urllib.parse.quote(dataset.strip().lower(), safe="")
    with _open(f"{base}/api/datasets/{name}", None, timeout) as resp:
        record = json.load(resp)
    files = choose(record, kind, version)
    if not files:
        what = " ".join(filter(None, [f"kind {kind}" if kind else "", f"version {version}" if version else ""]))
        raise ServiceError(f"{record['dataset']}: no archived files{' of ' + what if what else ''} on {base}")
    out_dir = Path(dest)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for f in files:
        url = f"{base}/api/datasets/{name}/files/{urllib.parse.quote(f['name'])}?version={f['version']}"
        target = out_dir / Path(f["name"]).name
        h = hashlib.sha256()
        with _open(url, token, timeout) as resp, atomic_write(target) as out:
            etag = (resp.headers.get("ETag") or "").strip('"')
            while chunk := resp.read(_CHUNK):
                h.update(chunk)
                out.write(chunk)
            if h.hexdigest() != f["sha256"] or (etag and etag != f["sha256"]):
                raise ServiceError(f"{f['name']}: downloaded bytes hash to {h.hexdigest()[:16]}..., the archive "
                                   f"says {f['sha256'][:16]}...; nothing written", code=ExitCode.TRANSIENT_IO)
        written.append((target, f))
    return written
