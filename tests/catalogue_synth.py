"""A synthetic archive catalogue for reprocessing selection: real catalogued headers, varied.

Each exposure starts from a real header as INGEST_SCI catalogues it (primary + first extension of
real ACS/WFC, ACS/HRC, WFC3/UVIS, WFC3/IR, WFPC2 and NICMOS files) and varies what CRDS matches
on over realistic values: dates over each instrument's life, amplifiers, gains (including the
do-not-reprocess WFC gains), binning, subarrays, filters, IR sample sequences. Each is recorded as
processed with one of several real 2015 contexts; a fifth also have an older version and half a
later trailer version (whose header is the trailer's). Rows go straight into the catalogue tables,
as an archive of that size would hold them.

:func:`full_changes` is the slow reference answer (every type, whole header, one dataset at a time).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from pathlib import Path
from typing import Any

REALDATA = Path(os.environ.get("OWL_REALDATA", Path(__file__).resolve().parents[2] / "shared" / "realdata"))
#: Contexts the archived exposures were last processed with (one per quarter or so), and the newest.
PROCESSED_WITH = ("hst_0300.pmap", "hst_0320.pmap", "hst_0340.pmap", "hst_0348.pmap")
NEWEST = "hst_0349.pmap"

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
#: What the catalogue holds as header for a ``_trl.fits`` version (its table's header, no INSTRUME).
TRAILER_HEADER = {"XTENSION": "TABLE", "BITPIX": 8, "NAXIS": 2, "NAXIS1": 132, "NAXIS2": 40, "PCOUNT": 0,
                  "GCOUNT": 1, "TFIELDS": 1, "TTYPE1": "TEXT_FILE", "TFORM1": "A132", "EXTNAME": "TRAILER"}


def _template(path: Path) -> dict[str, Any]:
    """A catalogued header as the archive stores it (primary wins over the first extension)."""
    from pipeline.archive.ingest import read_fits_headers

    found = read_fits_headers(path)
    if found is None:
        raise RuntimeError(f"{path} is not readable FITS")
    primary, science = found
    return {**(science or {}), **primary}


def _date(rng: random.Random, spans: list[tuple[int, int]]) -> tuple[str, str]:
    """A (DATE-OBS, TIME-OBS) inside one of the instrument's operating spans (days since 2000-01-01)."""
    lo, hi = rng.choice(spans)
    day = dt.date(2000, 1, 1) + dt.timedelta(days=rng.randint(lo, hi))
    return day.isoformat(), f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"


def _days(a: str, b: str) -> tuple[int, int]:
    base = dt.date(2000, 1, 1)
    return (dt.date.fromisoformat(a) - base).days, (dt.date.fromisoformat(b) - base).days


ACS_WFC_SPANS = [_days("2002-03-07", "2007-01-26"), _days("2009-05-25", "2015-05-31")]
ACS_HRC_SPANS = [_days("2002-03-07", "2007-01-26")]
WFC3_SPANS = [_days("2009-06-01", "2015-05-31")]
OLD_SPANS = [_days("1994-01-01", "2008-12-31")]
ACS_FILTERS = [("F435W", "CLEAR2L"), ("F475W", "CLEAR2L"), ("F555W", "CLEAR2L"), ("F606W", "CLEAR2L"),
               ("CLEAR1L", "F814W"), ("F625W", "CLEAR2L"), ("F775W", "CLEAR2L"), ("F850LP", "CLEAR2L"),
               ("F658N", "CLEAR2L"), ("F502N", "CLEAR2L"), ("CLEAR1L", "F660N"), ("F550M", "CLEAR2L")]
HRC_FILTERS = ["F220W", "F250W", "F330W", "F435W", "F475W", "F555W", "F606W", "F625W", "F814W", "F850LP"]
UVIS_FILTERS = ["F225W", "F275W", "F336W", "F390W", "F438W", "F475W", "F555W", "F606W", "F625W", "F775W",
                "F814W", "F850LP", "F656N", "F502N", "F373N", "F200LP", "F350LP"]
IR_FILTERS = ["F098M", "F105W", "F110W", "F125W", "F140W", "F160W", "F127M", "F139M", "F153M", "F164N"]
IR_SAMPLES = ["SPARS10", "SPARS25", "SPARS50", "SPARS100", "SPARS200", "STEP25", "STEP50", "STEP100",
              "STEP200", "STEP400", "RAPID"]
IR_SUBTYPES = [("FULLIMAG", "IR", 1014), ("SQ512SUB", "IRSUB512", 522), ("SQ256SUB", "IRSUB256", 266),
               ("SQ128SUB", "IRSUB128", 138), ("SQ64SUB", "IRSUB64", 74)]


def _acs_wfc(h: dict, rng: random.Random) -> None:
    h["DATE-OBS"], h["TIME-OBS"] = _date(rng, ACS_WFC_SPANS)
    h["CCDGAIN"] = rng.choices([1.0, 2.0, 0.5, 1.4], weights=[40, 56, 2, 2])[0]
    if rng.random() < 0.75:
        h.update(CCDAMP="ABCD", APERTURE=rng.choice(["WFC", "WFC1", "WFC2", "WFCENTER", "WFC1-FIX"]),
                 NAXIS1=4144, NAXIS2=2068, LTV1=24.0, LTV2=0.0, SUBARRAY=False, CCDCHIP=2)
    else:
        amp = rng.choice("ABCD")
        width, height = rng.choice([(513, 512), (1025, 1024), (2072, 2068), (4144, 2048)])
        h.update(CCDAMP=amp, APERTURE=f"WFC{1 if amp in 'AB' else 2}{amp}-{rng.choice(['512', '1K', '2K'])}",
                 NAXIS1=width, NAXIS2=height, LTV1=float(rng.choice([0, 24, 22])), LTV2=float(rng.choice([0, 20])),
                 SUBARRAY=True, CCDCHIP=1 if amp in "AB" else 2)
    h["FILTER1"], h["FILTER2"] = rng.choice(ACS_FILTERS)
    h["FLASHCUR"] = rng.choices(["OFF", "LOW", "MED"], weights=[90, 7, 3])[0]
    h["SHUTRPOS"] = rng.choice("AB")
    h["DARKCORR"] = rng.choices(["PERFORM", "OMIT"], weights=[97, 3])[0]


def _acs_hrc(h: dict, rng: random.Random) -> None:
    h["DATE-OBS"], h["TIME-OBS"] = _date(rng, ACS_HRC_SPANS)
    h["CCDAMP"] = rng.choices("CABD", weights=[85, 5, 5, 5])[0]
    h["CCDGAIN"] = rng.choices([2, 1, 4], weights=[70, 25, 5])[0]
    h["FILTER1"], h["FILTER2"] = rng.choice([("CLEAR1S", f) for f in HRC_FILTERS]
                                            + [(f, "CLEAR2S") for f in HRC_FILTERS])
    if rng.random() < 0.2:
        h.update(NAXIS1=512, NAXIS2=512, LTV1=float(rng.choice([19, 0])), LTV2=0.0, APERTURE="HRC-512",
                 SUBARRAY=True)


def _uvis(h: dict, rng: random.Random) -> None:
    h["DATE-OBS"], h["TIME-OBS"] = _date(rng, WFC3_SPANS)
    if rng.random() < 0.7:
        h.update(CCDAMP="ABCD", APERTURE=rng.choice(["UVIS", "UVIS1", "UVIS2", "UVIS-CENTER", "UVIS-FIX"]),
                 SUBARRAY=False, NAXIS1=4206, NAXIS2=2070)
    else:
        amp = rng.choice("ABCD")
        h.update(CCDAMP=amp, APERTURE=f"UVIS{1 if amp in 'AB' else 2}-{amp}512{amp}-SUB", SUBARRAY=True,
                 NAXIS1=513, NAXIS2=512)
    binning = rng.choices([1, 2, 3], weights=[92, 6, 2])[0]
    h["BINAXIS1"] = h["BINAXIS2"] = binning
    h["FILTER"] = rng.choice(UVIS_FILTERS)
    h["FLASHCUR"] = rng.choices(["ZERO", "LOW", "MED"], weights=[85, 10, 5])[0]
    h["CHINJECT"] = rng.choices(["NONE", "LINE10", "CONT"], weights=[95, 3, 2])[0]


def _ir(h: dict, rng: random.Random) -> None:
    h["DATE-OBS"], h["TIME-OBS"] = _date(rng, WFC3_SPANS)
    h["SAMP_SEQ"] = rng.choice(IR_SAMPLES)
    h["SUBTYPE"], h["APERTURE"], size = rng.choices(IR_SUBTYPES, weights=[80, 6, 6, 4, 4])[0]
    h["NAXIS1"] = h["NAXIS2"] = size
    h["FILTER"] = rng.choice(IR_FILTERS)


def _old(h: dict, rng: random.Random) -> None:
    h["DATE-OBS"], h["TIME-OBS"] = _date(rng, OLD_SPANS)


#: (template file, instrument letter, share of the archive, how it varies).
MIX = [("headers_only_samples/jbt122x8q_flc_header.fits", "j", 35, _acs_wfc),
       ("acs_hrc_j8bt/raw/j8bt05njq_raw.fits", "j", 10, _acs_hrc),
       ("headers_only_samples/ib4606c5q_flc_10x10sample.fits", "i", 30, _uvis),
       ("headers_only_samples/ib4606cpq_flt_10x10sample.fits", "i", 15, _ir),
       ("headers_only_samples/WFPC2u5780205r_c0fx.fits", "u", 5, _old),
       ("headers_only_samples/n8xtzcawq_nicmos_header_only.fits", "n", 5, _old)]


def _insert(engine, versions: list[dict]) -> None:
    """Catalogue rows with their files: a raw file (INGEST_SCI), or the trailer of ``kind`` "trl" (CL)."""
    import hashlib

    from sqlalchemy import func, insert, select

    from pipeline.archive.store import ArchiveFile, ArchiveVersion

    with engine.begin() as conn:
        first = (conn.execute(select(func.max(ArchiveVersion.id))).scalar() or 0) + 1
        kinds = [row.pop("kind", "raw") for row in versions]
        for i, row in enumerate(versions):
            row["id"] = first + i
        conn.execute(insert(ArchiveVersion), versions)
        conn.execute(insert(ArchiveFile), [
            {"version_id": row["id"], "dataset": row["dataset"], "version": row["version"], "kind": kind,
             "name": f"{row['dataset']}_{kind}.fits", "size": 2 ** 21, "ingested": row["ingested"],
             "sha256": hashlib.sha256(f"{row['dataset']} {row['version']}".encode()).hexdigest()}
            for row, kind in zip(versions, kinds, strict=True)])


def synthesise(site, count: int, seed: int = 7) -> float:
    """Insert ``count`` catalogued exposures (a fifth with an older version too); return seconds taken."""
    from pipeline.archive.ingest import catalogue_fields
    from pipeline.archive.store import Archive

    t0 = time.perf_counter()
    engine = Archive(site).engine  # creates the catalogue tables
    rng = random.Random(seed)
    templates = [(_template(REALDATA / path), letter, share, vary) for path, letter, share, vary in MIX]
    weights = [t[2] for t in templates]
    rows: list[dict] = []
    now = time.time()
    for i in range(count):
        base, letter, _share, vary = rng.choices(templates, weights=weights)[0]
        header = dict(base)
        vary(header, rng)
        name = f"{letter}{_b36(i // 1296, 5)}{_b36(i % 1296, 2)}q"
        visit = name[:6]
        context = rng.choice(PROCESSED_WITH)
        header.update(CRDS_CTX=context, ROOTNAME=name.upper(), ASN_ID=f"{visit}010".upper() if i % 3 else "NONE")
        fields = catalogue_fields(header)
        record = {"dataset": name, "ingested": now, "header": header, "extra": None,
                  **{k: fields.get(k) for k in ("association", "instrument", "detector", "target", "ra", "dec",
                                                "filters", "exptime", "date_obs", "expstart", "program",
                                                "crds_context", "software")}}
        version = 1
        if rng.random() < 0.2:  # processed before with an older context: the newest raw is what counts
            rows.append({**record, "version": 1, "crds_context": "hst_0250.pmap",
                         "header": {**header, "CRDS_CTX": "hst_0250.pmap"}})
            version = 2
        rows.append({**record, "version": version})
        if rng.random() < 0.5:  # CL archived the trailer afterwards: a later version with the trailer's header
            rows.append({**record, "version": version + 1, "kind": "trl", "header": TRAILER_HEADER})
        if len(rows) >= 5000:
            _insert(engine, rows)
            rows = []
    if rows:
        _insert(engine, rows)
    return time.perf_counter() - t0


def _b36(n: int, width: int) -> str:
    out = ""
    for _ in range(width):
        n, r = divmod(n, 36)
        out = _B36[r] + out
    return out


def full_changes(header: dict, old, new) -> set[str]:
    """The types whose best reference differs, the slow way: the whole catalogued header, every type."""
    from pipeline.orchestration import reprocess

    def everything(ctx) -> dict[str, str]:
        result = ctx.lookup(header)
        return {**result.refs, **{t: reprocess.NOT_FOUND for t in result.failures}}

    before, after = everything(old), everything(new)
    return {t for t in set(before) | set(after) if before.get(t, reprocess.OMITTED) != after.get(t, reprocess.OMITTED)}


def sample(site, count: int, seed: int = 3) -> list[tuple[str, str, dict]]:
    """(dataset, CRDS context, raw header) of ``count`` random ACS and WFC3 exposures (all, if fewer),
    from each one's newest version holding a raw file."""
    from sqlalchemy import func, select

    from pipeline.archive.store import Archive, ArchiveFile, ArchiveVersion

    v, f = ArchiveVersion, ArchiveFile
    newest = (select(f.dataset.label("ds"), func.max(f.version).label("mv")).where(f.kind == "raw")
              .group_by(f.dataset).subquery())
    chosen = select(v.id).join(newest, (v.dataset == newest.c.ds) & (v.version == newest.c.mv)) \
        .where(v.instrument.in_(["ACS", "WFC3"]))
    engine = Archive(site).engine
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(chosen)]
        picked = random.Random(seed).sample(ids, min(count, len(ids)))
        rows = conn.execute(select(v.dataset, v.crds_context, v.header).where(v.id.in_(picked))
                            .order_by(v.dataset)).all()
    return [tuple(r) for r in rows]




def _header_value(text: str, current: Any) -> Any:
    """A header value matching one rmap match field (its first alternative; numbers as numbers)."""
    first = text.replace("|", ",").split(",")[0].strip()
    try:
        number = float(first)
    except ValueError:
        return first
    return int(number) if isinstance(current, int) and number.is_integer() else number


def add_boundary_exposures(site, old, new, cases: list[tuple[str, str, str]], per_type: int = 6,
                           seed: int = 5) -> int:
    """Exposures observed one second before, at and after USEAFTER dates of the rules of ``cases``
    ((instrument, reftype, template path)): where ``old`` and ``new`` differ and where they agree.

    Dates next to a USEAFTER are where a selection that shares lookups between exposures would go
    wrong if it grouped them carelessly. Returns how many were inserted.
    """
    from pipeline.archive.ingest import catalogue_fields
    from pipeline.archive.store import Archive

    rng = random.Random(seed)
    rows = []
    for instrument, reftype, path in cases:
        template = _template(REALDATA / path)
        rules = [ctx.pmap.get_imap(instrument).get_rmap(reftype) for ctx in (old, new)]
        flat = [{tuple(r[:-1]) for r in rm.todict()["selections"]} for rm in rules]
        differing, common = sorted(flat[0] ^ flat[1]), sorted(flat[0] & flat[1])
        parkeys = list(rules[1].parkey[0])
        earliest = [min(differing, key=lambda m: m[-1])] if differing else []  # where the USEAFTER test cuts
        chosen = earliest + rng.sample(differing, min(per_type, len(differing))) \
            + rng.sample(common, min(per_type, len(common)))
        for match in chosen:
            useafter = dt.datetime.fromisoformat(match[-1])
            for shift in (-1, 0, 1):
                header = dict(template)
                for key, value in zip(parkeys, match[:-1], strict=True):
                    if value not in ("N/A", "*"):
                        header[key] = _header_value(value, header.get(key))
                when = useafter + dt.timedelta(seconds=shift)
                if when.year < 1990:
                    continue
                header["DATE-OBS"], header["TIME-OBS"] = when.strftime("%Y-%m-%d"), when.strftime("%H:%M:%S")
                name = f"{template['INSTRUME'][0].lower()}zz{_b36(len(rows), 4)}q"
                header.update(CRDS_CTX=old.name, ROOTNAME=name.upper(), ASN_ID="NONE")
                fields = catalogue_fields(header)
                rows.append({"dataset": name, "version": 1, "ingested": time.time(), "header": header,
                             "extra": None, **{k: fields.get(k) for k in ("association", "instrument", "detector",
                                                                          "date_obs", "crds_context")}})
    _insert(Archive(site).engine, rows)
    return len(rows)
