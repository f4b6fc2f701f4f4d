"""The archive's catalogue queries (SQLAlchemy).

:class:`Archive` is the site's content-addressed store and catalogue
(:class:`pipeline.archive.ingest.ArchiveIngest`: ingest, versions, the newest files) plus what the
operators, reprocessing and the service ask of the catalogue: versions with their fields, copies of
files, queries by catalogue field and header keyword, and ``verify``, which checks every stored blob
against its name. The catalogue's two tables (:mod:`pipeline.archive.tables`) are written by
:mod:`pipeline.archive.ingest` through the DB-API layer and queried here.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    and_,
    case,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from pipeline.archive.ingest import FIELDS, ArchivedFile, ArchiveError, ArchiveIngest, NotArchived, _name
from pipeline.archive.tables import ArchiveFile, ArchiveVersion, create_catalogue
from pipeline.core.config import Site
from pipeline.core.db import engine_for
from pipeline.core.fsutil import _CHUNK, atomic_write, sha256_file
from pipeline.core.names import DatasetName, parse_dataset


# -- what callers get back -----------------------------------------------------------------------
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


class Archive(ArchiveIngest):
    """Content-addressed store + catalogue of one site, with the catalogue's queries."""

    def __init__(self, site: Site) -> None:
        create_catalogue(site)
        super().__init__(site)
        self.engine = engine_for(site.database_url, site.database.busy_timeout)

    # -- lookups --------------------------------------------------------------------------------
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
                by_version.setdefault(f.version, []).append(
                    self._archived(f.dataset, f.version, f.kind, f.name, f.sha256, f.size, f.ingested))
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


def _separation(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance in degrees (haversine: stable at small separations)."""
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    a = math.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * math.cos(d2) * math.sin((r2 - r1) / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(a))))
