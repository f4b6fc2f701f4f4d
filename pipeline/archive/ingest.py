"""The archive as the pipeline's nodes use it: files in (content-addressed blobs, a new catalogue
version per call) and the newest files of a dataset out, on the plain DB-API layer
(:mod:`pipeline.core.dbapi`) the OSF uses, without SQLAlchemy (whose import costs each archiving node
~0.13 s). :class:`pipeline.archive.store.Archive` adds the catalogue's queries on top; both work on
the same tables, which :mod:`pipeline.archive.tables` defines (and creates, the first time).

Files live under ``site.areas.archive/blobs/ab/<sha256>``, named by their content, written once
(temporary file, fsync, hard link into place: an existing blob is never overwritten) and made
read-only. Each file's bytes are read once: a source in the site's work or receipt area (which the
pipeline writes only by atomic rename, never in place) on the archive's file system is hard-linked
into the temporary area (no copy; the shared inode becomes read-only) and hashed by that one read;
any other source (a user's file that may later be edited in place, another file system) is hashed
while it is copied (see :meth:`ArchiveIngest._stage_file`).

Every :meth:`ArchiveIngest.ingest` call creates one new version of its dataset holding all the files
of that call; older versions are kept, and the newest file of each kind is what is served. Repeating
an ingest whose files are exactly what is already served returns that version instead (a rerun
converges). The checksum is computed while staging; immediately before the catalogue commits each
source's identity, size and modification time are compared with those it had when it was hashed (a
``stat``, not a re-read), so a file that changed in between is refused with nothing catalogued and no
new blob left behind.

Each version also carries the catalogue fields (instrument, detector, target, filters, ...) and the
primary header keywords of its raw file (else its first FITS file), plus those only its first
extension holds, as JSON, so reprocessing can select among many datasets by CRDS parameters
without reopening FITS files. Fields a call cannot supply (pods before 2FITS, previews) are carried
forward from the dataset's previous version.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import math
import os
import re
import secrets
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core import hostenv
from pipeline.core.config import Site
from pipeline.core.dbapi import Database, is_lock_error, lock_timeout
from pipeline.core.errors import BadInput, OwlError
from pipeline.core.exitcodes import ExitCode
from pipeline.core.fitscards import astropy_cards, header_values, values
from pipeline.core.fsutil import _CHUNK, file_lock, fsync_dir, sha256_file
from pipeline.core.names import DatasetName, parse_dataset

#: Files staged (linked and hashed, or copied and hashed) at once by one ingest.
STAGING_THREADS = 4
_KIND_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,254}$")

#: Catalogue fields of a version; callers may set any of them through ``metadata``.
FIELDS = ("association", "instrument", "detector", "target", "ra", "dec", "filters", "exptime",
          "date_obs", "expstart", "program", "crds_context", "software")
#: Software-version keywords worth recording (the record of processing).
SOFTWARE_KEYWORDS = ("OPUS_VER", "CAL_VER", "CSYS_VER", "CALWF3_V", "CALACS_V", "CALCOS_V", "DRIZ_VER",
                     "PYDRIZ_V", "UPWCSVER", "PYWCSVER", "OWL_VER", "CTE_VER")  # CTE_VER: the _flc's CTE model


class ArchiveError(OwlError):
    """The store itself is damaged (a blob does not hash to its name)."""

    code = ExitCode.INTERNAL


class NotArchived(OwlError):
    """A lookup named a dataset, version or kind the catalogue does not hold."""

    code = ExitCode.USAGE


# -- what callers get back -----------------------------------------------------------------------
@dataclass(frozen=True)
class ArchivedFile:
    dataset: str
    version: int
    kind: str
    name: str
    sha256: str
    size: int
    ingested: float
    #: The stored blob (read-only; read it in place or copy it with :meth:`Archive.get`).
    path: Path

    def as_dict(self) -> dict:
        return {**asdict(self), "path": str(self.path)}



@dataclass(frozen=True)
class ReadOnce:
    """A file's bytes as one read gave them, hashed from that same buffer, with the file's
    :func:`_fingerprint` at that read. A caller that must parse a file before archiving it (INGEST
    decodes each pod) reads it with :func:`read_once` and hands this to :meth:`Archive.ingest` in
    place of the path: the file is then not read a second time."""

    path: Path
    data: bytes
    sha256: str
    fingerprint: tuple[int, int, int, int]


def read_once(path: Path | str) -> ReadOnce:
    """Read ``path`` whole and hash the buffer; refuse a file that changed during the read."""
    path = Path(path)
    before = _fingerprint(path)
    with open(path, "rb") as fh:
        data = fh.read()
    if _fingerprint(path) != before or len(data) != before[2]:
        raise BadInput(f"{path.name} changed while it was read; nothing archived", path=path)
    return ReadOnce(path, data, hashlib.sha256(data).hexdigest(), before)


@dataclass
class _Batch:
    """One dataset's share of an ingest: its files, what their headers say, and their staged copies."""

    dataset: DatasetName
    entries: list[tuple[Path, str]]
    header: dict | None
    fields: dict[str, Any]
    extra: dict[str, Any]
    #: Entries the caller has already read and hashed (:func:`read_once`), by path.
    reads: dict[Path, ReadOnce] = field(default_factory=dict)
    staged: list[_Staged] = field(default_factory=list)


@dataclass
class _Staged:
    """A source file copied into the archive's temporary area, with the hash taken while copying."""

    source: Path
    kind: str
    name: str
    tmp: Path
    sha256: str
    size: int
    #: The source's :func:`_fingerprint` when it was hashed.
    fingerprint: tuple[int, int, int, int]


def _fingerprint(path: Path) -> tuple[int, int, int, int]:
    """(device, inode, size, mtime in ns): what changes when a file is replaced, extended or edited in place."""
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


#: errno values of a hard link the kernel refuses (other file system, protected_hardlinks, no support):
#: the source is copied instead.
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EACCES, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}


# -- header extraction -----------------------------------------------------------------------------
def _json_value(value: Any) -> Any:
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)


def header_dict(header: Any) -> dict[str, Any]:
    """A FITS header's keywords as a JSON-safe dict (no COMMENT/HISTORY; first value of a repeat wins).
    ``header``: an astropy ``Header`` or (keyword, value) pairs (:mod:`pipeline.core.fitscards`)."""
    cards = astropy_cards(header) if hasattr(header, "cards") else header
    return {key: _json_value(value) for key, value in values(cards).items()}


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return None if value.upper() in {"", "NONE", "N/A"} else value
    return value


def _filters(h: dict[str, Any]) -> str | None:
    names = [str(h[k]).strip() for k in ("FILTER", "FILTER1", "FILTER2", "OPT_ELEM") if h.get(k)]
    useful = [n for n in names if n and not n.upper().startswith(("CLEAR", "N/A"))]
    if h.get("CENWAVE") and h.get("OPT_ELEM"):
        useful = [f"{n}/{h['CENWAVE']}" if n == str(h["OPT_ELEM"]).strip() else n for n in useful]
    return ";".join(useful) or None


def catalogue_fields(primary: dict[str, Any], science: dict[str, Any] | None = None) -> dict[str, Any]:
    """Catalogue fields from a primary header, falling back to the first extension (COS keeps
    ``EXPTIME``/``DATE-OBS`` there)."""
    h = {**(science or {}), **primary}

    def get(*keys: str) -> Any:
        for k in keys:
            v = _clean(h.get(k))
            if v is not None:
                return v
        return None

    date, tm = get("DATE-OBS"), get("TIME-OBS")
    software = {k: str(h[k]).strip() for k in SOFTWARE_KEYWORDS if _clean(h.get(k)) is not None}
    asn = get("ASN_ID")
    fields = {
        "association": str(asn).lower() if asn else None,
        "instrument": get("INSTRUME"),
        "detector": get("DETECTOR"),
        "target": get("TARGNAME"),
        "ra": _float(get("RA_TARG")),
        "dec": _float(get("DEC_TARG")),
        "filters": _filters(h),
        "exptime": _float(get("EXPTIME", "TEXPTIME")),
        "date_obs": f"{date}T{tm}" if date and tm else date,
        "expstart": _float(get("EXPSTART")),
        "program": str(get("PROPOSID")) if get("PROPOSID") is not None else None,
        "crds_context": get("CRDS_CTX"),
        "software": software or None,
    }
    return {k: v for k, v in fields.items() if v is not None}


def _float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def read_fits_headers(path: Path) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """(primary, first extension) headers of a FITS file as dicts; None if it is not FITS.

    Read in plain Python (:func:`~pipeline.core.fitscards.header_values`: an archiving node needs no
    numpy or astropy); a file with cards that module leaves alone is read by astropy, as it always was."""
    try:
        primary, *rest = (header_dict(h.items()) for h in header_values(path, 2))
    except (OSError, ValueError):
        return None
    return primary, (rest[0] if rest else None)


def _is_fits(path: Path) -> bool:
    return any(path.name.lower().endswith(ext) for ext in (".fits", ".fits.gz", ".fit"))


# -- the archive's write path and file lookups -------------------------------------------------------
#: The catalogue's tables (their definitions: :mod:`pipeline.archive.tables`).
TABLES = ("archive_version", "archive_file")
#: The JSON columns of ``archive_version``: stored as JSON text, ``null`` for None, as SQLAlchemy does.
_JSON = ("software", "header", "extra")
_FILE_COLUMNS = ("dataset", "version", "kind", "name", "sha256", "size", "ingested")   # ArchivedFile's order


class ArchiveIngest:
    """Content-addressed store + catalogue of one site: ingest, and the newest files of a dataset."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.root = site.areas.archive
        self.blobs = self.root / "blobs"
        self.tmp = self.blobs / "tmp"
        #: Areas whose files may share an inode with a blob: the pipeline never edits them in place.
        self.linkable = (site.areas.work.resolve(), site.areas.receipt.resolve())
        self.db = Database(site.database_url, site.database.busy_timeout)
        self.lock_timeout = site.database.busy_timeout
        if set(TABLES) - self.db.tables():   # a fresh site: the definitions create them (SQLAlchemy, once)
            from pipeline.archive.tables import create_catalogue

            create_catalogue(site)
        self.tmp.mkdir(parents=True, exist_ok=True)

    # -- paths and locking -------------------------------------------------------------------
    def blob_path(self, sha256: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ArchiveError(f"invalid sha256 {sha256!r} in the catalogue")
        return self.blobs / sha256[:2] / sha256

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        """Serialise blob placement + catalogue commit across processes (short: no copying inside)."""
        return file_lock(self.root / ".lock", self.lock_timeout, "archive")

    # -- ingest ----------------------------------------------------------------------------------
    def ingest(
        self,
        dataset: DatasetName | str,
        files: Sequence[tuple[Path | str | ReadOnce, str]],
        metadata: dict[str, Any] | None = None,
    ) -> int:
        """Archive ``files`` (path, kind) as one new version of ``dataset`` and return its number.

        A file given as a :class:`ReadOnce` is archived from that read: linked or written from its
        buffer, never read again.

        Catalogue fields come from the files' FITS headers; ``metadata`` overrides known fields
        (see :data:`FIELDS`) and is kept as ``extra`` otherwise. All or nothing: any failure leaves
        neither a catalogue row nor a new blob.
        """
        return self.ingest_many([(dataset, files, metadata)])[0]

    def ingest_many(
        self,
        batches: Sequence[tuple[DatasetName | str, Sequence[tuple[Path | str | ReadOnce, str]],
                                dict[str, Any] | None]],
    ) -> list[int]:
        """Several :meth:`ingest` calls (one per dataset) committed together: all versions or none."""
        prepared = []
        for dataset, files, metadata in batches:
            ds = _name(dataset)
            if not files:
                raise BadInput(f"{ds}: nothing to ingest (no files given)")
            reads = {p.path: p for p, _kind in files if isinstance(p, ReadOnce)}
            entries = [(p.path if isinstance(p, ReadOnce) else Path(p), kind) for p, kind in files]
            self._check_inputs(ds, entries)
            prepared.append(_Batch(ds, entries, None, {}, dict(metadata or {}), reads))
        if len({b.dataset for b in prepared}) != len(prepared):
            raise BadInput("one dataset given twice in a single ingest; merge its files into one version")
        try:
            with self._staging(prepared):  # the files hash while their headers are read
                for batch in prepared:
                    batch.header, batch.fields = self._describe(batch.entries)
                    for key in FIELDS:
                        if key in batch.extra:
                            batch.fields[key] = batch.extra.pop(key)
            with self._locked():
                everything = [s for b in prepared for s in b.staged]
                self._recheck(everything)
                served = {b.dataset: self._served_version(b.dataset, b.staged) for b in prepared}
                todo = [b for b in prepared if served[b.dataset] is None]
                placed = self._place([s for b in todo for s in b.staged])
                try:
                    numbers = self._commit(todo)
                except BaseException:
                    for blob in placed:
                        with contextlib.suppress(FileNotFoundError):
                            blob.unlink()
                    raise
                return [served[b.dataset] or numbers[b.dataset] for b in prepared]
        finally:
            for batch in prepared:
                for s in batch.staged:
                    with contextlib.suppress(FileNotFoundError):
                        s.tmp.unlink()

    @contextlib.contextmanager
    def _staging(self, prepared: list[_Batch]) -> Iterator[None]:
        """Stage every batch's files in up to :data:`STAGING_THREADS` threads while the block runs
        (hashing and copying release the GIL: an association's calibrated and drizzled files, ~0.1 s
        each to hash, are staged side by side and beside the headers' reading); on one CPU, one after
        another once the block is done. When the block ends, every file has been staged or has failed:
        each batch's ``staged`` holds its successes in its entries' order (for clean-up), and the
        block's own error, else the first file's failure, is raised."""
        jobs = [(batch, path, kind) for batch in prepared for path, kind in batch.entries]

        def stage(job: tuple[_Batch, Path, str]) -> _Staged:
            batch, path, kind = job
            read = batch.reads.get(path)
            return self._stage_file(path, kind) if read is None else self._stage_read(read, kind)

        threads = min(STAGING_THREADS, hostenv.cpus(), len(jobs))
        if threads < 2:
            yield
            for job in jobs:
                job[0].staged.append(stage(job))
            return
        with ThreadPoolExecutor(threads, thread_name_prefix="owl-stage") as pool:
            futures = [pool.submit(stage, job) for job in jobs]
            try:
                yield
            finally:
                failed = None
                for (batch, _path, _kind), future in zip(jobs, futures, strict=True):
                    if future.exception() is None:  # waits for it
                        batch.staged.append(future.result())
                    elif failed is None:
                        failed = future.exception()
        if failed is not None:
            raise failed

    def _check_inputs(self, ds: DatasetName, entries: list[tuple[Path, str]]) -> None:
        names = set()
        for path, kind in entries:
            if not _KIND_RE.fullmatch(kind):
                raise BadInput(f"{ds}: invalid file kind {kind!r} for {path.name} "
                               "(lower-case letters, digits, '_', at most 32)")
            if not _FILE_NAME_RE.fullmatch(path.name):
                raise BadInput(f"{ds}: file name {path.name!r} not archivable", path=path)
            if not path.is_file():
                raise BadInput(f"{ds}: {path} does not exist or is not a file", path=None)
            if path.name in names:
                raise BadInput(f"{ds}: {path.name} given twice in one ingest")
            names.add(path.name)

    def _describe(self, entries: list[tuple[Path, str]]) -> tuple[dict | None, dict[str, Any]]:
        """(header JSON for the version, catalogue fields): raw file first, then the others in order."""
        ordered = sorted(entries, key=lambda e: e[1] != "raw")
        header: dict | None = None
        fields: dict[str, Any] = {}
        for path, _kind in ordered:
            if not _is_fits(path):
                continue
            headers = read_fits_headers(path)
            if headers is None:
                raise BadInput(f"{path.name}: not a readable FITS file", path=path)
            primary, science = headers
            if header is None:  # primary wins; the first extension adds what crds matches there (NAXIS1, LTV1, CCDCHIP)
                header = {**(science or {}), **primary}
            for key, value in catalogue_fields(primary, science).items():
                if key == "software":
                    fields["software"] = {**value, **fields.get("software", {})}
                else:
                    fields.setdefault(key, value)
        return header, fields

    def _stage_file(self, path: Path, kind: str) -> _Staged:
        """Stage ``path`` in the temporary area and hash it, reading its bytes exactly once.

        A source in :attr:`linkable` areas on the archive's file system is staged as a hard link,
        made read-only (the blob will share that inode, so in-place writers must be kept off it), and
        the one read is the hash; any other is copied, hashed chunk by chunk as it is written, fsynced.
        A source that changes while it is read is refused.
        """
        before = _fingerprint(path)
        tmp = self._tmp_name()
        try:
            if self._may_link(path) and self._link(path, tmp):
                os.chmod(tmp, 0o444)
                sha, size = sha256_file(tmp), before[2]
            else:
                sha, size = self._copy_hashing(path, tmp)
            fingerprint = _fingerprint(path)
            if fingerprint != before:
                raise BadInput(f"{path.name} changed while it was archived; nothing archived", path=path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        return _Staged(path, kind, path.name, tmp, sha, size, fingerprint)

    def _stage_read(self, read: ReadOnce, kind: str) -> _Staged:
        """Stage a file the caller has read and hashed without reading it again: a hard link when
        :meth:`_stage_file` would link it (the linked inode must still be the one that was read),
        else its buffer written out (fsynced)."""
        path, tmp = read.path, self._tmp_name()
        try:
            if self._may_link(path) and self._link(path, tmp):
                os.chmod(tmp, 0o444)
                unchanged = _fingerprint(tmp) == read.fingerprint
            else:
                with self._new_file(tmp) as out:
                    out.write(read.data)
                unchanged = _fingerprint(path) == read.fingerprint
            if not unchanged:
                raise BadInput(f"{path.name} changed after it was read; nothing archived", path=path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        return _Staged(path, kind, path.name, tmp, read.sha256, len(read.data), read.fingerprint)

    def _tmp_name(self) -> Path:
        return self.tmp / f".ingest.{os.getpid()}.{secrets.token_hex(8)}.tmp"

    @staticmethod
    @contextlib.contextmanager
    def _new_file(tmp: Path) -> Iterator[io.BufferedWriter]:
        """``tmp`` created exclusively for writing, flushed and fsynced when the block ends."""
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())

    def _may_link(self, path: Path) -> bool:
        resolved = path.resolve()
        return any(resolved.is_relative_to(area) for area in self.linkable)

    @staticmethod
    def _link(path: Path, tmp: Path) -> bool:
        """Hard-link ``path`` as ``tmp``; False when the kernel refuses (see :data:`_NO_LINK`)."""
        try:
            os.link(path, tmp)
        except OSError as exc:
            if exc.errno in _NO_LINK:
                return False
            raise
        return True

    @staticmethod
    def _copy_hashing(path: Path, tmp: Path) -> tuple[str, int]:
        """Copy ``path`` to ``tmp`` (fsynced), hashing each chunk as it passes: (sha256, size)."""
        h = hashlib.sha256()
        size = 0
        with ArchiveIngest._new_file(tmp) as out, open(path, "rb") as inp:
            while chunk := inp.read(_CHUNK):
                h.update(chunk)
                out.write(chunk)
                size += len(chunk)
        return h.hexdigest(), size

    def _recheck(self, staged: list[_Staged]) -> None:
        """Refuse if a source was replaced or modified since it was hashed (a stat each, no re-read)."""
        for s in staged:
            try:
                now = _fingerprint(s.source)
            except FileNotFoundError:
                raise BadInput(f"{s.source} disappeared between copy and catalogue; nothing archived") from None
            if now != s.fingerprint:
                raise BadInput(f"{s.source.name} changed between copy and catalogue (size/modification time "
                               f"{s.fingerprint[2]}/{s.fingerprint[3]} when hashed, {now[2]}/{now[3]} now); "
                               "nothing archived", path=s.source)

    def _served_version(self, ds: DatasetName, staged: list[_Staged]) -> int | None:
        """The version already holding exactly these files, if it is what is served for their kinds."""
        wanted = {(s.kind, s.name, s.sha256) for s in staged}
        served = [f for f in self.files(ds) if f.kind in {s.kind for s in staged}]
        versions = {f.version for f in served}
        if len(versions) != 1 or {(f.kind, f.name, f.sha256) for f in served} != wanted:
            return None
        (number,) = versions
        whole = {(f.kind, f.name, f.sha256) for f in self.files(ds, number)}
        return number if whole == wanted else None

    def _place(self, staged: list[_Staged]) -> list[Path]:
        """Link staged copies to their content address; return the blobs this call created."""
        created: list[Path] = []
        try:
            for s in staged:
                blob = self.blob_path(s.sha256)
                blob.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(s.tmp, 0o444)
                try:
                    os.link(s.tmp, blob)  # fails rather than overwrite an existing blob
                except FileExistsError:
                    if sha256_file(blob) != s.sha256:
                        raise ArchiveError(f"stored blob {blob} does not match its name: the archive is "
                                           "damaged; run 'owl archive verify'") from None
                    continue
                created.append(blob)
                fsync_dir(blob.parent)
        except BaseException:
            for blob in created:
                with contextlib.suppress(FileNotFoundError):
                    blob.unlink()
            raise
        return created

    def _json_param(self) -> str:
        """The placeholder of a JSON value: PostgreSQL takes its text cast; SQLite stores the text."""
        return "?" if self.db.dialect == "sqlite" else "CAST(? AS JSON)"

    @staticmethod
    def _from_json(value: Any) -> Any:
        """A JSON column's value as read: SQLite gives its text, psycopg the decoded value."""
        return json.loads(value) if isinstance(value, str) else value

    def _commit(self, batches: list[_Batch]) -> dict[DatasetName, int]:
        """Catalogue every batch as its dataset's next version in one transaction."""
        now = time.time()
        numbers: dict[DatasetName, int] = {}
        plain = ("dataset", "version", "ingested", *(k for k in FIELDS if k not in _JSON))
        columns = (*plain, *_JSON)
        values = ", ".join(["?"] * len(plain) + [self._json_param()] * len(_JSON))
        insert = f"INSERT INTO archive_version ({', '.join(columns)}) VALUES ({values})"
        newest = (f"SELECT version, {', '.join(FIELDS)}, header FROM archive_version WHERE dataset = ? "
                  "ORDER BY version DESC LIMIT 1")
        try:
            with self.db.write() as cur:
                for b in batches:
                    previous = cur.fetchall(newest, (b.dataset.name,))
                    number = 1 if not previous else previous[0][0] + 1
                    fields, header = dict(b.fields), b.header
                    if previous:  # a call without headers (pods, previews) keeps what is known
                        known = dict(zip(FIELDS, previous[0][1:-1], strict=True))
                        known["software"] = self._from_json(known["software"])
                        for key in FIELDS:
                            if fields.get(key) is None and known[key] is not None:
                                fields[key] = known[key]
                        if header is None:
                            header = self._from_json(previous[0][-1])
                    row = {"dataset": b.dataset.name, "version": number, "ingested": now, **fields,
                           "header": header, "extra": b.extra or None}
                    params = [row.get(k) for k in plain] + [json.dumps(row.get(k)) for k in _JSON]
                    version_id = cur.insert(insert, params)
                    cur.executemany("INSERT INTO archive_file (version_id, dataset, version, kind, name, sha256, "
                                    "size, ingested) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                    [(version_id, b.dataset.name, number, s.kind, s.name, s.sha256, s.size, now)
                                     for s in b.staged])
                    numbers[b.dataset] = number
            return numbers
        except self.db.IntegrityError as exc:
            raise OwlError(f"another process catalogued a version at the same time ({exc}); retry",
                           code=ExitCode.LOCK_TIMEOUT) from exc
        except Exception as exc:
            if is_lock_error(exc):
                raise lock_timeout(exc, f"cataloguing {', '.join(b.dataset.name for b in batches)}") from exc
            raise

    # -- lookups --------------------------------------------------------------------------------
    def versions(self, dataset: DatasetName | str) -> list[int]:
        """Version numbers of a dataset, oldest first (empty if it was never archived)."""
        rows = self.db.read("SELECT version FROM archive_version WHERE dataset = ? ORDER BY version",
                            (_name(dataset).name,))
        return [r[0] for r in rows]

    def files(self, dataset: DatasetName | str, version: int | None = None,
              kind: str | None = None) -> list[ArchivedFile]:
        """The files of ``version``, or else the newest file(s) of each kind; empty when none match."""
        name = _name(dataset).name
        where, params = ["f.dataset = ?"], [name]
        if kind is not None:
            where.append("f.kind = ?")
            params.append(kind)
        if version is not None:
            where.append("f.version = ?")
            params.append(version)
            source = "archive_file f"
        else:
            source = ("archive_file f JOIN (SELECT kind, MAX(version) AS v FROM archive_file WHERE dataset = ? "
                      "GROUP BY kind) newest ON f.kind = newest.kind AND f.version = newest.v")
            params.insert(0, name)
        columns = ", ".join(f"f.{c}" for c in _FILE_COLUMNS)
        rows = self.db.read(f"SELECT {columns} FROM {source} WHERE {' AND '.join(where)} ORDER BY f.kind, f.name",
                            params)
        return [self._archived(*r) for r in rows]

    def _archived(self, dataset: str, version: int, kind: str, name: str, sha256: str, size: int,
                  ingested: float) -> ArchivedFile:
        return ArchivedFile(dataset, version, kind, name, sha256, size, ingested, self.blob_path(sha256))


def _name(dataset: DatasetName | str) -> DatasetName:
    return dataset if isinstance(dataset, DatasetName) else parse_dataset(dataset)

