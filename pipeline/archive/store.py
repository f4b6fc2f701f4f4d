"""The archive: a content-addressed file store plus a catalogue in the site database.

Files live under ``site.areas.archive/blobs/ab/<sha256>``, named by their content, written once
(temporary file, fsync, hard link into place: an existing blob is never overwritten) and made
read-only. Each file's bytes are read once: a source in the site's work or receipt area (which the
pipeline writes only by atomic rename, never in place) on the archive's file system is hard-linked
into the temporary area (no copy; the shared inode becomes read-only) and hashed by that one read;
any other source (a user's file that may later be edited in place, another file system) is hashed
while it is copied (see :meth:`Archive._stage_file`). The catalogue (tables
``archive_version`` and ``archive_file`` on the shared :class:`pipeline.core.db.Base`) maps dataset,
version and file kind to blobs.

Every :meth:`Archive.ingest` call creates one new version of its dataset holding all the files of
that call; older versions are kept, and the newest file of each kind is what is served. Repeating
an ingest whose files are exactly what is already served returns that version instead (a rerun
converges). The checksum is computed while staging; immediately before the catalogue commits each
source's identity, size and modification time are compared with those it had when it was hashed (a
``stat``, not a re-read), so a file that changed in between is refused with nothing catalogued and no
new blob left behind. The stored bytes are checked against their names by ``owl archive verify``.

Each version also carries the catalogue fields (instrument, detector, target, filters, ...) and the
primary header keywords of its raw file (else its first FITS file), plus those only its first
extension holds, as JSON, so reprocessing can select among many datasets by CRDS parameters
without reopening FITS files. Fields a call cannot
supply (pods before 2FITS, previews) are carried forward from the dataset's previous version.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import math
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    and_,
    case,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Mapped, Session, mapped_column

from pipeline.core.config import Site
from pipeline.core.db import Base, create_tables, engine_for
from pipeline.core.dbapi import is_lock_error, lock_timeout
from pipeline.core.errors import BadInput, OwlError
from pipeline.core.exitcodes import ExitCode
from pipeline.core.fsutil import _CHUNK, atomic_write, file_lock, fsync_dir, sha256_file
from pipeline.core.names import DatasetName, parse_dataset

_KIND_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,254}$")

#: Catalogue fields of a version; callers may set any of them through ``metadata``.
FIELDS = ("association", "instrument", "detector", "target", "ra", "dec", "filters", "exptime",
          "date_obs", "expstart", "program", "crds_context", "software")
#: Software-version keywords worth recording (the record of processing).
SOFTWARE_KEYWORDS = ("OPUS_VER", "CAL_VER", "CSYS_VER", "CALWF3_V", "CALACS_V", "CALCOS_V", "DRIZ_VER",
                     "PYDRIZ_V", "UPWCSVER", "PYWCSVER", "OWL_VER", "CTE_VER")  # CTE_VER: the _flc's CTE model
#: Header cards that carry no parameter worth selecting on.
_SKIP_CARDS = {"", "COMMENT", "HISTORY"}


class ArchiveError(OwlError):
    """The store itself is damaged (a blob does not hash to its name)."""

    code = ExitCode.INTERNAL


class NotArchived(OwlError):
    """A lookup named a dataset, version or kind the catalogue does not hold."""

    code = ExitCode.USAGE


# -- catalogue tables ----------------------------------------------------------------------------
class ArchiveVersion(Base):
    __tablename__ = "archive_version"
    __table_args__ = (UniqueConstraint("dataset", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset: Mapped[str] = mapped_column(String(9), index=True)
    version: Mapped[int] = mapped_column(Integer)
    ingested: Mapped[float] = mapped_column(Float, index=True)
    association: Mapped[str | None] = mapped_column(String(9), index=True, nullable=True)
    instrument: Mapped[str | None] = mapped_column(String(16), index=True, nullable=True)
    detector: Mapped[str | None] = mapped_column(String(16), index=True, nullable=True)
    target: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    ra: Mapped[float | None] = mapped_column(Float, nullable=True)
    dec: Mapped[float | None] = mapped_column(Float, nullable=True)
    filters: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    exptime: Mapped[float | None] = mapped_column(Float, nullable=True)
    date_obs: Mapped[str | None] = mapped_column(String(32), index=True, nullable=True)
    expstart: Mapped[float | None] = mapped_column(Float, nullable=True)
    program: Mapped[str | None] = mapped_column(String(16), index=True, nullable=True)
    crds_context: Mapped[str | None] = mapped_column(String(32), index=True, nullable=True)
    software: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    header: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    extra: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class ArchiveFile(Base):
    __tablename__ = "archive_file"
    #: (dataset, kind, version) finds "the newest file of each kind" without scanning: 100,000s of rows
    __table_args__ = (UniqueConstraint("version_id", "name"), Index("ix_archive_file_newest", "dataset", "kind",
                                                                     "version"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("archive_version.id"), index=True)
    dataset: Mapped[str] = mapped_column(String(9))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    ingested: Mapped[float] = mapped_column(Float)


_TABLES = [ArchiveVersion.__table__, ArchiveFile.__table__]


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
class VersionInfo:
    dataset: str
    version: int
    ingested: float
    fields: dict[str, Any]
    extra: dict[str, Any]
    files: list[ArchivedFile]

    def as_dict(self) -> dict:
        return {**asdict(self), "files": [f.as_dict() for f in self.files]}


@dataclass(frozen=True)
class CatalogueEntry:
    """One archived file with the catalogue fields of its dataset version (a row of ``owl archive query``)."""

    dataset: str
    version: int
    kind: str
    name: str
    sha256: str
    size: int
    ingested: float
    association: str | None
    instrument: str | None
    detector: str | None
    target: str | None
    ra: float | None
    dec: float | None
    filters: str | None
    exptime: float | None
    date_obs: str | None
    expstart: float | None
    program: str | None
    crds_context: str | None
    software: dict | None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class VerifyReport:
    checked: int = 0
    bytes: int = 0
    mismatches: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    #: Blobs no catalogue row references (left by a crash between placement and commit): harmless.
    orphans: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.missing

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


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


def header_dict(header) -> dict[str, Any]:
    """A FITS header's keywords as a JSON-safe dict (no COMMENT/HISTORY; first value of a repeat wins)."""
    out: dict[str, Any] = {}
    for card in header.cards:
        key = card.keyword
        if key in _SKIP_CARDS or key in out:
            continue
        out[key] = _json_value(card.value)
    return out


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
    """(primary, first extension) headers of a FITS file as dicts; None if it is not FITS."""
    from astropy.io import fits

    try:
        with fits.open(path, lazy_load_hdus=True, memmap=False) as hdul:
            primary = header_dict(hdul[0].header)
            try:
                science = header_dict(hdul[1].header)
            except IndexError:
                science = None
    except (OSError, ValueError):
        return None
    return primary, science


def _is_fits(path: Path) -> bool:
    return any(path.name.lower().endswith(ext) for ext in (".fits", ".fits.gz", ".fit"))


# -- the archive ---------------------------------------------------------------------------------
def parameter_versions():
    """Subquery (vid, rn): per dataset, its versions ranked by how well their header gives its CRDS parameters.

    ``rn == 1`` is the newest version holding a raw file (the header RF assigned references in), else the
    newest whose catalogued header names an instrument. The newest version alone will not do: trailers and
    previews are archived as later versions whose header is theirs, not the raw's.
    """
    v, f = ArchiveVersion, ArchiveFile
    has_raw = exists().where(f.version_id == v.id, f.kind == "raw")
    rank = func.row_number().over(partition_by=v.dataset, order_by=(case((has_raw, 0), else_=1), v.version.desc()))
    return (select(v.id.label("vid"), rank.label("rn"))
            .where(v.header["INSTRUME"].as_string().is_not(None)).subquery())


class Archive:
    """Content-addressed store + catalogue of one site."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.root = site.areas.archive
        self.blobs = self.root / "blobs"
        self.tmp = self.blobs / "tmp"
        #: Areas whose files may share an inode with a blob: the pipeline never edits them in place.
        self.linkable = (site.areas.work.resolve(), site.areas.receipt.resolve())
        self.engine = engine_for(site.database_url, site.database.busy_timeout)
        self.lock_timeout = site.database.busy_timeout
        create_tables(self.engine, _TABLES)
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
            header, fields = self._describe(entries)
            extra = dict(metadata or {})
            for key in FIELDS:
                if key in extra:
                    fields[key] = extra.pop(key)
            prepared.append(_Batch(ds, entries, header, fields, extra, reads))
        if len({b.dataset for b in prepared}) != len(prepared):
            raise BadInput("one dataset given twice in a single ingest; merge its files into one version")
        try:
            for batch in prepared:
                for path, kind in batch.entries:
                    read = batch.reads.get(path)
                    batch.staged.append(self._stage_file(path, kind) if read is None else self._stage_read(read, kind))
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
        with Archive._new_file(tmp) as out, open(path, "rb") as inp:
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

    def _commit(self, batches: list[_Batch]) -> dict[DatasetName, int]:
        """Catalogue every batch as its dataset's next version in one transaction."""
        now = time.time()
        numbers: dict[DatasetName, int] = {}
        try:
            with Session(self.engine) as session, session.begin():
                for b in batches:
                    previous = session.scalars(
                        select(ArchiveVersion).where(ArchiveVersion.dataset == b.dataset.name)
                        .order_by(ArchiveVersion.version.desc()).limit(1)).first()
                    number = 1 if previous is None else previous.version + 1
                    fields, header = dict(b.fields), b.header
                    if previous is not None:  # a call without headers (pods, previews) keeps what is known
                        for key in FIELDS:
                            if fields.get(key) is None and getattr(previous, key) is not None:
                                fields[key] = getattr(previous, key)
                        if header is None:
                            header = previous.header
                    row = ArchiveVersion(dataset=b.dataset.name, version=number, ingested=now, header=header,
                                         extra=b.extra or None, **{k: fields.get(k) for k in FIELDS})
                    session.add(row)
                    session.flush()
                    session.add_all([ArchiveFile(version_id=row.id, dataset=b.dataset.name, version=number,
                                                 kind=s.kind, name=s.name, sha256=s.sha256, size=s.size,
                                                 ingested=now) for s in b.staged])
                    numbers[b.dataset] = number
            return numbers
        except IntegrityError as exc:
            raise OwlError(f"another process catalogued a version at the same time ({exc.orig}); retry",
                           code=ExitCode.LOCK_TIMEOUT) from exc
        except OperationalError as exc:
            if is_lock_error(exc):
                raise lock_timeout(exc, f"cataloguing {', '.join(b.dataset.name for b in batches)}") from exc
            raise

    # -- lookups --------------------------------------------------------------------------------
    def versions(self, dataset: DatasetName | str) -> list[int]:
        """Version numbers of a dataset, oldest first (empty if it was never archived)."""
        ds = _name(dataset)
        with self.engine.connect() as conn:
            return list(conn.scalars(select(ArchiveVersion.version).where(ArchiveVersion.dataset == ds.name)
                                     .order_by(ArchiveVersion.version)))

    def version_info(self, dataset: DatasetName | str) -> list[VersionInfo]:
        """Every version of a dataset, oldest first, with its catalogue fields and files."""
        ds = _name(dataset)
        with Session(self.engine) as session:
            rows = session.scalars(select(ArchiveVersion).where(ArchiveVersion.dataset == ds.name)
                                   .order_by(ArchiveVersion.version)).all()
            files = session.scalars(select(ArchiveFile).where(ArchiveFile.dataset == ds.name)
                                    .order_by(ArchiveFile.version, ArchiveFile.kind, ArchiveFile.name)).all()
            by_version: dict[int, list[ArchivedFile]] = {}
            for f in files:
                by_version.setdefault(f.version, []).append(self._archived(f))
            return [VersionInfo(r.dataset, r.version, r.ingested, {k: getattr(r, k) for k in FIELDS},
                                r.extra or {}, by_version.get(r.version, [])) for r in rows]

    def metadata(self, dataset: DatasetName | str, version: int | None = None) -> dict[str, Any]:
        """Catalogue fields and caller metadata of a version (default: the newest)."""
        infos = self.version_info(dataset)
        chosen = [i for i in infos if version is None or i.version == version]
        if not chosen:
            raise NotArchived(f"{_name(dataset)}: no version {version} archived"
                              f"{'; versions: ' + ', '.join(str(i.version) for i in infos) if infos else ''}")
        return {**chosen[-1].fields, **chosen[-1].extra}

    def files(self, dataset: DatasetName | str, version: int | None = None,
              kind: str | None = None) -> list[ArchivedFile]:
        """The files of ``version``, or else the newest file(s) of each kind; empty when none match."""
        ds = _name(dataset)
        stmt = select(ArchiveFile).where(ArchiveFile.dataset == ds.name)
        if kind is not None:
            stmt = stmt.where(ArchiveFile.kind == kind)
        if version is not None:
            stmt = stmt.where(ArchiveFile.version == version)
        else:
            newest = (select(ArchiveFile.kind, func.max(ArchiveFile.version).label("v"))
                      .where(ArchiveFile.dataset == ds.name).group_by(ArchiveFile.kind).subquery())
            stmt = stmt.join(newest, and_(ArchiveFile.kind == newest.c.kind, ArchiveFile.version == newest.c.v))
        with Session(self.engine) as session:
            return [self._archived(f) for f in session.scalars(stmt.order_by(ArchiveFile.kind, ArchiveFile.name))]

    def get(self, dataset: DatasetName | str, kind: str | None = None, version: int | None = None,
            dest: Path | str = Path(".")) -> list[Path]:
        """Copy archived files into ``dest`` under their original names, checking each hash; return paths.

        Serves the newest file of each kind (or only ``kind``), or the files of ``version``.
        """
        found = self.files(dataset, version, kind)
        if not found:
            what = " ".join(filter(None, [f"kind {kind}" if kind else "", f"version {version}" if version else ""]))
            known = self.versions(dataset)
            hint = f"; versions: {', '.join(map(str, known))}" if known else "; the dataset is not archived"
            raise NotArchived(f"{_name(dataset)}: no archived files{' of ' + what if what else ''}{hint}")
        out_dir = Path(dest)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for f in found:
            target = out_dir / f.name
            h = hashlib.sha256()
            try:
                with atomic_write(target) as out, open(f.path, "rb") as inp:
                    while chunk := inp.read(_CHUNK):
                        h.update(chunk)
                        out.write(chunk)
                    if h.hexdigest() != f.sha256:
                        raise ArchiveError(f"{f.name} (version {f.version}): stored blob {f.path} is damaged "
                                           f"(sha256 {h.hexdigest()[:12]}... != {f.sha256[:12]}...)")
            except FileNotFoundError:
                raise ArchiveError(f"{f.name} (version {f.version}): stored blob {f.path} is missing") from None
            written.append(target)
        return written

    def _archived(self, f: ArchiveFile) -> ArchivedFile:
        return ArchivedFile(f.dataset, f.version, f.kind, f.name, f.sha256, f.size, f.ingested,
                            self.blob_path(f.sha256))

    def query(
        self,
        *,
        dataset: str | None = None,
        association: str | None = None,
        instrument: str | None = None,
        detector: str | None = None,
        target: str | None = None,
        filters: str | None = None,
        program: str | None = None,
        crds_context: str | None = None,
        kind: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        ra: float | None = None,
        dec: float | None = None,
        radius: float | None = None,
        header: dict[str, Any] | None = None,
        all_versions: bool = False,
        limit: int | None = None,
    ) -> list[CatalogueEntry]:
        """Catalogued files matching every filter (newest version of each dataset and kind by default).

        Strings match case-insensitively; ``dataset`` and ``target`` accept ``*``/``?`` wildcards;
        ``filters`` matches any one filter of a version; dates compare as ISO strings
        (``2002-04-13``); ``ra``/``dec``/``radius`` (degrees) select a cone; ``header`` matches raw
        primary header keywords exactly (``{"DETECTOR": "UVIS", "CCDAMP": "ABCD"}``).
        """
        v, f = ArchiveVersion, ArchiveFile
        columns = [f.dataset, f.version, f.kind, f.name, f.sha256, f.size, f.ingested,
                   *(getattr(v, k) for k in FIELDS)]  # not the header JSON: selection only, fast on 100,000s
        stmt = select(*columns).join(v, f.version_id == v.id)
        for column, value in ((v.dataset, dataset), (v.target, target)):
            if value is not None:
                stmt = stmt.where(_matches(column, value))
        for column, value in ((v.association, association), (v.instrument, instrument), (v.detector, detector),
                              (v.program, program), (v.crds_context, crds_context), (f.kind, kind)):
            if value is not None:
                stmt = stmt.where(func.lower(column) == str(value).lower())
        if filters is not None:
            want = filters.lower()
            col = func.lower(v.filters)
            stmt = stmt.where(or_(col == want, col.like(f"{want};%"), col.like(f"%;{want}"), col.like(f"%;{want};%"),
                                  col.like(f"{want}/%"), col.like(f"%;{want}/%")))
        if date_from is not None:
            stmt = stmt.where(v.date_obs >= date_from)
        if date_to is not None:
            stmt = stmt.where(v.date_obs <= date_to + "\uffff")
        if radius is not None and (ra is None or dec is None):
            raise NotArchived("a cone search needs ra, dec and radius")
        if ra is not None and dec is not None and radius is not None:  # box in SQL, exact cone below
            ddec = radius
            dra = radius / max(math.cos(math.radians(min(abs(dec) + radius, 89.999))), 1e-6)
            stmt = stmt.where(v.dec.between(dec - ddec, dec + ddec))
            if dra < 180:
                lo, hi = (ra - dra) % 360, (ra + dra) % 360
                stmt = stmt.where(v.ra.between(lo, hi) if lo <= hi else or_(v.ra >= lo, v.ra <= hi))
        for key, value in (header or {}).items():
            stmt = stmt.where(v.header[key.upper()].as_string() == str(value)
                              if isinstance(value, str) else v.header[key.upper()].as_float() == float(value))
        if not all_versions:
            newest = (select(f.dataset, f.kind, func.max(f.version).label("mv"))
                      .group_by(f.dataset, f.kind).subquery())
            stmt = stmt.join(newest, and_(f.dataset == newest.c.dataset, f.kind == newest.c.kind,
                                          f.version == newest.c.mv))
        stmt = stmt.order_by(f.dataset, f.version, f.kind, f.name)
        with self.engine.connect() as conn:
            out = [CatalogueEntry(*row) for row in conn.execute(stmt)]
        if ra is not None and dec is not None and radius is not None:
            out = [e for e in out if e.ra is not None and e.dec is not None
                   and _separation(ra, dec, e.ra, e.dec) <= radius]
        return out[:limit] if limit is not None else out

    def headers(self, datasets: Iterable[str] | None = None) -> Iterator[tuple[str, int, dict]]:
        """(dataset, version, header keywords) of each dataset's parameter version (:func:`parameter_versions`)."""
        v = ArchiveVersion
        chosen = parameter_versions()
        stmt = (select(v.dataset, v.version, v.header).join(chosen, and_(v.id == chosen.c.vid, chosen.c.rn == 1))
                .order_by(v.dataset))
        if datasets is not None:
            stmt = stmt.where(v.dataset.in_([parse_dataset(d).name for d in datasets]))
        with self.engine.connect() as conn:
            for row in conn.execute(stmt):
                yield row.dataset, row.version, row.header

    # -- integrity --------------------------------------------------------------------------------
    def verify(self, progress: Callable[[int, int], None] | None = None) -> VerifyReport:
        """Re-hash every stored blob the catalogue references; list mismatches, missing and orphan blobs."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(ArchiveFile.sha256, ArchiveFile.size, ArchiveFile.dataset,
                                       ArchiveFile.version, ArchiveFile.name)
                                .order_by(ArchiveFile.sha256)).all()
        users: dict[str, list[str]] = {}
        sizes: dict[str, int] = {}
        for r in rows:
            users.setdefault(r.sha256, []).append(f"{r.dataset} v{r.version} {r.name}")
            sizes[r.sha256] = r.size
        report = VerifyReport()
        total = len(users)
        for i, (digest, who) in enumerate(users.items(), 1):
            blob = self.blob_path(digest)
            label = ", ".join(who)
            try:
                actual = sha256_file(blob)
            except FileNotFoundError:
                report.missing.append(f"{label}: blob {blob} missing")
            else:
                report.bytes += blob.stat().st_size
                if actual != digest:
                    report.mismatches.append(f"{label}: blob {blob} hashes to {actual}, catalogue says {digest}")
                elif blob.stat().st_size != sizes[digest]:
                    report.mismatches.append(f"{label}: blob {blob} has {blob.stat().st_size} bytes, "
                                             f"catalogue says {sizes[digest]}")
            report.checked += 1
            if progress is not None:
                progress(i, total)
        if self.blobs.is_dir():
            for blob in sorted(self.blobs.glob("??/*")):
                if blob.name not in users:
                    report.orphans.append(str(blob))
        return report


def _matches(column, value: str):
    """Case-insensitive equality, or a LIKE when ``value`` holds ``*``/``?`` wildcards."""
    text = value.lower()
    if not any(c in text for c in "*?"):
        return func.lower(column) == text
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(column).like(escaped.replace("*", "%").replace("?", "_"), escape="\\")


def _name(dataset: DatasetName | str) -> DatasetName:
    return dataset if isinstance(dataset, DatasetName) else parse_dataset(dataset)


def _separation(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance in degrees (haversine: stable at small separations)."""
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    a = math.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * math.cos(d2) * math.sin((r2 - r1) / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(a))))
