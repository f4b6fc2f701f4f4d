"""Workflows as data: which stages run, in what order, with what resources, retries and throttles.

A workflow file (``workflows/<name>.toml``) is loaded and validated into one graph type,
:class:`Workflow`; :meth:`Workflow.expand` turns it into the concrete nodes of one association
(:class:`DatasetGraph`), which both the DAGMan renderer (:mod:`pipeline.orchestration.dag`) and the local executor
run. Nothing here knows what a stage does: a stage is an executable, an OSF column and a scope.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.core.config import Priorities, Site
from pipeline.core.errors import ConfigError
from pipeline.core.exitcodes import DAGMAN_FATAL
from pipeline.core.names import DatasetName, parse_dataset
from pipeline.core.osf import COLUMNS
from pipeline.core.resources import shipped_dir

#: Where the shipped workflow files live (``OWL_WORKFLOW_DIR`` overrides, as ``OWL_CONFIG_DIR`` does).
WORKFLOW_DIR = shipped_dir("workflows", "OWL_WORKFLOW_DIR")
DEFAULT_WORKFLOW = "new_science"
_NODE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*$", re.IGNORECASE)
_UNIT_MB = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}


class WorkflowError(ConfigError):
    """A workflow file that cannot be used; the message names the file."""


def megabytes(value: int | str) -> int:
    """``2048`` (MB), ``"2GB"``, ``"512 MB"`` -> whole MiB, as HTCondor's request_memory counts them."""
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"size must be positive, got {value}")
        return value
    m = _SIZE_RE.match(value)
    if not m:
        raise ValueError(f"size {value!r} must be a number of MB or a string like '2GB' or '512MB'")
    mb = float(m.group(1)) * _UNIT_MB[m.group(2).upper()]
    if mb < 1:
        raise ValueError(f"size {value!r} is below 1 MB")
    return round(mb)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resources(_Strict):
    request_cpus: int = Field(default=1, ge=1, le=64)
    request_memory: int = 1024
    request_disk: int = 1024
    retries: int = Field(default=2, ge=0, le=20)

    @field_validator("request_memory", "request_disk", mode="before")
    @classmethod
    def _size(cls, v: int | str) -> int:
        return megabytes(v)


class StageFile(_Strict):
    """One ``[stages.<NAME>]`` table."""

    column: str
    executable: str = Field(min_length=1)
    after: list[str] = Field(default_factory=list)
    scope: Literal["association", "exposure"] = "association"
    #: ``downlink``: run by the controller once per Data Availability Notice, before any association
    #: DAG exists (dan_receipt); such a stage is the graph's entry but never a DAG node.
    trigger: Literal["downlink"] | None = None
    category: str | None = None
    #: Added to the workflow's priority for this stage's nodes (DAGMan ``PRIORITY``).
    priority: int = 0
    #: Extra arguments after ``DATASET --site SITE``.
    arguments: list[str] = Field(default_factory=list)
    request_cpus: int | None = Field(default=None, ge=1, le=64)
    request_memory: int | None = None
    request_disk: int | None = None
    retries: int | None = Field(default=None, ge=0, le=20)

    @field_validator("request_memory", "request_disk", mode="before")
    @classmethod
    def _size(cls, v: int | str | None) -> int | None:
        return None if v is None else megabytes(v)

    @field_validator("arguments")
    @classmethod
    def _plain_arguments(cls, v: list[str]) -> list[str]:
        for arg in v:
            if not arg or any(c.isspace() or c in "\"'$" for c in arg):
                raise ValueError(f"argument {arg!r} must be one word without quotes or '$'")
        return v


class WorkflowFile(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    description: str = ""
    #: Key of the site's ``[priorities]`` table (live data ahead of reprocessing).
    priority: str
    #: The one exit value of ``RETRY n UNLESS-EXIT v``; must be what the POST hook returns for fatal codes.
    retry_unless_exit: int = DAGMAN_FATAL
    start: str
    defaults: Resources = Field(default_factory=Resources)
    #: DAGMan ``MAXJOBS`` per category; the site's ``[throttles.max_jobs]`` overrides these.
    categories: dict[str, int] = Field(default_factory=dict)
    stages: dict[str, StageFile]


@dataclass(frozen=True)
class StageSpec:
    """One stage of a workflow, with its defaults resolved."""

    name: str
    column: str
    executable: str
    after: tuple[str, ...]
    scope: Literal["association", "exposure"]
    trigger: str | None
    category: str | None
    priority: int
    arguments: tuple[str, ...]
    request_cpus: int
    request_memory: int
    request_disk: int
    retries: int

    @property
    def is_node(self) -> bool:
        """Whether the stage becomes DAG nodes (trigger stages run before the DAG)."""
        return self.trigger is None


@dataclass(frozen=True)
class Workflow:
    """A validated workflow graph: stages in a topological order (file order among equals)."""

    name: str
    description: str
    path: Path
    priority_key: str
    retry_unless_exit: int
    start: str
    categories: dict[str, int]
    stages: dict[str, StageSpec]

    @property
    def ref(self) -> str:
        """How to load this workflow again: its name when shipped, else its file's path."""
        return self.name if self.path == workflow_path(self.name) else str(self.path)

    def __iter__(self) -> Iterator[StageSpec]:
        return iter(self.stages.values())

    def stage(self, name: str) -> StageSpec:
        try:
            return self.stages[name]
        except KeyError:
            raise WorkflowError(f"{self.path}: no stage {name!r} (stages: {', '.join(self.stages)})") from None

    def stage_for_column(self, column: str) -> StageSpec | None:
        return next((s for s in self if s.column == column.upper()), None)

    def children(self, name: str) -> list[str]:
        return [s.name for s in self if name in s.after]

    def descendants(self, name: str) -> list[str]:
        """``name`` and every stage after it, in workflow order (what ``owl retry --from`` reruns)."""
        seen = {name}
        for s in self:
            if any(p in seen for p in s.after):
                seen.add(s.name)
        return [s.name for s in self if s.name in seen]

    @property
    def columns(self) -> list[str]:
        return [s.column for s in self]

    @property
    def node_stages(self) -> list[StageSpec]:
        return [s for s in self if s.is_node]

    @property
    def unused_columns(self) -> list[str]:
        """OSF columns this workflow never moves (marked ``n`` when they are still ``_``)."""
        mine = set(self.columns)
        return [c for c in COLUMNS if c not in mine]

    def priority(self, site: Site) -> int:
        return int(getattr(site.priorities, self.priority_key))

    def max_jobs(self, site: Site) -> dict[str, int]:
        """MAXJOBS per category used by this workflow: the site's throttles win over the file's defaults."""
        used = {s.category for s in self if s.category}
        limits = {**self.categories, **site.throttles.max_jobs}
        return {c: limits[c] for c in sorted(used)}

    def expand(self, dataset: DatasetName | str, members: Sequence[str]) -> DatasetGraph:
        """The concrete nodes for one association (or singleton): exposure-scope stages fan out per member."""
        ds = dataset if isinstance(dataset, DatasetName) else parse_dataset(dataset)
        exposures = sorted(parse_dataset(m).name for m in members) or [ds.name]
        names: dict[str, list[str]] = {}
        nodes: dict[str, Node] = {}
        for spec in self.node_stages:
            targets = exposures if spec.scope == "exposure" else [ds.name]
            layer = [spec.name if spec.scope == "association" else f"{spec.name}_{t}" for t in targets]
            names[spec.name] = layer
            parents = tuple(n for p in spec.after for n in names.get(p, []))
            for node_name, target in zip(layer, targets, strict=True):
                nodes[node_name] = Node(node_name, spec, target, parents)
        return DatasetGraph(self, ds.name, tuple(exposures), nodes, names)


@dataclass(frozen=True)
class Node:
    """One DAG node: a stage run on one dataset (the association, or one member exposure)."""

    name: str
    stage: StageSpec
    dataset: str
    parents: tuple[str, ...]


@dataclass(frozen=True)
class DatasetGraph:
    """A workflow expanded for one association: the unit a DAG file or a local run covers."""

    workflow: Workflow
    dataset: str
    members: tuple[str, ...]
    nodes: dict[str, Node]
    layers: dict[str, list[str]] = field(default_factory=dict)

    def children(self, node: str) -> list[str]:
        return [n.name for n in self.nodes.values() if node in n.parents]


# -- loading -----------------------------------------------------------------------------------
def workflow_path(name_or_path: str | Path) -> Path:
    """A workflow name (``reprocess``) is looked up in :data:`WORKFLOW_DIR`; anything else is a path."""
    text = str(name_or_path)
    if re.fullmatch(r"[a-z][a-z0-9_]*", text):
        return WORKFLOW_DIR / f"{text}.toml"
    return Path(text).expanduser().resolve()


def available_workflows() -> list[str]:
    return sorted(p.stem for p in WORKFLOW_DIR.glob("*.toml"))


def _validation_line(err: ValidationError, path: Path) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"].removeprefix("Value error, ")
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{path}: {key}: {msg}{more}"


def _toposort(path: Path, stages: dict[str, StageFile]) -> list[str]:
    """Kahn's algorithm, stable in file order; a cycle is reported with its path."""
    indegree = {n: len(s.after) for n, s in stages.items()}
    order: list[str] = []
    ready = [n for n in stages if indegree[n] == 0]
    while ready:
        n = ready.pop(0)
        order.append(n)
        for m, s in stages.items():
            if n in s.after:
                indegree[m] -= 1
                if indegree[m] == 0:
                    ready.append(m)
                    ready.sort(key=list(stages).index)
    if len(order) < len(stages):
        left = [n for n in stages if n not in order]
        node, cycle = left[0], []
        while node not in cycle:  # walk parents inside the remainder until one repeats
            cycle.append(node)
            node = next(p for p in stages[node].after if p in left)
        loop = [*cycle[cycle.index(node):], node][::-1]
        raise WorkflowError(f"{path}: stages form a cycle: {' -> '.join(loop)}", path=path)
    return order


def _check_graph(path: Path, wf: WorkflowFile) -> list[str]:
    stages = wf.stages
    if not stages:
        raise WorkflowError(f"{path}: no stages", path=path)
    columns: dict[str, str] = {}
    for name, s in stages.items():
        if not _NODE_NAME_RE.fullmatch(name) or name.upper() in {"PARENT", "CHILD", "ALL_NODES"}:
            raise WorkflowError(f"{path}: stage name {name!r} is not a valid DAG node name", path=path)
        col = s.column.upper()
        if col not in COLUMNS:
            raise WorkflowError(f"{path}: stages.{name}.column: unknown OSF column {s.column!r} "
                                f"(columns: {' '.join(COLUMNS)})", path=path)
        if col in columns:
            raise WorkflowError(f"{path}: stages {columns[col]} and {name} both move OSF column {col}", path=path)
        columns[col] = name
        for parent in s.after:
            if parent not in stages:
                raise WorkflowError(f"{path}: stages.{name}.after: unknown stage {parent!r} "
                                    f"(stages: {', '.join(stages)})", path=path)
        if s.category is not None and s.category not in wf.categories:
            raise WorkflowError(f"{path}: stages.{name}.category: unknown category {s.category!r}; declare it "
                                f"under [categories] with its default MAXJOBS", path=path)
        if s.trigger and s.after:
            raise WorkflowError(f"{path}: stages.{name}: a trigger stage runs first and cannot come after "
                                f"{', '.join(s.after)}", path=path)
    if wf.start not in stages:
        raise WorkflowError(f"{path}: start: unknown stage {wf.start!r} (stages: {', '.join(stages)})", path=path)
    order = _toposort(path, stages)
    reached = {wf.start}
    for name in order:
        if any(p in reached for p in stages[name].after):
            reached.add(name)
    unreachable = [n for n in order if n not in reached]
    if unreachable:
        raise WorkflowError(f"{path}: stage(s) {', '.join(unreachable)} unreachable from start stage "
                            f"{wf.start!r} (give them an 'after' edge)", path=path)
    if wf.retry_unless_exit != DAGMAN_FATAL:
        raise WorkflowError(f"{path}: retry_unless_exit = {wf.retry_unless_exit}, but the POST hook reports "
                            f"every fatal exit as {DAGMAN_FATAL} (pipeline.core.exitcodes.DAGMAN_FATAL)", path=path)
    return order


def load_workflow(name_or_path: str | Path) -> Workflow:
    """Load and validate a workflow; every problem is one :class:`WorkflowError` naming the file."""
    path = workflow_path(name_or_path)
    try:
        with open(path, "rb") as fh:
            tree: dict[str, Any] = tomllib.load(fh)
    except FileNotFoundError:
        known = ", ".join(available_workflows()) or "none"
        raise WorkflowError(f"workflow file not found: {path} (shipped workflows: {known})", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise WorkflowError(f"{path}: invalid TOML: {exc}", path=path) from None
    try:
        wf = WorkflowFile.model_validate(tree)
    except ValidationError as err:
        raise WorkflowError(_validation_line(err, path), path=path) from None
    order = _check_graph(path, wf)
    keys = [key for key, _ in Priorities()]
    if wf.priority not in keys:
        raise WorkflowError(f"{path}: priority: {wf.priority!r} is not a key of the site [priorities] table "
                            f"({', '.join(keys)})", path=path)
    d = wf.defaults
    specs = {}
    for name in order:
        s = wf.stages[name]
        specs[name] = StageSpec(
            name=name, column=s.column.upper(), executable=s.executable, after=tuple(s.after), scope=s.scope,
            trigger=s.trigger, category=s.category, priority=s.priority, arguments=tuple(s.arguments),
            request_cpus=s.request_cpus or d.request_cpus, request_memory=s.request_memory or d.request_memory,
            request_disk=s.request_disk or d.request_disk, retries=d.retries if s.retries is None else s.retries)
    return Workflow(wf.name, wf.description, path, wf.priority, wf.retry_unless_exit, wf.start,
                    dict(wf.categories), specs)


# -- executables -------------------------------------------------------------------------------
def find_executable(spec: StageSpec, workflow: Workflow) -> Path | None:
    """The stage's executable: a path (relative to the workflow file), or a name installed beside this
    Python (the venv's ``bin``) or on PATH. None when it is not installed."""
    exe = spec.executable
    if "/" in exe:
        path = (workflow.path.parent / exe).resolve()
        return path if os.access(path, os.X_OK) else None
    beside = Path(sys.executable).parent / exe
    if os.access(beside, os.X_OK):
        return beside.absolute()
    found = shutil.which(exe)
    return Path(found).absolute() if found else None


def missing_executables(workflow: Workflow) -> list[StageSpec]:
    return [s for s in workflow if find_executable(s, workflow) is None]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def runnable_subset(workflow: Workflow, keep: Sequence[str], comment: str) -> str:
    """TOML of ``workflow`` cut down to the stages in ``keep`` whose ancestors are all kept too.

    Used while some stage executables are not installed yet: the cut workflow still validates
    (start, edges, categories) and runs what exists, in the same order.
    """
    kept: list[StageSpec] = []
    for spec in workflow:
        if spec.name in keep and all(p in {k.name for k in kept} for p in spec.after):
            kept.append(spec)
    categories = {s.category for s in kept if s.category}
    lines = [f"# {line}" for line in comment.splitlines()]
    lines += [f"name = {_toml_value(workflow.name)}", f"description = {_toml_value(workflow.description)}",
              f"priority = {_toml_value(workflow.priority_key)}",
              f"retry_unless_exit = {workflow.retry_unless_exit}", f"start = {_toml_value(workflow.start)}", "",
              "[categories]", *(f"{c} = {n}" for c, n in workflow.categories.items() if c in categories)]
    for s in kept:
        lines += ["", f"[stages.{s.name}]"]
        fields = {"column": s.column, "executable": s.executable, "after": list(s.after), "scope": s.scope,
                  "trigger": s.trigger, "category": s.category, "priority": s.priority,
                  "arguments": list(s.arguments), "request_cpus": s.request_cpus,
                  "request_memory": s.request_memory, "request_disk": s.request_disk, "retries": s.retries}
        lines += [f"{k} = {_toml_value(v)}" for k, v in fields.items() if v is not None]
    if workflow.start not in {s.name for s in kept}:
        raise WorkflowError(f"{workflow.path}: start stage {workflow.start} is not available", path=workflow.path)
    return "\n".join(lines) + "\n"
