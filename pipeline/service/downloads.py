"""Streaming file and tar responses a mirror can trust.

Files stream from their read-only blobs in 1 MiB chunks (memory flat in the file size) with
``Content-Length``, ``ETag`` = the catalogued sha256 and single-range ``Range`` support. ``verify``
re-hashes the blob before the first byte goes out and refuses (500, clear message) a blob that no
longer matches the catalogue: a client never receives silently bad bytes. A whole version streams
as an uncompressed POSIX tar whose length is known in advance.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from pipeline.archive.store import ArchivedFile
from pipeline.core.fsutil import sha256_file
from pipeline.service.errors import ApiError
from pipeline.service.obscore import access_format

CHUNK = 1 << 20
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
_BLOCK = tarfile.BLOCKSIZE


def check_blob(f: ArchivedFile, verify: bool) -> None:
    """Refuse a missing blob or one of the wrong size; with ``verify``, also one whose hash differs."""
    try:
        size = f.path.stat().st_size
    except FileNotFoundError:
        raise ApiError(500, f"{f.name} (version {f.version}): stored blob is missing; the operators are told "
                            "by 'owl archive verify'") from None
    if size != f.size:
        raise ApiError(500, f"{f.name} (version {f.version}): stored blob has {size} bytes, catalogue says {f.size}; "
                            "not served")
    if verify:
        actual = sha256_file(f.path)
        if actual != f.sha256:
            raise ApiError(500, f"{f.name} (version {f.version}): stored blob hashes to {actual[:16]}..., the "
                                f"catalogue says {f.sha256[:16]}...; not served")


def _read(path, start: int, length: int) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        fh.seek(start)
        left = length
        while left > 0:
            chunk = fh.read(min(CHUNK, left))
            if not chunk:
                raise OSError(f"{path}: shorter than catalogued")
            left -= len(chunk)
            yield chunk


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single ``Range: bytes=`` request; None: whole file (absent or multi-range)."""
    if header is None or "," in header:
        return None
    m = _RANGE_RE.fullmatch(header.strip())
    if m is None or m.groups() == ("", ""):
        raise ApiError(416, f"Range {header[:60]!r} is not 'bytes=start-end'", {"Content-Range": f"bytes */{size}"})
    first, last = m.groups()
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(size - 1, int(last)) if last else size - 1
    if start >= size or start > end:
        raise ApiError(416, f"Range {header[:60]!r} is outside the file's {size} bytes",
                       {"Content-Range": f"bytes */{size}"})
    return start, end


def file_response(request: Request, f: ArchivedFile, extra_headers: dict[str, str]) -> Response:
    """The blob of ``f`` (or the requested byte range of it)."""
    etag = f'"{f.sha256}"'
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Content-Disposition": f'attachment; filename="{f.name}"',
               "X-Owl-Version": str(f.version), **extra_headers}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    wanted = _byte_range(request.headers.get("range"), f.size)
    if_range = request.headers.get("if-range")
    if wanted is not None and if_range is not None and if_range != etag:
        wanted = None  # the client's partial copy is of other content: send it all
    media = access_format(f.name)
    if wanted is None:
        headers["Content-Length"] = str(f.size)
        return StreamingResponse(_read(f.path, 0, f.size), media_type=media, headers=headers)
    start, end = wanted
    headers["Content-Length"] = str(end - start + 1)
    headers["Content-Range"] = f"bytes {start}-{end}/{f.size}"
    return StreamingResponse(_read(f.path, start, end - start + 1), status_code=206, media_type=media, headers=headers)


def _tar_header(name: str, size: int, mtime: float) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(mtime), 0o444
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def tar_length(files: list[tuple[str, ArchivedFile]]) -> int:
    body = sum(len(_tar_header(n, f.size, f.ingested)) + f.size + (-f.size % _BLOCK) for n, f in files)
    return body + 2 * _BLOCK


def _tar_stream(files: list[tuple[str, ArchivedFile]]) -> Iterator[bytes]:
    for name, f in files:
        yield _tar_header(name, f.size, f.ingested)
        yield from _read(f.path, 0, f.size)
        if f.size % _BLOCK:
            yield b"\0" * (-f.size % _BLOCK)
    yield b"\0" * (2 * _BLOCK)


def tar_response(stem: str, files: list[ArchivedFile], extra_headers: dict[str, str]) -> Response:
    """Every file of a version as ``<stem>/<name>`` in one tar stream with a known length."""
    members = [(f"{stem}/{f.name}", f) for f in files]
    headers = {"Content-Length": str(tar_length(members)), "Content-Disposition": f'attachment; filename="{stem}.tar"',
               **extra_headers}
    return StreamingResponse(_tar_stream(members), media_type="application/x-tar", headers=headers)
