"""Site configuration: one TOML file per site, overridable by ``OWL_*`` variables and CLI flags.

Precedence, lowest first: built-in defaults (the models below, mirrored in ``config/owl.toml``),
the site's ``owl.toml``, ``OWL_<SECTION>__<KEY>`` environment variables, explicit overrides passed
by a command line. A validation error names the file and the dotted key at fault.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pipeline.core.errors import ConfigError
from pipeline.core.names import DatasetName
from pipeline.core.resources import shipped_dir
from pipeline.core.typedload import Invalid, bounded, load

SITE_FILE = "owl.toml"
#: The shipped ``config/`` directory (default site file, instrument defaults); ``OWL_CONFIG_DIR`` overrides.
CONFIG_DIR = shipped_dir("config", "OWL_CONFIG_DIR")
ENV_PREFIX = "OWL_"


section = dataclasses.dataclass(kw_only=True)


class _Section:
    """A table of ``owl.toml``: iterating gives ``(key, value)`` pairs."""

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return ((f.name, getattr(self, f.name)) for f in dataclasses.fields(self))

    def as_json(self) -> dict[str, Any]:
        """The settings as JSON values (paths as strings), e.g. for ``owl site show --json``."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))


@section
class Areas(_Section):
    """Directories of a site, relative to its root unless absolute."""

    inbox: Path = Path("inbox")
    receipt: Path = Path("receipt")
    work: Path = Path("work")
    archive: Path = Path("archive")
    dags: Path = Path("dags")
    quarantine: Path = Path("quarantine")
    logs: Path = Path("logs")
    crds: Path = Path("crds")
    #: Compiled-kernel caches (numba's), shared by every node of the site: a pool job's own HOME and
    #: scratch directory vanish with it, and without a cache each calibration compiles its kernels anew
    #: (~13 CPU-seconds for the WFC3/IR chain).
    cache: Path = Path("cache")

    def resolved(self, root: Path) -> Areas:
        return Areas(**{name: (root / p if not p.is_absolute() else p) for name, p in self})


@section
class Database(_Section):
    #: SQLAlchemy URL; empty means SQLite ``<root>/owl.db`` (WAL mode).
    url: str = ""
    #: Seconds a writer waits for a lock before giving up with a retryable LOCK_TIMEOUT.
    busy_timeout: float = bounded(30.0, gt=0)


@section
class Executor(_Section):
    kind: Literal["local", "condor"] = "local"
    workers: int = bounded(2, ge=1, le=256)
    #: CPUs the local executor's jobs share; 0: those this machine gives the executor.
    cpus: int = bounded(0, ge=0, le=1024)
    #: Memory (MB) the local executor's jobs may ask for in all; 0: the machine's (or its container's).
    memory_mb: int = bounded(0, ge=0)


@section
class Throttles(_Section):
    """DAGMan ``MAXJOBS`` per category and campaign limits."""

    max_jobs: dict[str, int] = bounded(factory=lambda: {"ca": 4, "md": 1, "ingest": 2})
    max_dags_in_flight: int = bounded(50, ge=1)


def _context_name(v: str) -> None:
    if v and not (v.startswith("hst") and v.endswith(".pmap")):
        raise ValueError(f"CRDS context must look like 'hst_NNNN.pmap', got {v!r}")


@section
class Crds(_Section):
    #: Context to use (``hst_0002.pmap``); empty means the cache's operational context (server_config).
    context: str = bounded("", check=_context_name)
    mode: Literal["local", "auto", "remote"] = "local"


@section
class Calibration(_Section):
    engine: Literal["auto", "builtin", "hstcal"] = "auto"
    #: Cores drizzlepac may use (1 is fastest on small machines).
    drizzle_cores: int = bounded(1, ge=1)
    #: Detectors whose raws 2FITS writes with PCTECORR = PERFORM (the archive's default for UVIS
    #: since 2016); empty keeps config/instruments' OMIT. The CTE branch costs about a minute per
    #: full-frame exposure.
    pctecorr: list[Literal["UVIS", "WFC"]] = bounded(factory=list)


@section
class Checks(_Section):
    #: AC fails when more than this fraction of science pixels carry a serious DQ flag.
    max_flagged_fraction: float = bounded(0.25, ge=0, le=1)


@section
class Watch(_Section):
    #: Seconds between inbox polls of ``owl watch``.
    interval: float = bounded(10.0, gt=0)


@section
class Condor(_Section):
    """What an HTCondor job's environment holds besides the site's own variables. The submitter's
    environment is never copied: a pool node's job sees only what is written here."""

    #: Directories (``:``-separated) put before the job's PATH, e.g. where hstcal's calwf3.e lives.
    path: str = ""
    #: Further variables for every job (``[condor.environment]`` table in owl.toml).
    environment: dict[str, str] = bounded(factory=dict)


@section
class Priorities(_Section):
    """DAGMan priorities per workflow: live data ahead of reprocessing."""

    new_science: int = 50
    recalibrate: int = 30
    reprocess: int = 10
    requested: int = 80


@section
class Console(_Section):
    """The operators' web console of ``owl serve`` (``/console``)."""

    #: Let the read-only pages (grid, dataset stories) open without login; actions always need one.
    public_read: bool = False
    #: Hours a console session lasts after login.
    session_hours: float = bounded(12.0, gt=0)


@section
class Service(_Section):
    """``owl serve``, the archive service: where users' webhooks may point (no requests into the site's
    own network unless allowed here)."""

    #: URL schemes a webhook may use; add "http" only for receivers on a trusted network.
    webhook_schemes: list[Literal["http", "https"]] = bounded(factory=lambda: ["https"])
    #: Hosts (``name``, ``*.domain``), addresses or networks (CIDR) a webhook may target although they are
    #: loopback, link-local or private; every other webhook host must resolve to public addresses only.
    webhook_allow: list[str] = bounded(factory=list)


@section
class SiteFile(_Section):
    """What ``owl.toml`` may contain."""

    name: str = "owl"
    areas: Areas = bounded(factory=Areas)
    database: Database = bounded(factory=Database)
    executor: Executor = bounded(factory=Executor)
    throttles: Throttles = bounded(factory=Throttles)
    crds: Crds = bounded(factory=Crds)
    calibration: Calibration = bounded(factory=Calibration)
    checks: Checks = bounded(factory=Checks)
    watch: Watch = bounded(factory=Watch)
    priorities: Priorities = bounded(factory=Priorities)
    condor: Condor = bounded(factory=Condor)
    console: Console = bounded(factory=Console)
    service: Service = bounded(factory=Service)


@section
class Site(SiteFile):
    """A loaded site: the file's settings plus where it lives and the instrument defaults."""

    root: Path
    config_file: Path | None = None
    instruments: dict[str, dict[str, Any]] = bounded(factory=dict)

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.root / 'owl.db'}"

    def work_dir(self, dataset: DatasetName) -> Path:
        return self.areas.work / dataset.name

    def trailer_path(self, dataset: DatasetName) -> Path:
        return self.areas.logs / f"{dataset.name}.trl"

    def environment(self) -> dict[str, str]:
        """Variables a stage process needs to find this site and its CRDS cache."""
        env = {"OWL_SITE": str(self.root), "CRDS_PATH": str(self.areas.crds), "CRDS_MODE": self.crds.mode,
               "NUMBA_CACHE_DIR": str(self.areas.cache / "numba")}
        if self.config_file is not None and self.config_file != self.root / SITE_FILE:
            env["OWL_CONFIG"] = str(self.config_file)
        if self.crds.context:
            env["CRDS_CONTEXT"] = self.crds.context
        return env

    def ensure_areas(self) -> None:
        for _, path in self.areas:
            path.mkdir(parents=True, exist_ok=True)


def _format_validation(err: Invalid, source: str) -> str:
    more = f" (and {len(err.problems) - 1} more)" if len(err.problems) > 1 else ""
    return f"{source}: {err.problems[0].line()}{more}"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}", path=path) from None


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted}: {part} is not a table")
    node[parts[-1]] = value


def _env_overrides(environ: dict[str, str]) -> dict[str, str]:
    """``OWL_EXECUTOR__WORKERS=4`` → ``{'executor.workers': '4'}`` (strings; loading converts them)."""
    out = {}
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX) and "__" in key:
            out[key[len(ENV_PREFIX):].lower().replace("__", ".")] = value
    return out


def load_instrument_defaults(config_dir: Path = CONFIG_DIR) -> dict[str, dict[str, Any]]:
    """Per-instrument defaults (calibration switches, header defaults) from ``config/instruments``."""
    out = {}
    for path in sorted((config_dir / "instruments").glob("*.toml")):
        out[path.stem] = _read_toml(path)
    return out


def find_site_dir(site_dir: Path | str | None = None) -> Path:
    """The site directory: the argument, else ``$OWL_SITE``, else the current directory."""
    chosen = site_dir or os.environ.get("OWL_SITE") or Path.cwd()
    return Path(chosen).expanduser().resolve()


def load_site(
    site_dir: Path | str | None = None,
    config: Path | str | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Site:
    """Load and validate a site; raise :class:`ConfigError` naming the file and key on any problem."""
    env = dict(os.environ if environ is None else environ)
    root = find_site_dir(site_dir if site_dir is not None else env.get("OWL_SITE"))
    cfg_path = Path(config or env.get("OWL_CONFIG") or root / SITE_FILE).expanduser().resolve()
    if not cfg_path.exists():
        raise ConfigError(
            f"no site configuration at {cfg_path}: create a site with 'owl init {root}' "
            "or point --site / OWL_SITE at one", path=cfg_path)
    tree = _read_toml(cfg_path)
    source = str(cfg_path)
    for dotted, value in _env_overrides(env).items():
        if dotted in {"site", "config"}:
            continue
        _set_dotted(tree, dotted, value)
        source = f"{cfg_path} (with OWL_* overrides)"
    for dotted, value in (overrides or {}).items():
        _set_dotted(tree, dotted, value)
        source = f"{cfg_path} (with command-line overrides)"
    try:
        parsed = load(SiteFile, tree)
    except Invalid as err:
        raise ConfigError(_format_validation(err, source), path=cfg_path) from None
    return Site(
        **{name: value for name, value in parsed if name != "areas"},
        areas=parsed.areas.resolved(root),
        root=root,
        config_file=cfg_path,
        instruments=with_pctecorr(load_instrument_defaults(), parsed.calibration.pctecorr),
    )


def with_pctecorr(instruments: dict[str, dict[str, Any]], detectors: list[str]) -> dict[str, dict[str, Any]]:
    """The instrument defaults with PCTECORR = PERFORM for ``detectors`` (where they have the switch)."""
    for defaults in instruments.values():
        for detector, switches in defaults.get("switches", {}).items():
            if detector in detectors and "PCTECORR" in switches:
                switches["PCTECORR"] = "PERFORM"
    return instruments


def init_site(root: Path | str, *, name: str | None = None) -> Site:
    """Create a site directory with its areas, a copy of the default ``owl.toml`` and an empty database."""
    root_path = Path(root).expanduser().resolve()
    root_path.mkdir(parents=True, exist_ok=True)
    cfg = root_path / SITE_FILE
    if not cfg.exists():
        text = (CONFIG_DIR / SITE_FILE).read_text()
        if name:
            text = text.replace('name = "owl"', f'name = "{name}"', 1)
        from pipeline.core.fsutil import atomic_write

        with atomic_write(cfg, "w") as fh:
            fh.write(text)
    site = load_site(root_path, environ={})
    site.ensure_areas()
    return site
