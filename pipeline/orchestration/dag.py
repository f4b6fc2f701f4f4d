"""Render one association's workflow as HTCondor DAGMan files that run on a real pool as written.

``<site>/dags/<assoc>/`` receives ``<assoc>.dag`` (built with :mod:`htcondor2.dags`), one submit
description per stage (``<STAGE>.sub``; a node's dataset and name come in by ``VARS``), the DAG's
``CONFIG`` file, and a ``nodes/`` directory for each node's event log, stdout and stderr. Every
path written is absolute, so ``condor_submit_dag`` works from any working directory.

Two things are written by hand rather than by ``write_dag``: ``CONFIG`` (``write_dag`` makes it
relative to the submit directory) and ``MAXJOBS`` (``write_dag`` spells category limits
``CATEGORY name N``, which DAGMan rejects).

Nodes whose OSF column is already complete are written ``DONE``, so a DAG rewritten after a
partial run resumes where the OSF says it stopped; the PRE hook's ``PRE_SKIP`` covers nodes
completed after the file was written.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.config import Site
from pipeline.core.errors import ConfigError, OwlError
from pipeline.core.exitcodes import ExitCode
from pipeline.core.fsutil import fsync_dir
from pipeline.core.names import parse_dataset
from pipeline.core.osf import Blackboard
from pipeline.core.siteid import site_identity
from pipeline.core.usage import MemoryRequest
from pipeline.orchestration.executors.hooks import PRE_DEFER_CODE, PRE_DEFER_SECONDS, PRE_SKIP_CODE
from pipeline.orchestration.executors.ownership import SITE_ATTR, quoted
from pipeline.orchestration.memory import MEMORY_VAR, REQUEST_MEMORY, RETRY_VAR, node_requests
from pipeline.orchestration.workflow import DatasetGraph, Node, StageSpec, Workflow, WorkflowError, find_executable

#: Seconds between rewrites of the node status file (DAGMan's minimum interval).
NODE_STATUS_INTERVAL = 10
#: Files DAGMan leaves beside ``<name>.dag`` from a run; moved aside before a DAG is rewritten.
RUN_FILE_SUFFIXES = (".condor.sub", ".dagman.out", ".dagman.log", ".nodes.log", ".lib.out", ".lib.err",
                     ".metrics")


class DagError(OwlError):
    code = ExitCode.USAGE


@dataclass(frozen=True)
class DagFiles:
    """Where one association's DAG lives and what it holds."""

    directory: Path
    dataset: str
    workflow: str = ""
    nodes: dict[str, Node] = field(default_factory=dict)
    done: frozenset[str] = frozenset()
    #: The writing site's identity (:mod:`pipeline.core.siteid`), carried by the DAGMan job and every node job.
    site_id: str = ""
    #: Each node's first-attempt ``request_memory`` and where it came from (:mod:`pipeline.orchestration.memory`).
    memory: dict[str, MemoryRequest] = field(default_factory=dict)

    @property
    def dag(self) -> Path:
        return self.directory / f"{self.dataset}.dag"

    @property
    def config(self) -> Path:
        return self.directory / f"{self.dataset}.config"

    @property
    def node_status(self) -> Path:
        return self.directory / f"{self.dataset}.status"

    @property
    def jobstate_log(self) -> Path:
        return self.directory / f"{self.dataset}.jobstate.log"

    @property
    def lock(self) -> Path:
        return self.directory / f"{self.dataset}.dag.lock"

    @property
    def halt(self) -> Path:
        """DAGMan's halt file: while it exists no new node starts (the local executor honours it too)."""
        return self.directory / f"{self.dataset}.dag.halt"

    @property
    def node_dir(self) -> Path:
        return self.directory / "nodes"

    def submit_file(self, stage: str) -> Path:
        return self.directory / f"{stage}.sub"

    def node_log(self, node: str) -> Path:
        return self.node_dir / f"{node}.log"

    def node_output(self, node: str) -> Path:
        return self.node_dir / f"{node}.out"

    def node_error(self, node: str) -> Path:
        return self.node_dir / f"{node}.err"

    def rescue_files(self) -> list[Path]:
        return sorted(self.directory.glob(f"{self.dataset}.dag.rescue[0-9][0-9][0-9]"))

    def submit_command(self) -> str:
        """What an operator types to run this DAG on a pool (any working directory)."""
        return f"condor_submit_dag -batch-name owl-{self.dataset} {shlex.quote(str(self.dag))}"


def dag_files(site: Site, dataset: str) -> DagFiles:
    name = parse_dataset(dataset).name
    return DagFiles(site.areas.dags / name, name)


# -- words that must survive DAGMan's and condor_submit's parsers -------------------------------
def _plain(text: str, what: str) -> str:
    """DAG SCRIPT lines and plain ``arguments`` split on spaces and know no quoting."""
    if not text or any(c.isspace() for c in text) or "$" in text or '"' in text or "'" in text:
        raise ConfigError(f"{what} {text!r} contains spaces, quotes or '$': DAGMan cannot pass it to a "
                          "node; move the site to a path without them")
    return text


def condor_environment(env: dict[str, str]) -> str:
    """The submit ``environment`` value in HTCondor's quoted syntax (spaces and quotes escaped)."""
    parts = []
    for key, value in env.items():
        if "$$(" in value:
            raise ConfigError(f"environment {key}={value!r}: '$$(' is HTCondor's own expansion syntax")
        item = f"{key}={value}".replace('"', '""')
        if any(c.isspace() for c in item) or "'" in item:
            item = "'" + item.replace("'", "''") + "'"
        parts.append(item)
    return '"' + " ".join(parts) + '"'


def owl_executable() -> Path:
    """The ``owl`` command of this installation (hooks must run the same code as the controller)."""
    beside = Path(sys.executable).parent / "owl"
    if os.access(beside, os.X_OK):
        return beside.absolute()
    found = shutil.which("owl")
    if not found:
        raise ConfigError("the 'owl' command is not installed beside this Python or on PATH")
    return Path(found).absolute()


def stage_executable(spec: StageSpec, workflow: Workflow) -> Path:
    exe = find_executable(spec, workflow)
    if exe is None:
        raise WorkflowError(f"{workflow.path}: stage {spec.name}: executable {spec.executable!r} is not installed "
                            f"(not beside {Path(sys.executable).parent} nor on PATH)", path=workflow.path)
    return exe


# -- content -----------------------------------------------------------------------------------
def submit_description(site: Site, files: DagFiles, spec: StageSpec, workflow: Workflow) -> str:
    """One stage's submit description; ``$(dataset)`` and ``$(node)`` come from each node's VARS."""
    import htcondor2

    root = _plain(str(site.root), "site directory")
    args = " ".join(["$(dataset)", "--site", root, *spec.arguments])
    desc = htcondor2.Submit({
        "universe": "vanilla",
        "executable": str(stage_executable(spec, workflow)),
        "arguments": args,
        "log": str(files.node_dir / "$(node).log"),
        "output": str(files.node_dir / "$(node).out"),
        "error": str(files.node_dir / "$(node).err"),
        "request_cpus": str(spec.request_cpus),
        "request_memory": REQUEST_MEMORY,  # $(owl_memory) per node from VARS, grown per retry
        "request_disk": str(spec.request_disk * 1024),
        "environment": condor_environment(job_environment(site)),
        "should_transfer_files": "NO",
        "My.OwlWorkflow": f'"{workflow.name}"',
        "My.OwlAssociation": f'"{files.dataset}"',
        "My.OwlStage": f'"{spec.name}"',
        "My.OwlColumn": f'"{spec.column}"',
        "My.OwlDataset": '"$(dataset)"',
        f"My.{SITE_ATTR}": quoted(files.site_id),
    })
    header = (f"# owlpipe: stage {spec.name} (OSF column {spec.column}) of workflow {workflow.name} "
              f"for {files.dataset}\n# shared filesystem: the job reads and writes the site directly\n")
    return header + str(desc)


#: The end of every job's PATH, after ``[condor] path`` and this installation's bin directory.
SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")


def job_environment(site: Site) -> dict[str, str]:
    """A job's whole environment: ``[condor] environment``, the site and CRDS variables, and a PATH of
    ``[condor] path``, this installation's bin (the venv) and the system directories. The submitter's
    own PATH and variables are not copied: they may name directories a pool node cannot read."""
    path = [*filter(None, site.condor.path.split(os.pathsep)), str(Path(sys.executable).parent), *SYSTEM_PATH]
    return {**site.condor.environment, **site.environment(), "PATH": os.pathsep.join(dict.fromkeys(path))}


def dagman_config(site: Site) -> str:
    lines = ["# owlpipe: DAGMan settings for this DAG (its CONFIG line)",
             "# a PRE hook that skips or defers a node must not run the node's POST hook",
             "DAGMAN_ALWAYS_RUN_POST = False"]
    if Path(site.root).resolve().is_relative_to("/tmp") or site.areas.dags.resolve().is_relative_to("/tmp"):
        lines += ["# the site lives under /tmp: let DAGMan keep its node log there",
                  "DAGMAN_AVOID_SLASH_TMP = False"]
    return "\n".join(lines) + "\n"


def build_dag(site: Site, graph: DatasetGraph, files: DagFiles, done: set[str], priority: int):
    """The :class:`htcondor2.dags.DAG` for one association: one layer per node, hooks on every node."""
    from htcondor2 import dags

    owl = str(owl_executable())
    root = _plain(str(site.root), "site directory")
    dag = dags.DAG(
        jobstate_log=files.jobstate_log,
        node_status_file=dags.NodeStatusFile(files.node_status, update_time=NODE_STATUS_INTERVAL),
        dagman_job_attributes={"OwlAssociation": f'"{graph.dataset}"', "OwlWorkflow": f'"{graph.workflow.name}"',
                               SITE_ATTR: quoted(files.site_id)},
    )
    layers = {}
    for node in graph.nodes.values():
        spec = node.stage
        hook_args = ["osf", "hook", "pre", "--site", root, spec.column, node.dataset, "$JOB"]
        post_args = ["osf", "hook", "post", "--site", root, spec.column, node.dataset, "$JOB", "$RETURN", "$RETRY",
                     "$MAX_RETRIES"]
        layer = dag.layer(
            name=node.name,
            submit_description=files.submit_file(spec.name),
            vars=[{"dataset": node.dataset, "node": node.name,
                   MEMORY_VAR: str(files.memory[node.name].mb),
                   RETRY_VAR: "$(RETRY)"}],  # DAGMan substitutes the attempt number
            retries=spec.retries,
            retry_unless_exit=graph.workflow.retry_unless_exit,
            pre=dags.Script(owl, hook_args, retry=True, retry_status=PRE_DEFER_CODE, retry_delay=PRE_DEFER_SECONDS),
            post=dags.Script(owl, post_args),
            pre_skip_exit_code=PRE_SKIP_CODE,
            priority=priority + spec.priority,
            category=spec.category,
            done=node.name in done,
        )
        for parent in node.parents:
            layer.add_parents(layers[parent])
        layers[node.name] = layer
    return dag


class _NodeNames:
    """Every layer holds exactly one node, named like the layer (``RF``, ``CA_j9cv58abq``)."""

    def generate(self, layer_name: str, node_index: int) -> str:
        return layer_name

    def parse(self, node_name: str) -> tuple[str, int]:
        return node_name, 0


def dag_text(written: str, files: DagFiles, max_jobs: dict[str, int]) -> str:
    """Finish ``write_dag``'s text: add an absolute CONFIG and MAXJOBS, and put the nodes in workflow order.

    ``write_dag`` walks sibling nodes in hash order, which changes from one Python process to the
    next; listing each node's lines (and the edges to its children) in the workflow's order makes
    the same association always give the same file, so DAGs can be compared and diffed.
    """
    lines = written.splitlines()
    meta_end, nodes_start, nodes_end = (lines.index(m) for m in
                                        ("# END META", "# BEGIN NODES AND EDGES", "# END NODES AND EDGES"))
    order = list(files.nodes)
    blocks: dict[str, list[str]] = {}
    current = ""
    for line in lines[nodes_start + 1:nodes_end]:
        if line.startswith("JOB "):
            current = line.split()[1]
        blocks.setdefault(current, []).append(line)
    for name, block in blocks.items():
        own = [ln for ln in block if not ln.startswith("PARENT ")]
        edges = sorted((ln for ln in block if ln.startswith("PARENT ")), key=lambda ln: order.index(ln.split()[-1]))
        blocks[name] = own + edges
    mine = [f"CONFIG {files.config}", *(f"MAXJOBS {category} {limit}" for category, limit in max_jobs.items())]
    head = [f"# owlpipe: workflow {files.workflow} for {files.dataset}; submit with:",
            f"#   {files.submit_command()}"]
    body = [ln for name in order for ln in blocks[name]]
    return "\n".join([*head, *lines[:meta_end], *mine, *lines[meta_end:nodes_start + 1], *body,
                      *lines[nodes_end:]]) + "\n"


def archive_run_files(files: DagFiles) -> Path | None:
    """Move the files of a previous DAGMan run aside (``runs/<time>/``): a rewritten DAG starts clean,
    ``condor_submit_dag`` needs no ``-force``, and nothing of the old run is lost."""
    old = [p for p in files.directory.glob(f"{files.dataset}.dag.*")
           if p.name.endswith(RUN_FILE_SUFFIXES) or ".rescue" in p.name]
    old += [p for p in (files.node_status, files.jobstate_log) if p.exists()]
    if files.node_dir.exists() and any(files.node_dir.iterdir()):
        old.append(files.node_dir)
    if not old:
        return None
    runs = files.directory / "runs"
    runs.mkdir(exist_ok=True)
    dest = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%dT%H%M%S-"), dir=runs))
    for p in old:
        p.rename(dest / p.name)
    return dest


def done_nodes(bb: Blackboard, graph: DatasetGraph) -> set[str]:
    """Nodes whose rows are all complete (or not applicable) on the OSF (one query for the family)."""
    family = {e.dataset: e for e in [bb.get(graph.dataset), *bb.query(parent=graph.dataset)]}
    done = set()
    for node in graph.nodes.values():
        rows = [family[node.dataset]] + ([e for e in family.values() if e.parent == node.dataset])
        if all(e.letter(node.stage.column) in "cn" for e in rows):
            done.add(node.name)
    return done


def expand(bb: Blackboard, workflow: Workflow, dataset: str) -> DatasetGraph:
    """The association's graph with its members as the OSF knows them."""
    ds = parse_dataset(dataset)
    bb.get(ds)  # UnknownDataset names the dataset if it was never registered
    return workflow.expand(ds, bb.members(ds))


def write_dag(site: Site, workflow: Workflow, dataset: str, bb: Blackboard, *, priority: int | None = None
              ) -> DagFiles:
    """Write (or rewrite) the DAG of one association into ``<site>/dags/<assoc>/``."""
    from htcondor2 import dags

    graph = expand(bb, workflow, dataset)
    base = dag_files(site, graph.dataset)
    if base.lock.exists():
        raise DagError(f"{base.dag} is running (lock file {base.lock.name} exists): remove it with "
                       f"'owl dag remove {graph.dataset}' before writing it again")
    done = done_nodes(bb, graph)
    files = DagFiles(base.directory, graph.dataset, workflow.name, graph.nodes, frozenset(done),
                     site_identity(bb.engine), node_requests(site, graph))
    files.directory.mkdir(parents=True, exist_ok=True)
    archive_run_files(files)
    files.node_dir.mkdir(exist_ok=True)
    texts = {files.submit_file(spec.name): submit_description(site, files, spec, workflow)
             for spec in workflow.node_stages}
    texts[files.config] = dagman_config(site)
    dag = build_dag(site, graph, files, done, workflow.priority(site) if priority is None else priority)
    with tempfile.TemporaryDirectory(dir=files.directory, prefix=".render-") as scratch:
        dags.write_dag(dag, Path(scratch), dag_file_name=files.dag.name, node_name_formatter=_NodeNames())
        texts[files.dag] = dag_text((Path(scratch) / files.dag.name).read_text(), files, workflow.max_jobs(site))
    write_files(files.directory, texts)
    return files


def write_files(directory: Path, texts: dict[Path, str]) -> None:
    """Replace files in one directory atomically, each readable by the pool's job owner (who may not be
    the site's owner); unchanged files are left alone, and the directory is synced once."""
    staged: list[tuple[str, Path]] = []
    try:
        for path, text in texts.items():
            if path.exists() and path.read_text() == text:
                continue
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
            staged.append((tmp, path))
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
                fh.flush()
                os.fchmod(fd, 0o644)
                os.fsync(fd)
        for tmp, path in staged:
            os.replace(tmp, path)
        fsync_dir(directory)
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise
