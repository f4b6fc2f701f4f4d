"""The receiving station: accept one downlink (a DAN and its pods) into the site.

Receipt is a small journal, safe to repeat and to resume after a crash:

1. parse and validate the DAN (a bad DAN is quarantined; nothing else happens);
2. a DAN whose downlink is already recorded as received is a duplicate: identical copies are
   quarantined as such and nothing is registered twice; a different DAN reusing the id is bad input;
3. every pod is checked (packet structure, CRC, sequence counts, APIDs, rootname, size, sha256)
   and moved to ``receipt/pods``, or quarantined with its reason; a pod already moved there by an
   interrupted run is re-verified instead;
4. exposures and associations are registered on the OSF (DR ``c`` or ``e``), idempotently;
5. the receipt record is written, then the DAN is moved to ``receipt/dans``: that move commits.

Nothing is deleted: every input file ends in ``receipt/`` or ``quarantine/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pipeline.core.config import Site
from pipeline.core.errors import BadInput
from pipeline.core.exitcodes import ExitCode
from pipeline.core.fsutil import atomic_write, file_lock, move_file, quarantine
from pipeline.core.names import parse_dataset
from pipeline.core.osf import Blackboard
from pipeline.core.trailer import Trailer
from pipeline.science.telemetry.dan import DAN_SUFFIX, DOWNLINK_ID_RE, AssociationEntry, Dan, PodEntry, parse_dan

COLUMN = "DR"


# -- where received things live ----------------------------------------------------------------
def pods_dir(site: Site) -> Path:
    return site.areas.receipt / "pods"


def dans_dir(site: Site) -> Path:
    return site.areas.receipt / "dans"


def associations_dir(site: Site) -> Path:
    return site.areas.receipt / "associations"


def received_pod(site: Site, dataset: str) -> Path:
    """Where an accepted exposure's pod lives (it may not exist: check)."""
    return pods_dir(site) / f"{parse_dataset(dataset).name}.pod"


#: Beside each accepted pod, ``<file>.sha256`` (``sha256sum`` format): the hash of the bytes receipt
#: checked whole (structure, every packet CRC, sequence counts, size, the DAN's hash).
CHECKED_SUFFIX = ".sha256"


def _record_checked(pod: Path, sha256: str) -> None:
    with atomic_write(pod.with_name(pod.name + CHECKED_SUFFIX), "w") as fh:
        fh.write(f"{sha256}  {pod.name}\n")


def checked_sha256(site: Site, dataset: str) -> str | None:
    """SHA-256 of the pod bytes receipt checked for an exposure, or None (not recorded, unreadable):
    INGEST skips the packet CRCs of bytes that still hash to it (see ``decode.scan_pod``)."""
    pod = received_pod(site, dataset)
    try:
        words = pod.with_name(pod.name + CHECKED_SUFFIX).read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        return None
    return words[0] if words and re.fullmatch(r"[0-9a-f]{64}", words[0]) else None


def association_record(site: Site, association: str) -> AssociationEntry | None:
    """The association as its DAN announced it (type and members), or None if never received."""
    path = associations_dir(site) / f"{parse_dataset(association).name}.json"
    if not path.exists():
        return None
    return AssociationEntry.from_json(path.read_text())


def receipt_log(site: Site) -> Trailer:
    """Site-wide log of receipts (OPUS line form): DAN-level events have no dataset trailer."""
    return Trailer(site.areas.logs / "dan_receipt.log")


# -- outcome -----------------------------------------------------------------------------------
@dataclass
class PodOutcome:
    dataset: str
    file: str
    status: str  # received | already-received | quarantined | missing
    message: str
    location: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("received", "already-received")


@dataclass
class ReceiptReport:
    downlink_id: str
    dan: str
    duplicate: bool = False
    pods: list[PodOutcome] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    already_registered: list[str] = field(default_factory=list)
    received_at: str = ""

    @property
    def failures(self) -> list[PodOutcome]:
        return [p for p in self.pods if not p.ok]

    def summary(self) -> str:
        if self.duplicate:
            return (f"downlink {self.downlink_id} was already received; duplicate DAN quarantined, "
                    f"nothing registered twice ({len(self.already_registered)} datasets already on the OSF)")
        good = len(self.pods) - len(self.failures)
        text = (f"downlink {self.downlink_id}: {good} of {len(self.pods)} pods accepted; "
                f"{len(self.registered)} datasets registered, {len(self.already_registered)} already registered")
        if self.failures:
            first = self.failures[0]
            text += f"; {len(self.failures)} failed, first: {first.message}"
        return text

    def as_dict(self) -> dict:
        return {**asdict(self), "summary": self.summary()}


# -- the station -------------------------------------------------------------------------------
def _receipt_lock(site: Site) -> contextlib.AbstractContextManager[None]:
    """One receipt at a time per site: pods of two downlinks never race for the same name."""
    return file_lock(site.areas.receipt / ".receipt.lock", site.database.busy_timeout, "another owl-dan-receipt")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def locate_dan(site: Site, argument: str) -> Path:
    """A DAN path, or a downlink id looked up in the inbox and then among received DANs."""
    path = Path(argument)
    if path.exists() or not DOWNLINK_ID_RE.fullmatch(argument):
        return path
    for folder in (site.areas.inbox, dans_dir(site)):
        candidate = folder / f"{argument}{DAN_SUFFIX}"
        if candidate.exists():
            return candidate
    return path


class ReceivingStation:
    """Receives downlinks into one site; ``who`` names the process in OSF history."""

    def __init__(self, site: Site, osf: Blackboard, who: str = "owl-dan-receipt") -> None:
        self.site = site
        self.osf = osf
        self.who = who
        self.log = receipt_log(site)

    # -- public --------------------------------------------------------------------------------
    def receive(self, dan_path: Path | str) -> ReceiptReport:
        """Receive one downlink and report per pod; a bad DAN raises :class:`BadInput` (quarantined).

        Pod failures do not raise: the rest of the downlink is registered and the report lists them.
        """
        dan_path = Path(dan_path)
        try:
            raw = dan_path.read_bytes()
        except FileNotFoundError:
            raise BadInput(f"DAN {dan_path} not found (give a DAN file or a downlink id)") from None
        with _receipt_lock(self.site):
            try:
                dan = parse_dan(raw, dan_path.name, dan_path)
            except BadInput as exc:
                self._quarantine(dan_path, exc.line())
                self.log.error(f"{self.who}: {exc.line()} (quarantined)")
                raise BadInput(exc.message) from None  # already quarantined: nothing more to move
            report = ReceiptReport(dan.downlink_id, dan_path.name,
                                   received_at=datetime.now(UTC).isoformat(timespec="seconds"))
            stored = dans_dir(self.site) / f"{dan.downlink_id}{DAN_SUFFIX}"
            if stored.exists():
                return self._repeat(dan, dan_path, raw, stored, report)
            self._receive_new(dan, dan_path, report)
        self.log.write("error" if report.failures else "info", f"{self.who}: {report.summary()}")
        return report

    # -- steps ---------------------------------------------------------------------------------
    def _repeat(self, dan: Dan, dan_path: Path, raw: bytes, stored: Path, report: ReceiptReport
                ) -> ReceiptReport:
        """A downlink already received: same notice -> say so and keep the copy; else bad input."""
        report.already_registered = [d for d in self._datasets(dan) if self.osf.find(d) is not None]
        if dan_path.resolve() == stored.resolve():
            report.duplicate = True
            return report
        if _sha256(stored.read_bytes()) != _sha256(raw):
            reason = (f"{dan_path.name}: downlink id {dan.downlink_id} was already received with a "
                      "different notice")
            self._quarantine_downlink(dan, dan_path, reason)
            self.log.error(f"{self.who}: {reason} (quarantined with its pods)")
            raise BadInput(reason)
        report.duplicate = True
        reason = f"duplicate of downlink {dan.downlink_id}, already received as {stored}"
        self._quarantine_downlink(dan, dan_path, reason)
        for ds in report.already_registered:
            Trailer(self.site.trailer_path(parse_dataset(ds))).warn(
                f"{self.who}: {reason}; not registered again")
        self.log.warn(f"{self.who}: {report.summary()}")
        return report

    def _receive_new(self, dan: Dan, dan_path: Path, report: ReceiptReport) -> None:
        for entry in dan.pods:
            report.pods.append(self._accept_pod(entry, dan_path.parent, dan.downlink_id))
        outcome = {p.dataset: p for p in report.pods}
        for asn in dan.associations:
            with atomic_write(associations_dir(self.site) / f"{asn.name}.json", "w") as fh:
                fh.write(asn.to_json())
        for entry in dan.pods:
            asn = dan.association_of(entry.dataset)
            self._register(entry.dataset, asn.name if asn else None, outcome[entry.dataset], report)
        for asn in dan.associations:
            self._register_association(asn, outcome, report)
        record = dans_dir(self.site) / f"{dan.downlink_id}.receipt.json"
        with atomic_write(record, "w") as fh:
            json.dump(report.as_dict(), fh, indent=2)
            fh.write("\n")
        move_file(dan_path, dans_dir(self.site)).rename(dans_dir(self.site) / f"{dan.downlink_id}{DAN_SUFFIX}")

    def _check(self, path: Path, entry: PodEntry) -> None:
        """Raise BadInput with the most specific reason first: structure, identity, size, checksum."""
        from pipeline.science.telemetry.decode import scan_pod  # numpy, astropy: once there is a pod to check

        data = path.read_bytes()
        scanned = scan_pod(data, entry.file)
        if scanned.header.rootname != entry.dataset:
            raise BadInput(f"{entry.file}: pod header rootname {scanned.header.rootname} does not match "
                           f"the DAN's dataset {entry.dataset}")
        if len(data) != entry.size:
            raise BadInput(f"{entry.file}: {len(data)} bytes on disk, DAN says {entry.size}")
        digest = _sha256(data)
        if digest != entry.sha256:
            raise BadInput(f"{entry.file}: sha256 mismatch: DAN says {entry.sha256[:16]}..., "
                           f"file has {digest[:16]}...")

    def _accept_pod(self, entry: PodEntry, inbox: Path, downlink_id: str) -> PodOutcome:
        incoming = inbox / entry.file
        kept = pods_dir(self.site) / entry.file
        if not incoming.exists():
            if kept.exists():  # moved by an interrupted earlier run of this downlink, or received before
                try:
                    self._check(kept, entry)
                except BadInput as exc:
                    return PodOutcome(entry.dataset, entry.file, "missing",
                                      f"{entry.file} is missing from {inbox} and the received copy "
                                      f"differs ({exc.message})")
                _record_checked(kept, entry.sha256)
                return PodOutcome(entry.dataset, entry.file, "already-received",
                                  f"{entry.file} already in {kept.parent}", str(kept))
            return PodOutcome(entry.dataset, entry.file, "missing",
                              f"{entry.file} named by DAN {downlink_id} is missing from {inbox}")
        try:
            self._check(incoming, entry)
        except BadInput as exc:
            moved = self._quarantine(incoming, exc.line())
            return PodOutcome(entry.dataset, entry.file, "quarantined", exc.line(), str(moved))
        if kept.exists():
            if _sha256(kept.read_bytes()) == entry.sha256:
                moved = self._quarantine(incoming, f"{entry.file}: identical copy already received at {kept}")
                return PodOutcome(entry.dataset, entry.file, "already-received",
                                  f"{entry.file} already received (duplicate copy quarantined)", str(kept))
            reason = f"{entry.file}: a different pod for {entry.dataset} was already received ({kept})"
            moved = self._quarantine(incoming, reason)
            return PodOutcome(entry.dataset, entry.file, "quarantined", reason, str(moved))
        moved = move_file(incoming, pods_dir(self.site))
        _record_checked(moved, entry.sha256)
        return PodOutcome(entry.dataset, entry.file, "received",
                          f"received {entry.file} ({entry.size} bytes, sha256 {entry.sha256[:16]}...) "
                          f"in downlink {downlink_id}", str(moved))

    def _register(self, dataset: str, parent: str | None, outcome: PodOutcome, report: ReceiptReport) -> None:
        ds = parse_dataset(dataset)
        if parent is not None and self.osf.create(parent, who=self.who):
            report.registered.append(parent)  # parent row first, so the member's move aggregates
        created = self.osf.create(ds, parent=parent, who=self.who)
        letter = self.osf.get(ds).letter(COLUMN)
        trailer = Trailer(self.site.trailer_path(ds))
        if outcome.ok and letter in "_wxe":
            self.osf.transition(ds, COLUMN, letter, "c", exit_code=0, who=self.who, message=outcome.message)
            trailer.info(f"{self.who}: {outcome.message}")
        elif not outcome.ok and letter in "_wx":
            self.osf.transition(ds, COLUMN, letter, "e", exit_code=int(ExitCode.BAD_INPUT), who=self.who,
                                message=outcome.message)
            trailer.error(f"{self.who}: {outcome.message}"
                          + (f" (quarantined to {outcome.location})" if outcome.location else ""))
        else:
            trailer.warn(f"{self.who}: {outcome.message}; OSF {COLUMN} stays '{letter}'")
        (report.registered if created else report.already_registered).append(ds.name)

    def _register_association(self, asn: AssociationEntry, outcome: dict[str, PodOutcome],
                              report: ReceiptReport) -> None:
        if asn.name not in report.registered:
            report.already_registered.append(asn.name)
        letter = self.osf.get(asn.name).letter(COLUMN)  # already the aggregate of its members' DR letters
        bad = [m for m in asn.members if not outcome[m].ok]
        message = (f"association {asn.name} ({asn.type}) received: {len(asn.members)} members"
                   + (f"; failed members: {', '.join(bad)}" if bad else ""))
        self.osf.transition(asn.name, COLUMN, letter, letter, who=self.who, message=message,
                            exit_code=int(ExitCode.BAD_INPUT) if bad else 0)
        Trailer(self.site.trailer_path(parse_dataset(asn.name))).write("error" if bad else "info",
                                                                      f"{self.who}: {message}")

    # -- helpers -------------------------------------------------------------------------------
    def _quarantine_downlink(self, dan: Dan, dan_path: Path, reason: str) -> None:
        """Quarantine a rejected notice and whichever of its pods sit beside it."""
        self._quarantine(dan_path, reason)
        for entry in dan.pods:
            pod = dan_path.parent / entry.file
            if pod.exists():
                same = _sha256(pod.read_bytes()) == entry.sha256
                self._quarantine(pod, f"{entry.file}: listed by {dan_path.name}: {reason}"
                                      + ("" if same else "; its sha256 does not match that notice either"))

    def _quarantine(self, path: Path, reason: str) -> Path:
        return quarantine(path, self.site.areas.quarantine, f"{self.who}: {reason}")

    @staticmethod
    def _datasets(dan: Dan) -> list[str]:
        return [p.dataset for p in dan.pods] + [a.name for a in dan.associations]


__all__ = ["PodOutcome", "ReceiptReport", "ReceivingStation", "association_record", "checked_sha256",
           "locate_dan", "received_pod"]
