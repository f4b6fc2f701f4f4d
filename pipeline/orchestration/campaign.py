"""Reprocessing campaigns: a named, throttled, resumable run of ``reprocess`` DAGs over a selection.

A campaign is created once from a :class:`pipeline.orchestration.reprocess.Selection` and lives in the site
database: table ``campaign`` (its contexts and scope) and ``campaign_dataset`` (one row per
association or singleton to reprocess, with the affected exposures and what changed for them).
Each row moves ``pending`` -> ``submitted`` -> ``done`` | ``failed``; ``rank`` orders the pending
ones (``owl request`` moves a dataset to the front).

Exactly once: a dataset's DAG is the controller submission keyed ``reprocess:<campaign>:<dataset>``
(unique in ``owl_submission``), so a rerun after a crash, even between submitting and recording it
here, finds the submission instead of making a second one. A rerun of the campaign continues it:
finished rows stay finished, submitted ones are followed (an orphaned local DAG resumes where the
OSF says it stopped), pending ones are submitted as the throttle allows.

Done means more than "the DAG finished": every affected exposure must have a raw version in the
archive newer than the one selected, calibrated with the campaign's context; otherwise the row
fails with the reason.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from pipeline.archive.store import Archive
from pipeline.core.config import Site
from pipeline.core.db import Base, create_tables, engine_for
from pipeline.core.errors import ConfigError, OwlError
from pipeline.core.exitcodes import ExitCode
from pipeline.core.names import parse_dataset
from pipeline.core.osf import Blackboard
from pipeline.orchestration.controller import ACTIVE, Controller, Submission
from pipeline.orchestration.reprocess import Selection, parameter_version
from pipeline.science import refs

WORKFLOW = "reprocess"
STATES = ("pending", "submitted", "done", "failed")
#: Seconds between looks at the database while DAGs run (local) or between DAGMan polls (condor).
REFRESH_LOCAL, REFRESH_CONDOR = 1.0, 15.0


class CampaignError(OwlError):
    code = ExitCode.USAGE


class CampaignRow(Base):
    __tablename__ = "campaign"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    new_context: Mapped[str] = mapped_column(String(32))
    #: None: each exposure against the context it was processed with (its catalogued CRDS_CTX).
    old_context: Mapped[str | None] = mapped_column(String(32), nullable=True)
    instruments: Mapped[str] = mapped_column(String(128), default="")
    since: Mapped[str | None] = mapped_column(String(32), nullable=True)
    workflow: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    created: Mapped[float] = mapped_column(Float)
    updated: Mapped[float] = mapped_column(Float)


class CampaignDatasetRow(Base):
    __tablename__ = "campaign_dataset"
    __table_args__ = (UniqueConstraint("campaign_id", "dataset"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), index=True)
    dataset: Mapped[str] = mapped_column(String(9), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    requested: Mapped[float | None] = mapped_column(Float, nullable=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    submission: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    #: The affected exposures: [{dataset, version, old_context, changes: [{reftype, old, new, reason}]}].
    exposures: Mapped[list] = mapped_column(JSON)
    updated: Mapped[float] = mapped_column(Float)


_TABLES = [CampaignRow.__table__, CampaignDatasetRow.__table__]


@dataclass(frozen=True)
class Campaign:
    id: int
    name: str
    new_context: str
    old_context: str | None
    instruments: list[str]
    since: str | None
    workflow: str
    state: str
    created: float

    def scope(self) -> dict[str, Any]:
        """What decides the selection: a rerun must ask for the same."""
        return {"old_context": self.old_context, "instruments": self.instruments, "since": self.since}


@dataclass(frozen=True)
class CampaignDataset:
    dataset: str
    rank: int
    requested: float | None
    state: str
    submission: int | None
    message: str
    exposures: list[dict]

    @property
    def types(self) -> list[str]:
        return sorted({c["reftype"] for e in self.exposures for c in e["changes"]})


@dataclass
class Report:
    """Where a campaign stands: what ``owl reprocess`` prints at the end."""

    name: str
    new_context: str
    state: str
    selected: int
    exposures: int
    counts: dict[str, int]
    in_flight: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _campaign(row) -> Campaign:
    return Campaign(row.id, row.name, row.new_context, row.old_context,
                    [i for i in row.instruments.split(",") if i], row.since, row.workflow, row.state, row.created)


def _entry(row) -> CampaignDataset:
    return CampaignDataset(row.dataset, row.rank, row.requested, row.state, row.submission, row.message,
                           row.exposures or [])


def default_name(new_context: str) -> str:
    return f"reprocess-{new_context.removesuffix('.pmap')}"


class CampaignStore:
    """The campaign tables of one site."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.engine = engine_for(site.database_url, site.database.busy_timeout)
        create_tables(self.engine, _TABLES)

    def find(self, name: str) -> Campaign | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(CampaignRow).where(CampaignRow.name == name)).first()
        return None if row is None else _campaign(row)

    def all(self) -> list[Campaign]:
        with self.engine.connect() as conn:
            return [_campaign(r) for r in conn.execute(select(CampaignRow).order_by(CampaignRow.id))]

    def create(self, name: str, selection: Selection, *, old_context: str | None, instruments: list[str],
               since: str | None, workflow: str = WORKFLOW) -> Campaign:
        """Record a campaign and its datasets in one transaction (all or nothing)."""
        now = time.time()
        units = selection.units
        try:
            with self.engine.begin() as conn:
                cid = conn.execute(insert(CampaignRow).values(
                    name=name, new_context=selection.new_context, old_context=old_context,
                    instruments=",".join(instruments), since=since, workflow=workflow,
                    state="running" if units else "finished", created=now, updated=now)).inserted_primary_key[0]
                if units:
                    conn.execute(insert(CampaignDatasetRow), [
                        {"campaign_id": cid, "dataset": unit, "rank": rank, "requested": None, "state": "pending",
                         "submission": None, "message": "", "updated": now,
                         "exposures": [{"dataset": a.dataset, "version": a.version, "old_context": a.old_context,
                                        "changes": [asdict(c) for c in a.changes]} for a in affected]}
                        for rank, (unit, affected) in enumerate(units.items())])
        except IntegrityError:
            raise CampaignError(f"campaign {name!r} already exists") from None
        found = self.find(name)
        assert found is not None
        return found

    def datasets(self, campaign: Campaign, states: tuple[str, ...] | None = None) -> list[CampaignDataset]:
        """Rows in campaign order (requested first, then selection order)."""
        stmt = select(CampaignDatasetRow).where(CampaignDatasetRow.campaign_id == campaign.id)
        if states is not None:
            stmt = stmt.where(CampaignDatasetRow.state.in_(states))
        with self.engine.connect() as conn:
            return [_entry(r) for r in conn.execute(stmt.order_by(CampaignDatasetRow.rank, CampaignDatasetRow.id))]

    def counts(self, campaign: Campaign) -> dict[str, int]:
        stmt = (select(CampaignDatasetRow.state, func.count()).where(CampaignDatasetRow.campaign_id == campaign.id)
                .group_by(CampaignDatasetRow.state))
        with self.engine.connect() as conn:
            found = dict(conn.execute(stmt).all())
        return {s: found.get(s, 0) for s in STATES}

    def set(self, campaign: Campaign, dataset: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(CampaignDatasetRow)
                         .where(CampaignDatasetRow.campaign_id == campaign.id, CampaignDatasetRow.dataset == dataset)
                         .values(**values, updated=time.time()))

    def set_state(self, campaign: Campaign, state: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(CampaignRow).where(CampaignRow.id == campaign.id)
                         .values(state=state, updated=time.time()))

    def containing(self, dataset: str) -> list[tuple[Campaign, CampaignDataset]]:
        """Campaign rows that reprocess ``dataset`` (the row itself, or one with it as an affected exposure)."""
        name = parse_dataset(dataset).name
        out = []
        with self.engine.connect() as conn:
            campaigns = {r.id: _campaign(r) for r in conn.execute(select(CampaignRow))}
            for row in conn.execute(select(CampaignDatasetRow).order_by(CampaignDatasetRow.id)):
                if row.dataset == name or any(e["dataset"] == name for e in row.exposures or []):
                    out.append((campaigns[row.campaign_id], _entry(row)))
        return out

    def to_front(self, campaign: Campaign, dataset: str) -> None:
        """Give a row the campaign's first rank (and remember it was requested)."""
        with self.engine.begin() as conn:
            first = conn.execute(select(func.min(CampaignDatasetRow.rank))
                                 .where(CampaignDatasetRow.campaign_id == campaign.id)).scalar_one()
            conn.execute(update(CampaignDatasetRow)
                         .where(CampaignDatasetRow.campaign_id == campaign.id, CampaignDatasetRow.dataset == dataset)
                         .values(rank=first - 1, requested=time.time(), updated=time.time()))


def check_context(site: Site, new_context: str) -> None:
    """Refuse to start when the RF stage would calibrate with another context than the campaign's.

    RF takes the site's ``crds.context``, else ``$CRDS_CONTEXT``, else the cache's operational context
    (what a reference delivery makes the new one); a campaign pins its context by checking that.
    """
    cache = refs.cache_root(site)
    effective = refs.resolve_context(cache, site.crds.context or None)
    if effective != new_context:
        where = (f"crds.context in {site.config_file}" if site.crds.context
                 else "$CRDS_CONTEXT" if os.environ.get("CRDS_CONTEXT") else
                 f"the operational context of {cache}")
        raise ConfigError(f"RF would calibrate with {effective} ({where}), not the campaign's {new_context}: "
                          f"set crds.context = \"{new_context}\" in the site configuration, or make "
                          f"{new_context} the cache's operational context")


class CampaignRun:
    """Drives one campaign to its end: at most ``max_in_flight`` DAGs at a time, in campaign order."""

    def __init__(self, site: Site, campaign: Campaign, *, max_in_flight: int | None = None,
                 executor: str | None = None, workers: int | None = None,
                 say: Callable[[str], None] | None = None, listener=None) -> None:
        self.site = site
        self.campaign = campaign
        self.store = CampaignStore(site)
        self.max_in_flight = max_in_flight or site.throttles.max_dags_in_flight
        self.ctl = Controller(site, executor=executor, workers=workers, listener=listener)
        self.say = say or (lambda text: None)
        self._key_prefix = f"reprocess:{campaign.name}:"

    @property
    def kind(self) -> str:
        return self.ctl.kind

    # -- one pass ------------------------------------------------------------------------------
    def refresh(self, *, recheck_failed: bool = False) -> None:
        """Fold finished submissions into the campaign rows; apply raised priorities to running DAGs."""
        states = ("submitted", "failed") if recheck_failed else ("submitted",)
        for row in self.store.datasets(self.campaign, states):
            if row.state == "failed":
                if row.submission is not None and self.verify(row) is None:
                    self.store.set(self.campaign, row.dataset, state="done", message="done after a retry")
                    self.say(f"[green]done[/green]    {row.dataset} (after a retry)")
                continue
            sub = self.ctl.get(row.submission) if row.submission is not None else None
            if sub is None:
                continue
            if sub.state == "done":
                problem = self.verify(row)
                if problem is None:
                    self.store.set(self.campaign, row.dataset, state="done", message=sub.message)
                    self.say(f"[green]done[/green]    {row.dataset}: {len(row.exposures)} exposure(s) now with "
                             f"{self.campaign.new_context} ({', '.join(t.upper() for t in row.types)})")
                else:
                    self._fail(row.dataset, problem)
            elif sub.state in ("failed", "removed"):
                self._fail(row.dataset, sub.message or f"submission {sub.id} {sub.state}")
            elif self.kind == "local":
                for run in self.ctl.local.dags:
                    if run.submission == sub.id and run.finished is None:
                        run.priority = sub.priority

    def _fail(self, dataset: str, why: str) -> None:
        self.store.set(self.campaign, dataset, state="failed", message=why)
        self.say(f"[bold red]FAILED[/bold red]  {dataset}: {why}")

    def verify(self, row: CampaignDataset) -> str | None:
        """Why a finished DAG did not reprocess its exposures as the campaign wants (None: it did)."""
        for exposure in row.exposures:
            name = exposure["dataset"]
            found = parameter_version(self.site, name)
            if found is None or found[0] <= exposure["version"]:
                return f"{name}: no new raw version in the archive (newest is {found[0] if found else 'none'})"
            if found[1] != self.campaign.new_context:
                return f"{name}: its new version {found[0]} was calibrated with {found[1]}, " \
                       f"not {self.campaign.new_context}"
        return None

    def in_flight(self) -> list[CampaignDataset]:
        return self.store.datasets(self.campaign, ("submitted",))

    def top_up(self) -> int:
        """Submit pending rows, in campaign order, until ``max_in_flight`` are submitted; return how many."""
        slots = self.max_in_flight - len(self.in_flight())
        started = 0
        for row in self.store.datasets(self.campaign, ("pending",)):
            if started >= slots:
                break
            if self._submit(row):
                started += 1
        return started

    def _submit(self, row: CampaignDataset) -> bool:
        key = self._key_prefix + row.dataset
        sub = self._submission(row.dataset, key)
        if sub is None:
            busy = self.ctl.submissions(row.dataset, ACTIVE)
            if busy:
                message = f"waiting for submission {busy[-1].id} ({busy[-1].workflow}, {busy[-1].state})"
                if row.message != message:
                    self.store.set(self.campaign, row.dataset, message=message)
                return False
            try:
                self._ensure_osf(row)
                priority = (self.site.priorities.requested if row.requested is not None
                            else self.ctl.workflow(self.campaign.workflow).priority(self.site))
                sub = self.ctl.submit(row.dataset, self.campaign.workflow, key=key, priority=priority, fresh=True,
                                      campaign=self.campaign.name) or self._submission(row.dataset, key)
            except OwlError as exc:
                self._fail(row.dataset, exc.line())
                return False
        assert sub is not None
        self.store.set(self.campaign, row.dataset, state="submitted", submission=sub.id,
                       message=f"submission {sub.id}, priority {sub.priority}")
        self.say(f"submit  {row.dataset}: submission {sub.id} ({', '.join(t.upper() for t in row.types)} changed "
                 f"for {', '.join(e['dataset'] for e in row.exposures)})")
        return True

    def _submission(self, dataset: str, key: str) -> Submission | None:
        return next((s for s in self.ctl.submissions(dataset) if s.key == key), None)

    def _ensure_osf(self, row: CampaignDataset) -> None:
        """OSF rows for an association known only to the archive (its blackboard rows were deleted)."""
        bb = self.ctl.bb
        if bb.find(row.dataset) is not None:
            return
        bb.create(row.dataset, who=f"campaign {self.campaign.name}")
        if parse_dataset(row.dataset).is_association:
            members = sorted({e.dataset for e in Archive(self.site).query(association=row.dataset, kind="pod")
                              if parse_dataset(e.dataset).is_exposure})
            for member in members:
                bb.create(member, parent=row.dataset, who=f"campaign {self.campaign.name}")

    # -- the loop ------------------------------------------------------------------------------
    def run(self, *, stop: Callable[[], bool] | None = None,
            progress: Callable[[Report], None] | None = None) -> Report:
        """Submit, follow and record until every row is done or failed (or nothing can move here)."""
        check_context(self.site, self.campaign.new_context)
        if self.kind == "condor":
            from pipeline.orchestration.executors.condor import schedd

            schedd()
        self.refresh(recheck_failed=True)
        every = REFRESH_LOCAL if self.kind == "local" else REFRESH_CONDOR
        try:
            while True:
                if stop is not None and stop():
                    self.ctl.stop()  # running nodes end x or w; a rerun resumes them
                    break
                self.refresh()
                self.top_up()
                self.ctl.dispatch()
                if self.kind == "local":
                    self.ctl.local.step()  # closes DAGs that had nothing left to run
                else:
                    self.ctl.condor().follow_all(self.ctl)
                self.refresh()
                report = self.report()
                if progress is not None:
                    progress(report)
                if not report.counts["pending"] and not report.counts["submitted"]:
                    break
                if self.kind == "local" and not self.ctl.local.busy:
                    if self.top_up():  # slots freed by DAGs that just ended
                        continue
                    break  # what is left is held, or waits for DAGs another owl process runs: rerun later
                self._wait(every)
        except KeyboardInterrupt:
            self.ctl.stop()
            raise
        counts = self.store.counts(self.campaign)
        if not counts["pending"] and not counts["submitted"]:
            self.store.set_state(self.campaign, "finished")
        return self.report()

    def _wait(self, seconds: float) -> None:
        """Let the local executor work for ``seconds`` (or sleep, for HTCondor), returning early when a DAG ends."""
        deadline = time.monotonic() + seconds
        if self.kind != "local":
            time.sleep(seconds)
            return
        local = self.ctl.local
        finished = sum(d.finished is not None for d in local.dags)
        while time.monotonic() < deadline and local.busy:
            local.step()
            if sum(d.finished is not None for d in local.dags) != finished:
                return
            time.sleep(local.poll)

    def report(self) -> Report:
        rows = self.store.datasets(self.campaign)
        counts = {s: 0 for s in STATES}
        for r in rows:
            counts[r.state] += 1
        campaign = self.store.find(self.campaign.name) or self.campaign
        return Report(self.campaign.name, self.campaign.new_context, campaign.state, len(rows),
                      sum(len(r.exposures) for r in rows), counts,
                      in_flight=[r.dataset for r in rows if r.state == "submitted"],
                      done=[r.dataset for r in rows if r.state == "done"],
                      failed=[(r.dataset, r.message) for r in rows if r.state == "failed"])


# -- priority requests --------------------------------------------------------------------------
def request(site: Site, dataset: str) -> list[str]:
    """``owl request``: move ``dataset`` to the front of its campaign(s), or raise its DAG's priority.

    Returns one line per action taken. A dataset that no campaign or submission waits for gets the
    requested priority on its OSF row, which orders what the watcher submits next.
    """
    ds = parse_dataset(dataset)
    priority = site.priorities.requested
    bb = Blackboard(site.database_url, site.database.busy_timeout)
    ctl = Controller(site)
    lines: list[str] = []
    handled: set[int] = set()
    for campaign, row in CampaignStore(site).containing(ds.name):
        if row.state == "pending":
            store = CampaignStore(site)
            store.to_front(campaign, row.dataset)
            waiting = len(store.datasets(campaign, ("pending",)))
            lines.append(f"{row.dataset}: moved to the front of campaign {campaign.name} (next of {waiting} "
                         f"pending); it is submitted at priority {priority}")
        elif row.state == "submitted" and row.submission is not None:
            lines.append(_raise(site, ctl, ctl.get(row.submission), priority))
            handled.add(row.submission)
        else:
            lines.append(f"{row.dataset}: already {row.state} in campaign {campaign.name}"
                         + (f" ({row.message})" if row.message else ""))
    entry = bb.find(ds.name)
    top = entry.parent if entry is not None and entry.parent else ds.name
    for sub in ctl.submissions(top, ACTIVE):
        if sub.id not in handled:
            lines.append(_raise(site, ctl, sub, priority))
            handled.add(sub.id)
    if not lines:
        if entry is None:
            raise CampaignError(f"{ds.name} is in no campaign, has no submission and is not on the OSF blackboard")
        bb.set_priority(top, priority, members=True)
        lines.append(f"{top}: no DAG queued; OSF priority raised to {priority} (the watcher submits it first)")
    return lines


def _raise(site: Site, ctl: Controller, sub: Submission, priority: int) -> str:
    """Raise one submission's priority: a DAG not started yet is written with it, a local one running
    under a campaign picks it up within a second, an HTCondor one has its idle node jobs edited."""
    if sub.priority >= priority:
        return f"{sub.dataset}: submission {sub.id} already runs at priority {sub.priority}"
    ctl.update_submission(sub.id, priority=priority)
    ctl.bb.set_priority(sub.dataset, priority, members=True)
    where = {"new": "its DAG is written with it", "queued": "its DAG is written with it",
             "running": "the running local DAG starts its next nodes first",
             "held": "it applies when the DAG is released"}.get(sub.state, "")
    if sub.executor == "condor" and sub.state == "submitted" and sub.cluster is not None:
        where = _raise_condor(ctl, sub.cluster, priority)
    return f"{sub.dataset}: submission {sub.id} priority {sub.priority} -> {priority}" + (f"; {where}" if where else "")


def _raise_condor(ctl: Controller, cluster: int, priority: int) -> str:
    import htcondor2

    try:
        edited = ctl.condor().raise_idle_priority(cluster, priority)
    except htcondor2.HTCondorException as exc:
        raise OwlError(f"HTCondor refused the priority change of DAG {cluster}: {exc}", code=ExitCode.CONFIG) \
            from None
    return f"{edited} idle node job(s) of DAGMan job {cluster} raised (nodes submitted later keep the DAG's priority)"
