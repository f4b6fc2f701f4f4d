"""The OSF grid (``owl status``, the console): a row per dataset, a column per stage; the query, not the view.

Built to stay fast on a site with 100,000 datasets: per-stage counts come from one grouped SQL
query, and only one page of rows is ever read and rendered. Members follow their association.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.core.osf import COLUMNS, ROW_COLUMNS, Blackboard, OSFEntry, OSFError, check_letters, column_index


@dataclass(frozen=True)
class Filters:
    column: str | None = None
    letters: str | None = None
    data_id: str | None = None
    workflow: str | None = None
    association: str | None = None
    top_level: bool = False
    #: Datasets whose name starts with this (the console's dataset-prefix box).
    prefix: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        """The filters as SQL over the ``osf`` columns ('' for none) and its parameters."""
        if (self.column is None) != (self.letters is None):
            raise OSFError("filter by column needs both a column and letters (e.g. -c CA -s ex)")
        clauses: list[str] = []
        params: list[Any] = []
        if self.column is not None:
            letters = list(check_letters(self.letters))
            clauses.append(f"substr(status, {column_index(self.column) + 1}, 1) IN ({', '.join('?' * len(letters))})")
            params += letters
        if self.data_id:
            clauses.append("data_id = ?")
            params.append(self.data_id)
        if self.workflow:
            clauses.append("workflow = ?")
            params.append(self.workflow)
        if self.association:
            clauses.append("(dataset = ? OR parent = ?)")
            params += [self.association.lower()] * 2
        if self.prefix:
            escaped = self.prefix.lower().replace("/", "//").replace("%", "/%").replace("_", "/_")
            clauses.append("dataset LIKE ? ESCAPE '/'")
            params.append(escaped + "%")
        if self.top_level:
            clauses.append("parent IS NULL")
        return " AND ".join(clauses), params


@dataclass
class Grid:
    total: int
    offset: int
    rows: list[OSFEntry]
    counts: dict[str, dict[str, int]]

    def as_dict(self) -> dict:
        return {"total": self.total, "offset": self.offset, "columns": list(COLUMNS),
                "counts": self.counts, "rows": [r.as_dict() for r in self.rows]}


def grid(bb: Blackboard, filters: Filters = Filters(), *, limit: int = 50, offset: int = 0) -> Grid:
    """One page of the grid (associations with their members right after them) plus the counts."""
    where, params = filters.where()
    clause = f" WHERE {where}" if where else ""
    total = bb.db.read(f"SELECT count(*) FROM osf{clause}", params)[0][0]
    rows = [OSFEntry(*r) for r in bb.db.read(
        f"SELECT {ROW_COLUMNS} FROM osf{clause} "
        "ORDER BY coalesce(parent, dataset), CASE WHEN parent IS NULL THEN 0 ELSE 1 END, dataset "
        "LIMIT ? OFFSET ?", [*params, limit, offset])]
    return Grid(total, offset, rows, bb.counts(where, params))
