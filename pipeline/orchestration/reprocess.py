"""Which archived datasets a new CRDS context changes: the selection of a reprocessing campaign.

This is ``crds bestrefs --affected-datasets --diffs-only`` done in process over the archive
catalogue: for every archived exposure, the best references are recomputed from its catalogued raw
header parameters under the context it was processed with (its ``CRDS_CTX``, or ``--old-context``)
and under the new one, and the exposure is affected when any reference differs (a file, ``N/A`` or
a failed lookup all count, as crds's ``--undefined-differences-matter --na-differences-matter``).

Why it is fast enough for a whole archive (100,000 exposures in well under a minute):

- contexts load once; only the instruments and types whose rules differ are looked at
  (:func:`pipeline.science.refs.changed_types`), and only the header keywords those rules read are fetched
  from the catalogue's JSON, in SQL; no FITS file is opened;
- a type whose rules differ only by rows whose USEAFTER is later than a dataset's observation
  cannot change that dataset's reference (crds's ``--datasets-since``), so it is not looked up;
- a type's result depends only on its own matching keywords and on which of its USEAFTER dates
  the observation falls between, so exposures that agree on those share one lookup (rules with
  header hooks, such as the ACS bias, key on the exact date instead: hooks may read it).
"""

from __future__ import annotations

import bisect
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import and_, func, select

from pipeline.archive.store import ArchiveFile, ArchiveVersion, parameter_versions
from pipeline.core.config import Site
from pipeline.core.db import Base, engine_for
from pipeline.core.errors import ConfigError, OwlError
from pipeline.science import refs

#: Keywords crds reads besides a type's own matching ones: ``INSTRUME`` picks the rules, and HST's
#: do-not-reprocess check (``crds.hst.locate.dnr_check``) reads DETECTOR and CCDGAIN on a failed match.
_ALWAYS = ("INSTRUME", "DETECTOR", "CCDGAIN")
#: rmap header fields that name the file rather than say how it matches.
_IDENTITY_FIELDS = {"name", "derived_from", "sha1sum"}
#: What a lookup result is shown as when there is no file.
NOT_FOUND = "NOT FOUND"
OMITTED = "-"
_PLAIN_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PLAIN_TIME = re.compile(r"^\d{2}:\d{2}:\d{2}$")
_EXPOSURE_DIGITS = tuple("0123456789")
#: The archive kind of raw files (INGEST_SCI archives each file with its suffix as kind).


@dataclass(frozen=True)
class Change:
    """One reference type whose best reference differs between the two contexts."""

    reftype: str
    old: str
    new: str
    #: Why a lookup found nothing (empty when both found a file or N/A).
    reason: str = ""


@dataclass(frozen=True)
class Affected:
    """An archived exposure whose best references change."""

    dataset: str
    #: The association whose DAG reprocesses it (the exposure itself for a singleton).
    unit: str
    instrument: str
    version: int
    old_context: str
    changes: tuple[Change, ...]

    @property
    def types(self) -> list[str]:
        return [c.reftype for c in self.changes]

    def as_dict(self) -> dict:
        return {**asdict(self), "changes": [asdict(c) for c in self.changes]}


@dataclass
class Selection:
    """The outcome of :func:`select_affected`: what changed, what is affected, what could not be judged."""

    new_context: str
    #: Old context -> instrument -> reference types whose rules differ from the new context.
    changed_types: dict[str, dict[str, list[str]]]
    #: Exposures read from the catalogue (those of the instruments whose rules differ).
    considered: int = 0
    affected: list[Affected] = field(default_factory=list)
    #: Reason -> exposures that could not be judged (no context catalogued, context not in the cache).
    skipped: dict[str, list[str]] = field(default_factory=dict)
    #: Distinct (old, new) lookup pairs computed, and type checks spared by the USEAFTER test.
    lookups: int = 0
    spared: int = 0
    seconds: float = 0.0

    @property
    def units(self) -> dict[str, list[Affected]]:
        """Affected exposures per association (or singleton), in name order."""
        out: dict[str, list[Affected]] = defaultdict(list)
        for a in self.affected:
            out[a.unit].append(a)
        return dict(sorted(out.items()))

    def as_dict(self) -> dict:
        return {"new_context": self.new_context, "changed_types": self.changed_types,
                "considered": self.considered, "affected": [a.as_dict() for a in self.affected],
                "units": sorted(self.units), "skipped": self.skipped, "lookups": self.lookups,
                "spared": self.spared, "seconds": round(self.seconds, 3)}


# -- the rules of one changed type ------------------------------------------------------------------
def _rmap(ctx: refs.RefContext, instrument: str, reftype: str) -> Any | None:
    """The loaded rmap of a type, or None where the context has no rules for it (absent or N/A)."""
    if instrument not in ctx.instruments:
        return None
    imap = ctx.pmap.get_imap(instrument)
    chosen = imap.selections.get(reftype, None)
    return chosen if hasattr(chosen, "selector") else None


def _defines(ctx: refs.RefContext, instrument: str, reftype: str) -> bool:
    return instrument in ctx.instruments and reftype in ctx.pmap.get_imap(instrument).selections


def _useafter_rows(rmap: Any) -> set[tuple] | None:
    """{(match key, USEAFTER, file)} of a two-level Match -> UseAfter rmap (what HST rmaps are);
    None for any other structure, which is then judged without the date shortcuts."""
    from crds.core import selectors

    top = rmap.selector
    if type(top) is not selectors.MatchSelector:
        return None
    rows = set()
    for key, (_matchers, choice) in top._match_selections.items():
        if type(choice) is not selectors.UseAfterSelector:
            return None
        rows.update((key, useafter, ref) for useafter, ref in choice._selections)
    return rows


def _date_keys(rmap: Any) -> tuple[str, ...] | None:
    """The header keywords of an HST rmap's USEAFTER dimension (``DATE-OBS``, ``TIME-OBS``)."""
    parkey = tuple(rmap.parkey)
    return tuple(parkey[-1]) if len(parkey) == 2 and parkey[-1] else None


def _has_hooks(rmap: Any) -> bool:
    return any(rmap.get_hook(name, None) is not None for name in ("precondition_header", "fallback_header"))


def _mentions(rmap: Any, keys: Iterable[str]) -> bool:
    """Whether a relevance expression reads one of ``keys`` (then they matter beyond USEAFTER)."""
    header = dict(rmap.header)
    exprs = [str(header.get("rmap_relevance", "")), str(header.get("rmap_omit", "")),
             *map(str, dict(header.get("parkey_relevance", {}) or {}).values())]
    return any(k.upper() in e.upper() for k in keys for e in exprs)


@dataclass
class TypePlan:
    """How one changed type is judged for the exposures of one (old context, instrument) group."""

    reftype: str
    #: Header keywords (besides the date) the type's result depends on.
    keys: tuple[str, ...]
    date_keys: tuple[str, ...]
    #: Sorted USEAFTER dates of both rule sets: exposures between the same two share a result.
    #: None: key on the exact date (rules with hooks, or of another shape).
    breakpoints: list[str] | None
    #: Exposures observed before this keep their reference (None: any may change).
    since: str | None
    #: Whether the old / new context defines the type at all (crds reports nothing for it if not).
    defined: tuple[bool, bool] = (True, True)
    memo: dict[tuple, tuple[str, str, str]] = field(default_factory=dict)


def plan_type(old: refs.RefContext, new: refs.RefContext, instrument: str, reftype: str) -> TypePlan:
    defined = (_defines(old, instrument, reftype), _defines(new, instrument, reftype))
    rules = [r for r in (_rmap(old, instrument, reftype), _rmap(new, instrument, reftype)) if r is not None]
    dates = {_date_keys(r) for r in rules}
    date_keys = dates.pop() if len(dates) == 1 else None
    keys = {*_ALWAYS, *(k.upper() for r in rules for k in r.get_required_parkeys())}
    if date_keys is None:  # no common USEAFTER dimension: the exact date is part of the key
        return TypePlan(reftype, tuple(sorted(keys)), (), None, None, defined)
    keys -= set(date_keys)
    rows = [_useafter_rows(r) for r in rules]
    shaped = all(r is not None for r in rows)
    exact = not shaped or any(_has_hooks(r) or _mentions(r, date_keys) for r in rules)
    breakpoints = None if exact else sorted({row[1] for rs in rows for row in rs})
    since = None
    if shaped and len(rules) == 2:
        old_r, new_r = rules
        same_shape = ({k: v for k, v in dict(old_r.header).items() if k not in _IDENTITY_FIELDS}
                      == {k: v for k, v in dict(new_r.header).items() if k not in _IDENTITY_FIELDS})
        differing = rows[0] ^ rows[1]
        if same_shape and differing:
            since = min(row[1] for row in differing)
    return TypePlan(reftype, tuple(sorted(keys)), date_keys, breakpoints, since, defined)


def observation_date(params: dict[str, Any], date_keys: tuple[str, ...]) -> str | None:
    """The observation time as crds compares it with USEAFTER (``YYYY-MM-DD HH:MM:SS``), or None."""
    values = [params.get(k) for k in date_keys]
    if any(not isinstance(v, str) or not v.strip() for v in values):
        return None
    parts = [v.strip() for v in values]
    if len(parts) == 2 and _PLAIN_DATE.match(parts[0]) and _PLAIN_TIME.match(parts[1]):
        return f"{parts[0]} {parts[1]}"  # what crds's reformat_date returns for the usual form
    from crds.core import timestamp

    try:
        return str(timestamp.reformat_date(" ".join(parts)))
    except Exception:  # crds will report the bad date itself when it looks the dataset up
        return None


def _value(ctx: refs.RefContext, params: dict[str, Any], reftype: str) -> tuple[str, str]:
    """(shown value, failure reason) of one type looked up under ``ctx``."""
    try:
        result = ctx.lookup(params, [reftype])
    except OwlError as exc:  # no INSTRUME, or an instrument the context lacks: nothing can be assigned
        return NOT_FOUND, exc.line()
    if reftype in result.failures:
        return NOT_FOUND, result.failures[reftype]
    return result.refs.get(reftype, OMITTED), ""


# -- the catalogue ----------------------------------------------------------------------------------
def _catalogue(site: Site):
    """The site database's engine, with the catalogue tables present (an archive may be empty yet)."""
    engine = engine_for(site.database_url, site.database.busy_timeout)
    Base.metadata.create_all(engine, tables=[ArchiveVersion.__table__, ArchiveFile.__table__])
    return engine


def _scope(stmt, *, instruments: list[str] | None, since: str | None):
    """Restrict a catalogue query to the parameter version of each exposure (not association) in scope."""
    v = ArchiveVersion
    chosen = parameter_versions()
    stmt = stmt.join(chosen, and_(v.id == chosen.c.vid, chosen.c.rn == 1))
    stmt = stmt.where(func.substr(v.dataset, 9, 1).not_in(_EXPOSURE_DIGITS), v.instrument.is_not(None))
    if instruments:
        stmt = stmt.where(func.upper(v.instrument).in_([i.upper() for i in instruments]))
    if since:
        stmt = stmt.where(v.date_obs >= since)
    return stmt


def parameter_version(site: Site, dataset: str) -> tuple[int, str | None] | None:
    """(version, CRDS context) of the version a selection reads for ``dataset``; None if it has none."""
    v = ArchiveVersion
    chosen = parameter_versions()
    stmt = (select(v.version, v.crds_context).join(chosen, and_(v.id == chosen.c.vid, chosen.c.rn == 1))
            .where(v.dataset == dataset))
    with _catalogue(site).connect() as conn:
        row = conn.execute(stmt).first()
    return None if row is None else (row[0], row[1])


def catalogue_groups(site: Site, *, instruments: list[str] | None = None,
                     since: str | None = None) -> dict[tuple[str | None, str], int]:
    """{(CRDS context or None, INSTRUME): exposures} over the parameter version of every archived exposure."""
    v = ArchiveVersion
    engine = _catalogue(site)
    stmt = _scope(select(v.crds_context, func.upper(v.instrument), func.count()),
                  instruments=instruments, since=since).group_by(v.crds_context, func.upper(v.instrument))
    with engine.connect() as conn:
        return {(ctx, inst): n for ctx, inst, n in conn.execute(stmt)}


def catalogue_rows(site: Site, instrument: str, context: str | None, keys: Iterable[str], *,
                   any_context: bool = False, since: str | None = None) -> Iterator[tuple[str, int, str | None,
                                                                                           dict[str, Any]]]:
    """(dataset, version, association, {keyword: value}) of the parameter version of each exposure of
    ``instrument`` processed with ``context`` (any, with ``any_context``): only ``keys`` are read
    from each catalogued header, in SQL."""
    v = ArchiveVersion
    keys = list(dict.fromkeys(keys))
    engine = _catalogue(site)
    stmt = _scope(select(v.dataset, v.version, v.association, *[v.header[k] for k in keys]),
                  instruments=[instrument], since=since)
    if not any_context:
        stmt = stmt.where(v.crds_context.is_(None) if context is None else v.crds_context == context)
    with engine.connect() as conn:
        for row in conn.execute(stmt.order_by(v.dataset)).yield_per(5000):
            yield row[0], row[1], row[2], {k: val for k, val in zip(keys, row[3:], strict=True) if val is not None}


# -- the selection ----------------------------------------------------------------------------------
def load_new_context(site: Site, new_context: str) -> refs.RefContext:
    cache = refs.cache_root(site)
    return refs.load_context(cache, new_context, site_mode=site.crds.mode, instruments=[])


def select_affected(site: Site, new_context: str, *, old_context: str | None = None,
                    instruments: list[str] | None = None, since: str | None = None,
                    progress: Callable[[int, int], None] | None = None) -> Selection:
    """Every archived exposure whose best references differ between its old context and ``new_context``.

    ``old_context`` replaces each exposure's catalogued ``CRDS_CTX``; ``instruments`` and ``since``
    (an ISO date, compared with the catalogued observation date) narrow the scope. ``progress(done,
    total)`` is called as exposures are judged.
    """
    started = time.perf_counter()
    cache = refs.cache_root(site)
    new = load_new_context(site, new_context)
    if old_context is not None:
        refs.load_context(cache, old_context, site_mode=site.crds.mode, instruments=[])
    wanted = [i.upper() for i in instruments] if instruments else None
    groups = catalogue_groups(site, instruments=wanted, since=since)
    by_context: dict[str | None, dict[str, int]] = defaultdict(dict)
    for (ctx_name, inst), n in groups.items():
        key = old_context if old_context is not None else ctx_name
        by_context[key][inst] = by_context[key].get(inst, 0) + n
    selection = Selection(new.name, {})
    work: list[tuple[refs.RefContext, str, list[str], int]] = []
    for ctx_name, counts in sorted(by_context.items(), key=lambda kv: kv[0] or ""):
        if ctx_name is None:
            selection.skipped["no CRDS context catalogued (never calibrated): give --old-context"] = \
                _names(site, None, counts, since)
            continue
        try:
            old = refs.load_context(cache, ctx_name, site_mode=site.crds.mode, instruments=[])
        except ConfigError as exc:
            selection.skipped[f"old context {ctx_name} unusable: {exc.line()}"] = _names(site, ctx_name, counts, since)
            continue
        changed = {i: t for i, t in refs.changed_types(old, new).items() if wanted is None or i in wanted}
        selection.changed_types[old.name] = changed
        work += [(old, inst, changed[inst], n) for inst, n in sorted(counts.items()) if inst in changed]
    total = sum(n for *_, n in work)
    for old, inst, types, _n in work:
        plans = [plan_type(old, new, inst, t) for t in types]
        keys = sorted({k for p in plans for k in (*p.keys, *p.date_keys)})
        rows = catalogue_rows(site, inst, old.name, keys, any_context=old_context is not None, since=since)
        for dataset, version, association, params in rows:
            changes = _judge(params, plans, old, new, selection)
            selection.considered += 1
            if changes:
                selection.affected.append(Affected(dataset, association or dataset, inst, version, old.name,
                                                   tuple(changes)))
            if progress is not None and selection.considered % 1000 == 0:
                progress(selection.considered, total)
    if progress is not None:
        progress(selection.considered, total)
    selection.affected.sort(key=lambda a: (a.unit, a.dataset))
    selection.seconds = time.perf_counter() - started
    return selection


def _judge(params: dict[str, Any], plans: list[TypePlan], old: refs.RefContext, new: refs.RefContext,
           selection: Selection) -> list[Change]:
    """The changed types of one exposure, looking up only what its keys have not settled already."""
    changes = []
    for plan in plans:
        date = observation_date(params, plan.date_keys) if plan.date_keys else None
        if plan.since is not None and date is not None and date < plan.since:
            selection.spared += 1
            continue
        if plan.breakpoints is not None and date is not None:
            when: Any = bisect.bisect_right(plan.breakpoints, date)
        else:
            when = tuple(params.get(k) for k in plan.date_keys)
        key = (tuple(params.get(k) for k in plan.keys), when)
        outcome = plan.memo.get(key)
        if outcome is None:
            before, why_before = _value(old, params, plan.reftype) if plan.defined[0] else (OMITTED, "")
            after, why_after = _value(new, params, plan.reftype) if plan.defined[1] else (OMITTED, "")
            outcome = plan.memo[key] = (before, after, why_after or why_before)
            selection.lookups += 1
        before, after, why = outcome
        if before != after:
            changes.append(Change(plan.reftype, before, after, why))
    return changes


def _names(site: Site, context: str | None, counts: dict[str, int], since: str | None) -> list[str]:
    """Exposure names of the skipped groups (for the report)."""
    out: list[str] = []
    for inst in sorted(counts):
        out += [d for d, _v, _a, _p in catalogue_rows(site, inst, context, [], since=since)]
    return out
