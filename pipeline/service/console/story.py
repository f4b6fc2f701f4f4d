"""Everything the console tells about one dataset: OSF row and history, trailer, exit code, archive
versions, preview files and the DAG of its association."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pipeline.archive.store import Archive
from pipeline.core.config import Site
from pipeline.core.exitcodes import meaning
from pipeline.core.names import parse_dataset
from pipeline.core.osf import COLUMN_STAGES, Blackboard, HistoryEntry, OSFEntry
from pipeline.core.trailer import parse_line
from pipeline.science.products import PREVIEW_EXTENSIONS


def utc(t: float | None) -> str:
    """A time as operators read it everywhere in the console: UTC, to the second."""
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t))


@dataclass
class Line:
    number: int
    severity: str
    text: str


@dataclass
class Story:
    entry: OSFEntry
    members: list[OSFEntry]
    history: list[HistoryEntry]
    trailer: list[Line]
    exit_code: int | None
    exit_meaning: str
    versions: list[Any]
    pictures: list[Any]
    dag: dict[str, Any] | None
    stages: dict[str, str] = field(default_factory=lambda: dict(COLUMN_STAGES))

    @property
    def first_error(self) -> Line | None:
        return next((line for line in self.trailer if line.severity == "error"), None)


def trailer_lines(site: Site, dataset: str) -> list[Line]:
    path = site.trailer_path(parse_dataset(dataset))
    if not path.is_file():
        return []
    out = []
    for n, raw in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        parsed = parse_line(raw)
        out.append(Line(n, parsed.severity if parsed else "info", raw))
    return out


def dag_state(site: Site, bb: Blackboard, association: str) -> dict[str, Any] | None:
    """``owl dag status`` of the association's newest submission; None when it was never submitted."""
    from pipeline.orchestration.controller import Controller
    from pipeline.orchestration.operator import dag_view

    ctl = Controller(site)
    return dag_view(ctl, association) if ctl.submissions(association) else None


def story(site: Site, bb: Blackboard, archive: Archive, dataset: str) -> Story:
    entry = bb.get(dataset)
    history = bb.history(entry.dataset)
    codes = [h.exit_code for h in history if h.exit_code is not None]
    code = codes[-1] if codes else None
    versions = archive.version_info(entry.dataset)
    newest = {f.kind: f for v in versions for f in v.files}  # a kind's newest file (versions are oldest first)
    pictures = [f for kind, f in sorted(newest.items()) if kind.rsplit("_", 1)[-1] in PREVIEW_EXTENSIONS
                and f"{kind.rsplit('_', 1)[0]}_thumb_{kind.rsplit('_', 1)[1]}" not in newest]
    return Story(entry, [bb.get(m) for m in bb.members(entry.dataset)] if not entry.parent else [],
                 history, trailer_lines(site, entry.dataset), code, meaning(code) if code is not None else "",
                 versions, pictures, dag_state(site, bb, entry.parent or entry.dataset))
