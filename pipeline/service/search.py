"""One search over the catalogue for both protocols: SIA v2 and the JSON API.

A row is one ObsCore product: the newest archived file of a science kind (raw, flt, drz, ...) of a
dataset, with its version's catalogue fields, its rights and its ObsCore values. Constraints
of one kind are OR-ed, kinds are AND-ed (SIA v2 semantics). What SQL can decide (names, times,
exposure times, a box around each position) it decides; exact shapes and wavelength ranges are
checked on the rows as they stream, so ``maxrec`` is honoured without reading the whole catalogue
(and rows come in index order, not sorted: sorting would read every match first).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from sqlalchemy import Index, and_, func, not_, or_, select
from sqlalchemy.orm import aliased

from pipeline.archive.store import ArchiveFile, ArchiveVersion, _separation
from pipeline.service import obscore
from pipeline.service.access import Program, ProgramStore, header_pi, rights

COLLECTION, FACILITY = "HST", "HST"
Interval = tuple[float, float]


@dataclass
class Constraints:
    circles: list[tuple[float, float, float]] = field(default_factory=list)
    ranges: list[tuple[float, float, float, float]] = field(default_factory=list)
    polygons: list[list[tuple[float, float]]] = field(default_factory=list)
    bands: list[Interval] = field(default_factory=list)
    times: list[Interval] = field(default_factory=list)
    exptimes: list[Interval] = field(default_factory=list)
    fovs: list[Interval] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    instruments: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    programs: list[str] = field(default_factory=list)
    collections: list[str] = field(default_factory=list)
    facilities: list[str] = field(default_factory=list)
    dptypes: list[str] = field(default_factory=list)
    calibs: list[int] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    pols: list[str] = field(default_factory=list)
    date_from: str | None = None
    date_to: str | None = None


@dataclass
class Product:
    """One ObsCore row."""

    obs_id: str
    version: int
    kind: str
    name: str
    size: int
    sha256: str
    calib_level: int
    dataproduct_type: str
    s_ra: float | None
    s_dec: float | None
    s_fov: float
    t_min: float | None
    t_max: float | None
    t_exptime: float | None
    em_min: float | None
    em_max: float | None
    instrument_name: str | None
    detector: str | None
    filters: str | None
    target_name: str | None
    date_obs: str | None
    program: str | None
    pi: str | None
    obs_release_date: str | None
    data_rights: str
    crds_context: str | None
    access_format: str
    #: Catalogue row of the version (internal).
    vid: int

    @property
    def s_region(self) -> str:
        if self.s_ra is None or self.s_dec is None:
            return ""
        return f"CIRCLE ICRS {self.s_ra:.7f} {self.s_dec:.7f} {self.s_fov / 2:.6f}"

    def as_dict(self) -> dict:
        out = {**asdict(self), "s_region": self.s_region}
        del out["vid"]
        return out


def _overlaps(value: Interval | None, wanted: list[Interval]) -> bool:
    return not wanted or (value is not None and any(lo <= value[1] and value[0] <= hi for lo, hi in wanted))


def _in_polygon(ra: float, dec: float, vertices: list[tuple[float, float]]) -> bool:
    """Ray casting on the sky, RA unwrapped around the point (polygons well under a hemisphere)."""
    pts = [(((v_ra - ra + 180) % 360) - 180, v_dec) for v_ra, v_dec in vertices]
    inside = False
    for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1], strict=True):
        if (y1 > dec) != (y2 > dec) and x1 + (dec - y1) * (x2 - x1) / (y2 - y1) > 0:
            inside = not inside
    return inside


def _ra_between(column, lo: float, hi: float):
    lo, hi = lo % 360, hi % 360
    return column.between(lo, hi) if lo <= hi else or_(column >= lo, column <= hi)


def _boxes(c: Constraints, v) -> list:
    """SQL boxes around every POS shape (OR-ed)."""
    boxes = []
    for ra, dec, r in c.circles:
        dra = r / max(math.cos(math.radians(min(abs(dec) + r, 89.999))), 1e-6)
        cond = v.dec.between(dec - r, dec + r)
        boxes.append(cond if dra >= 180 else and_(cond, _ra_between(v.ra, ra - dra, ra + dra)))
    for ra1, ra2, dec1, dec2 in c.ranges:
        cond = v.dec.between(dec1, dec2)
        boxes.append(cond if ra2 - ra1 >= 360 else and_(cond, _ra_between(v.ra, ra1, ra2)))
    for poly in c.polygons:
        decs = [p[1] for p in poly]
        boxes.append(v.dec.between(min(decs), max(decs)))
    return boxes


def _position_ok(c: Constraints, ra: float | None, dec: float | None) -> bool:
    if not (c.circles or c.ranges or c.polygons):
        return True
    if ra is None or dec is None:
        return False
    return (any(_separation(cra, cdec, ra, dec) <= r for cra, cdec, r in c.circles)
            or any(dec1 <= dec <= dec2 and (ra2 - ra1 >= 360 or (ra - ra1) % 360 <= (ra2 - ra1) % 360)
                   for ra1, ra2, dec1, dec2 in c.ranges)
            or any(_in_polygon(ra, dec, p) for p in c.polygons))


#: Indexes the search needs beyond the archive's own (created by the service, on an existing catalogue too).
INDEXES = (Index("ix_service_version_expstart", ArchiveVersion.expstart),
           Index("ix_service_version_dec", ArchiveVersion.dec))


def ensure_indexes(engine) -> None:
    for index in INDEXES:
        index.create(engine, checkfirst=True)


def statement(c: Constraints):
    """The SQL part of the search: the newest file of each science kind per dataset, in no promised order.

    The file-kind index is kept out of the plan on purpose: driven by it, SQLite reads rows in kind order
    and filters every one (a narrow TIME window over 100,000 datasets took 0.7 s); without it, SQLite
    starts from the most selective catalogue index (expstart, dec, instrument, target) or scans in
    table order and stops at MAXREC.
    """
    v, f = ArchiveVersion, ArchiveFile
    newer = aliased(ArchiveFile)
    calib_kinds = {k for k, (level, dptype) in obscore.PRODUCTS.items()
                   if (not c.calibs or level in c.calibs) and (not c.dptypes or dptype in c.dptypes)}
    stmt = (select(f.dataset, f.version, f.kind, f.name, f.size, f.sha256, v.instrument, v.detector, v.target,
                   v.ra, v.dec, v.filters, v.exptime, v.date_obs, v.expstart, v.program, v.crds_context,
                   v.id.label("vid"))
            .join(v, f.version_id == v.id)
            .where((f.kind + "").in_(sorted(calib_kinds)))  # "|| ''": keeps SQLite off the kind index
            .where(not_(select(newer.id).where(newer.dataset == f.dataset, newer.kind == f.kind,
                                               newer.version > f.version).exists())))
    if c.ids:
        stmt = stmt.where(f.dataset.in_([i.lower() for i in c.ids]))
    if c.instruments:  # headers give upper case; matching as given too keeps the column's index usable
        stmt = stmt.where(v.instrument.in_(sorted({x for i in c.instruments for x in (i, i.upper())})))
    if c.targets:
        stmt = stmt.where(v.target.in_(sorted({x for t in c.targets for x in (t, t.upper())})))
    if c.programs:
        stmt = stmt.where(v.program.in_(c.programs))
    if c.date_from:
        stmt = stmt.where(v.date_obs >= c.date_from)
    if c.date_to:
        stmt = stmt.where(v.date_obs <= c.date_to + "\uffff")
    if c.times:  # bounded below too (no exposure lasts a day), so an index on expstart can serve it
        end = v.expstart + func.coalesce(v.exptime, 0.0) / 86400
        stmt = stmt.where(or_(*(and_(v.expstart.between(lo - 1.0, hi), end >= lo) for lo, hi in c.times)))
    if c.exptimes:
        stmt = stmt.where(or_(*(v.exptime.between(lo, hi) for lo, hi in c.exptimes)))
    boxes = _boxes(c, v)
    if boxes:
        stmt = stmt.where(or_(*boxes))
    return stmt  # no ORDER BY: a sort would read every match before the first row; MAXREC stops the scan early


def _unmatchable(c: Constraints) -> bool:
    """Constraints no HST product of this archive can meet (other collections, polarisation, formats)."""
    return (bool(c.pols)
            or (c.collections and COLLECTION not in [x.upper() for x in c.collections])
            or (c.facilities and FACILITY not in [x.upper() for x in c.facilities])
            or (c.formats and not {x.lower() for x in c.formats} & {"application/fits", "image/fits"}))


def search(engine, programs: ProgramStore, c: Constraints, limit: int) -> list[Product]:
    """Products matching ``c``, at most ``limit`` of them (PIs the program table lacks from the raw header)."""
    found = list(_matching(engine, programs, c, limit))
    unnamed = {p.vid for p in found if p.pi is None}
    if unnamed:  # the header JSON is read for the answer's rows only, never while scanning
        v = ArchiveVersion
        with engine.connect() as conn:
            names = {row.id: header_pi(row.first, row.last) for row in conn.execute(
                select(v.id, v.header["PR_INV_F"].as_string().label("first"),
                       v.header["PR_INV_L"].as_string().label("last")).where(v.id.in_(sorted(unnamed))))}
        for p in found:
            if p.pi is None:
                p.pi = names.get(p.vid)
    return found


def _matching(engine, programs: ProgramStore, c: Constraints, limit: int) -> Iterator[Product]:
    if limit <= 0 or _unmatchable(c):
        return
    known: dict[str, Program] = {p.program: p for p in programs.all()}  # a few rows: operators' settings
    found = 0
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=500).execute(statement(c))
        for row in result:
            if not _position_ok(c, row.ra, row.dec):
                continue
            em = obscore.band(row.filters, row.instrument, row.detector)
            if not _overlaps(em, c.bands):
                continue
            s_fov = obscore.fov(row.instrument, row.detector)
            if c.fovs and not _overlaps((s_fov, s_fov), c.fovs):
                continue
            r = rights(known.get(row.program) if row.program else None, row.program, row.date_obs)
            level, dptype = obscore.PRODUCTS[row.kind]
            t_min, t_max = obscore.times(row.expstart, row.exptime, row.date_obs)
            yield Product(row.dataset, row.version, row.kind, row.name, row.size, row.sha256, level, dptype,
                          row.ra, row.dec, s_fov, t_min, t_max, row.exptime, em[0] if em else None,
                          em[1] if em else None, row.instrument, row.detector, row.filters, row.target, row.date_obs,
                          row.program, r.pi, r.release_date, r.data_rights, row.crds_context,
                          obscore.access_format(row.name), row.vid)
            found += 1
            if found >= limit:
                return
