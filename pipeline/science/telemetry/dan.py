"""Data Availability Notices: the JSON manifest that announces one downlink's pod files.

A DAN lists every pod (file name, size, sha256, dataset, instrument) and the associations the
pods belong to. :func:`write_downlink` writes the pods first and the DAN last, each atomically,
so a watcher that reacts to ``*.dan.json`` never sees a notice before its pods are complete.
Exposures that belong to no association are singletons.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pipeline.core.errors import BadInput
from pipeline.core.fsutil import atomic_write
from pipeline.core.names import BadName, parse_dataset, pod_name
from pipeline.core.typedload import Invalid, bounded, load

if TYPE_CHECKING:
    from astropy.io import fits

DAN_FORMAT = "owlpipe-dan"
DAN_VERSION = 1
DAN_SUFFIX = ".dan.json"
DAN_GLOB = f"*{DAN_SUFFIX}"
DOWNLINK_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


_entry = dataclasses.dataclass(frozen=True, kw_only=True)


def _json_value(value: Any) -> Any:
    """Datetimes as pydantic wrote them (ISO 8601, ``Z`` for UTC)."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class _Strict:
    """A DAN record: unknown keys refused, read-only once loaded."""

    @classmethod
    def from_json(cls, text: str | bytes) -> Any:
        """Load and check one record from its JSON text (raises :class:`pipeline.core.typedload.Invalid`)."""
        return load(cls, json.loads(text))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, ensure_ascii=False, default=_json_value) + "\n"


def _dataset(value: str, what: str) -> str:
    try:
        return parse_dataset(value).name
    except BadName as exc:
        raise ValueError(f"{what}: {exc}") from None


@_entry
class PodEntry(_Strict):
    file: str
    dataset: str
    instrument: str = bounded(min_length=1, max_length=16)
    size: int = bounded(ge=64)
    sha256: str = bounded(pattern=r"^[0-9a-f]{64}$")

    def _after_load(self) -> None:
        ds = _dataset(self.dataset, "dataset")
        if ds != self.dataset:
            raise ValueError(f"dataset {self.dataset!r} must be lower case")
        if self.file != pod_name(ds):
            raise ValueError(f"pod file {self.file!r} must be named {pod_name(ds)!r}")
        if self.instrument != parse_dataset(ds).instrument:
            raise ValueError(f"instrument {self.instrument!r} does not match {ds} "
                             f"(a {parse_dataset(ds).instrument} name)")


def _association_name(v: str) -> None:
    ds = parse_dataset(v) if re.fullmatch(r"[a-z0-9]{9}", v) else None
    if ds is None or not ds.is_association:
        raise ValueError(f"association name {v!r} must be a lower-case 'ipppss0n0' name")


@_entry
class AssociationEntry(_Strict):
    name: str = bounded(check=_association_name)
    type: str = bounded(min_length=1, max_length=32)
    members: list[str] = bounded(min_length=1)

    def _after_load(self) -> None:
        for m in self.members:
            if _dataset(m, "member") != m or not parse_dataset(m).is_exposure:
                raise ValueError(f"member {m!r} must be a lower-case exposure name")
            if m[:6] != self.name[:6]:
                raise ValueError(f"member {m} does not share program and visit {self.name[:6]!r} "
                                 f"with association {self.name}")
        if len(set(self.members)) != len(self.members):
            raise ValueError(f"association {self.name} lists a member twice")


@_entry
class Dan(_Strict):
    format: Literal["owlpipe-dan"]
    version: Literal[1]
    downlink_id: str = bounded(pattern=DOWNLINK_ID_RE.pattern)
    created: datetime
    pods: list[PodEntry] = bounded(min_length=1)
    associations: list[AssociationEntry] = bounded(factory=list)

    def _after_load(self) -> None:
        datasets = [p.dataset for p in self.pods]
        if len(set(datasets)) != len(datasets):
            raise ValueError("a dataset appears in more than one pod entry")
        owner: dict[str, str] = {}
        for asn in self.associations:
            for m in asn.members:
                if m not in datasets:
                    raise ValueError(f"association {asn.name} member {m} has no pod entry")
                if m in owner:
                    raise ValueError(f"{m} is a member of both {owner[m]} and {asn.name}")
                owner[m] = asn.name
        if len({a.name for a in self.associations}) != len(self.associations):
            raise ValueError("an association is listed twice")

    def association_of(self, dataset: str) -> AssociationEntry | None:
        return next((a for a in self.associations if dataset in a.members), None)


def dan_file_name(downlink_id: str) -> str:
    if not DOWNLINK_ID_RE.fullmatch(downlink_id):
        raise ValueError(f"invalid downlink id {downlink_id!r}")
    return downlink_id + DAN_SUFFIX


def parse_dan(text: bytes | str, name: str, path: Path | None = None) -> Dan:
    """Parse and validate a DAN; any fault is one :class:`BadInput` line naming the field."""
    try:
        tree = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{name}: not valid JSON: {exc}", path=path) from None
    try:
        return load(Dan, tree)
    except Invalid as err:
        first = err.problems[0]
        where = ".".join(str(p) for p in first.loc) or "(top level)"
        more = f" (and {len(err.problems) - 1} more)" if len(err.problems) > 1 else ""
        msg = first.msg.removeprefix("Value error, ")
        raise BadInput(f"{name}: invalid DAN at {where}: {msg}{more}", path=path, keyword=where) from None


def read_dan(path: Path | str) -> Dan:
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"DAN {p} not found") from None
    return parse_dan(data, p.name, p)


def new_downlink_id(now: datetime | None = None) -> str:
    """``dl<UTC time>-<random>``: sortable by time, unique across simultaneous senders."""
    t = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    return f"dl{t}-{secrets.token_hex(3)}"


class ExposureLike(Protocol):
    rootname: str
    raw: fits.HDUList


class AssociationLike(Protocol):
    name: str
    asn_type: str
    members: Sequence[ExposureLike]


def write_downlink(associations: Iterable[AssociationLike], inbox_dir: Path | str,
                   downlink_id: str | None = None) -> Path:
    """Encode every member of every association into the inbox, then write the DAN; return its path.

    An "association" whose name is an exposure name is a singleton: its pod is listed, but it
    gets no association entry.
    """
    from pipeline.science.telemetry.encode import encode_exposure  # numpy, astropy: the simulator's side

    inbox = Path(inbox_dir)
    inbox.mkdir(parents=True, exist_ok=True)
    dl = downlink_id or new_downlink_id()
    dan_path = inbox / dan_file_name(dl)
    pods: list[PodEntry] = []
    entries: list[AssociationEntry] = []
    for asn in associations:
        names = []
        for member in asn.members:
            data = encode_exposure(member.raw)
            ds = parse_dataset(member.rootname).name
            with atomic_write(inbox / pod_name(ds)) as fh:
                fh.write(data)
            pods.append(PodEntry(file=pod_name(ds), dataset=ds,
                                 instrument=str(member.raw[0].header["INSTRUME"]).strip().lower(),
                                 size=len(data), sha256=hashlib.sha256(data).hexdigest()))
            names.append(ds)
        if parse_dataset(asn.name).is_association:
            entries.append(AssociationEntry(name=parse_dataset(asn.name).name, type=str(asn.asn_type),
                                            members=names))
    dan = Dan(format=DAN_FORMAT, version=DAN_VERSION, downlink_id=dl, created=datetime.now(UTC),
              pods=pods, associations=entries)
    with atomic_write(dan_path, "w") as fh:
        fh.write(dan.to_json())
    return dan_path
