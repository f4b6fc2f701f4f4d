"""Best reference files from a local CRDS cache, computed offline and in-process.

Why in-process: loading a whole HST context costs about half a second, after which one dataset's
best references take about a millisecond. The RF stage pays the load once per process, and a
reprocessing campaign pays it once for 100,000 catalogued datasets (:func:`best_references` with a
:class:`RefContext` from :func:`load_context`), instead of shelling out to ``crds bestrefs`` per file.

The cache is ``$CRDS_PATH`` when set, as crds users expect, else the site's ``areas.crds``. It needs
``mappings/hst/*.pmap|imap|rmap`` and ``config/hst/server_config`` (:func:`write_server_config`);
reference files live in ``references/hst/`` (flat) or ``references/hst/<instrument>/``.

The lookup itself is crds's own (header conditioning, instrument hooks such as the ACS bias
preconditioning, relevance expressions, USEAFTER dates), so results equal ``crds bestrefs``'. Two
things differ on purpose: a required type without a match is an error here (crds bestrefs quietly
writes ``N/A``), and the error names the matching parameter that failed, which crds does not say.

crds is imported inside functions: ``import crds`` costs ~0.45 s, which commands that never look up
references should not pay.
"""

from __future__ import annotations

import os
import pprint
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.core.errors import BadInput, ConfigError, MissingReference, Unsupported
from pipeline.core.fsutil import atomic_path, atomic_write

if TYPE_CHECKING:
    from pipeline.core.config import Site

OBSERVATORY = "hst"
NA = "N/A"
#: The crds modules the functions here import when they run (what a stage loads ahead: ``Stage.modules``).
CRDS_MODULES = ("crds.core.heavy_client", "crds.core.rmap", "crds.core.selectors", "crds.core.utils")

#: IRAF environment prefix per instrument, as written into headers (``jref$m4r1753rj_bia.fits``).
IRAF_PREFIX: dict[str, str] = {
    "ACS": "jref",
    "WFC3": "iref",
    "COS": "lref",
    "STIS": "oref",
    "WFPC2": "uref",
    "NICMOS": "nref",
}
_PREFIX_INSTRUMENT = {prefix: inst.lower() for inst, prefix in IRAF_PREFIX.items()}

_CONTEXT_RE = re.compile(r"^hst(_\d{4})?\.pmap$")
_SYMBOLIC_LATEST = {"latest", "hst-latest", "hst-operational", "operational"}

#: What an offline cache's ``config/hst/server_config`` must hold for crds (library and command line):
#: ``observatory`` and ``operational_context`` name the default context, ``force_remote_mode`` is read
#: whenever CRDS_MODE is local or auto, ``last_synced`` on every offline load, ``bad_files_list`` when
#: crds screens contexts for bad files, ``edit_context``/``versions_context`` by symbolic names.
_SERVER_CONFIG_KEYS = ("observatory", "operational_context", "force_remote_mode", "last_synced",
                       "bad_files_list")


# ---------------------------------------------------------------------------------------------- cache


def cache_root(site: Site | None = None) -> Path:
    """The CRDS cache to use: ``$CRDS_PATH`` if set, else the site's ``areas.crds``."""
    env = os.environ.get("CRDS_PATH")
    if env:
        return Path(env).expanduser().resolve()
    if site is not None:
        return site.areas.crds
    raise ConfigError("no CRDS cache: set CRDS_PATH or run inside a site (--site DIR or OWL_SITE)")


def server_config_path(cache: Path) -> Path:
    return cache / "config" / OBSERVATORY / "server_config"


def write_server_config(cache: Path, operational_context: str, *, last_synced: str = "") -> Path:
    """Write the minimal ``server_config`` that lets crds use ``cache`` with no server at all."""
    info = {
        "observatory": OBSERVATORY,
        "operational_context": operational_context,
        "edit_context": operational_context,
        "versions_context": operational_context,
        "force_remote_mode": False,
        "bad_files_list": [],
        "bad_files": "",
        "last_synced": last_synced or "offline cache written by owlpipe",
        "mappings": [],
        "crds_version": {},
    }
    path = server_config_path(cache)
    with atomic_write(path, "w") as fh:
        fh.write(pprint.pformat(info) + "\n")
    return path


def _server_config_fix(cache: Path) -> str:
    return (f"write {server_config_path(cache)} as a Python dict literal with at least "
            + ", ".join(_SERVER_CONFIG_KEYS)
            + " (e.g. {'observatory': 'hst', 'operational_context': 'hst_0349.pmap', "
              "'force_remote_mode': False, 'last_synced': '', 'bad_files_list': []})")


def _check_cache(cache: Path, site_mode: str | None = None) -> None:
    mappings = cache / "mappings" / OBSERVATORY
    if not mappings.is_dir():
        raise ConfigError(f"CRDS cache {cache} has no {mappings.relative_to(cache)}/: point CRDS_PATH "
                          "(or the site's areas.crds) at a cache holding the .pmap/.imap/.rmap files")
    if not server_config_path(cache).is_file():
        raise ConfigError(f"CRDS cache {cache} is not configured for offline use: "
                          f"{_server_config_fix(cache)}")
    env_mode = os.environ.get("CRDS_MODE", "").strip().lower()
    mode = env_mode or (site_mode or "local").lower()
    if mode not in ("local", "auto"):
        where = "CRDS_MODE" if env_mode else "the site's crds.mode"
        raise ConfigError(f"{where}={mode} needs a CRDS server; owlpipe computes best references offline "
                          f"from the cache: set {where} to local")


_active_cache: Path | None = None


@contextmanager
def _crds_pointed_at(cache: Path) -> Iterator[None]:
    """Point crds at ``cache`` while it reads mappings and config, then restore ``$CRDS_PATH``.

    crds memoises contexts and config by name, not by cache, so switching caches in one process
    flushes those memos (two caches may both hold an ``hst_0001.pmap``). Loaded contexts keep their
    own parsed rules, so they stay valid after the switch.
    """
    global _active_cache
    from crds.core import utils

    cache = cache.resolve()
    if _active_cache != cache:
        utils.clear_function_caches()
        _active_cache = cache
    previous = os.environ.get("CRDS_PATH")
    os.environ["CRDS_PATH"] = str(cache)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("CRDS_PATH", None)
        else:
            os.environ["CRDS_PATH"] = previous


def operational_context(cache: Path) -> str:
    """The cache's default context, read with crds's own loader (what crds calls 'latest' offline)."""
    _check_cache(cache)
    from crds.core import heavy_client

    try:
        with _crds_pointed_at(cache):
            info = heavy_client.load_server_info(OBSERVATORY)
    except SystemExit:  # crds exits the process on an unreadable server_config
        raise ConfigError(f"CRDS cache {cache}: unreadable server_config: "
                          f"{_server_config_fix(cache)}") from None
    name = str(info.get("operational_context") or info.get("latest_context") or "")
    if not _CONTEXT_RE.fullmatch(name):
        raise ConfigError(f"CRDS cache {cache}: server_config has no valid operational_context "
                          f"(got {name!r}): {_server_config_fix(cache)}")
    return name


def resolve_context(cache: Path, explicit: str | None = None, site_default: str | None = None) -> str:
    """Choose the context: ``explicit`` (--context), else ``$CRDS_CONTEXT``, else the site's
    ``crds.context``, else the cache's operational context. Symbolic 'latest' means the latter;
    date-based contexts need a CRDS server and are refused."""
    name = explicit or os.environ.get("CRDS_CONTEXT") or site_default or ""
    if not name or name.lower() in _SYMBOLIC_LATEST:
        return operational_context(cache)
    name = os.path.basename(name)
    if not _CONTEXT_RE.fullmatch(name):
        raise ConfigError(f"CRDS context {name!r} is not a pipeline mapping name like 'hst_0349.pmap' "
                          "(date-based and symbolic contexts need a CRDS server)")
    return name


# -------------------------------------------------------------------------------------------- context


@dataclass(frozen=True)
class Lookup:
    """One dataset's result: ``refs`` maps each type (lower case) to a file name or ``N/A``;
    ``failures`` maps each type that could not be assigned to the reason."""

    instrument: str
    refs: dict[str, str]
    failures: dict[str, str] = field(default_factory=dict)


class RefContext:
    """A fully loaded CRDS context, reused for any number of lookups.

    crds keeps the parsed rmaps inside the context object, so one instance answers every dataset
    without touching the disk again.
    """

    def __init__(self, name: str, cache: Path, pmap: Any) -> None:
        self.name = name
        self.cache = cache
        self.pmap = pmap
        self._imaps: dict[str, Any] = {}
        self._parkey_cache: dict[str, list[str]] = {}

    def __repr__(self) -> str:
        return f"RefContext({self.name!r}, cache={str(self.cache)!r})"

    @property
    def instruments(self) -> list[str]:
        return sorted(str(k).upper() for k in self.pmap.selections)

    def reftypes(self, instrument: str) -> list[str]:
        """The reference types the context defines for ``instrument`` (lower case)."""
        return sorted(self._imap(instrument).selections.keys())

    def _parkeys(self, instrument: str) -> list[str]:
        """The matching parameters of every rule for ``instrument`` (what crds minimises a header to)."""
        if instrument not in self._parkey_cache:
            self._parkey_cache[instrument] = sorted({*self._imap(instrument).get_required_parkeys(), "INSTRUME"})
        return self._parkey_cache[instrument]

    def imap_name(self, instrument: str) -> str:
        return str(self._imap(instrument).basename)

    def rmap_names(self, instrument: str) -> dict[str, str]:
        """{reftype: rmap file name} (or the special value, e.g. N/A) for ``instrument``."""
        return {str(t): str(getattr(r, "basename", r)) for t, r in self._imap(instrument).selections.items()}

    def _imap(self, instrument: str) -> Any:
        """The instrument's rules, read in full on first use (one instrument costs 0.01-0.2 s of the
        ~0.6 s a whole context takes, and a stage only needs its own)."""
        key = instrument.upper()
        if key in self._imaps:
            return self._imaps[key]
        if key not in self.instruments:
            raise Unsupported(f"instrument {key!r} is not in CRDS context {self.name} "
                              f"(it has {', '.join(self.instruments)})", keyword="INSTRUME")
        try:
            with _crds_pointed_at(self.cache):
                imap = self.pmap.get_imap(key)
                imap.force_load()
        except SystemExit:  # crds exits on some broken caches
            raise ConfigError(f"crds gave up loading the {key} rules of {self.name} from {self.cache}: "
                              "check the cache's mappings") from None
        except Exception as exc:
            raise ConfigError(f"the {key} rules of CRDS context {self.name} in {self.cache} cannot be "
                              f"loaded: {_one_line(exc)}") from None
        _memoize_matching(imap)
        self._imaps[key] = imap
        return imap

    def lookup(self, params: Mapping[str, Any], reftypes: Iterable[str] | None = None) -> Lookup:
        """Best references for one dataset's matching parameters (header keywords → values)."""
        from crds.core import utils

        instrument = str(params.get("INSTRUME", "")).strip().upper()
        if not instrument:
            raise BadInput("header has no INSTRUME keyword: cannot choose reference rules",
                           keyword="INSTRUME")
        imap = self._imap(instrument)
        # crds conditions every header value, then keeps the context's parameters; keeping first
        # (a few dozen keys instead of hundreds) gives the same header at a fraction of the cost
        upper = {str(k).upper(): v for k, v in params.items()}
        minimal = {key: utils.condition_value(upper[key]) if _simple_value(upper.get(key)) else "UNDEFINED"
                   for key in self._parkeys(instrument)}
        include = [t.lower() for t in reftypes] if reftypes is not None else None
        raw = imap.get_best_references(minimal, include=include)
        refs: dict[str, str] = {}
        failures: dict[str, str] = {}
        for reftype, value in raw.items():
            text = str(value)
            if not text.upper().startswith("NOT FOUND"):
                refs[reftype] = text
            elif text.upper().startswith("NOT FOUND N/A"):
                refs[reftype] = NA
            else:
                failures[reftype] = _explain(imap, reftype, minimal, text[len("NOT FOUND"):].strip())
        return Lookup(instrument, refs, failures)


def _simple_value(value: Any) -> bool:
    """What crds can match on (it drops other types with a warning per key)."""
    return isinstance(value, str | int | float | bool)


_contexts: dict[tuple[Path, str], RefContext] = {}


def load_context(cache: Path, context: str | None = None, *, site_default: str | None = None,
                 site_mode: str | None = None, instruments: Iterable[str] | None = None) -> RefContext:
    """Load (once per process) a context from ``cache`` with the rules of ``instruments`` (default:
    all of them) read in full now, so a missing or corrupt rmap is a :class:`ConfigError` here rather
    than a surprise in the middle of a campaign. Other instruments load on first use.
    """
    cache = Path(cache).resolve()
    _check_cache(cache, site_mode)
    name = resolve_context(cache, context, site_default)
    key = (cache, name)
    ctx = _contexts.get(key)
    if ctx is None:
        if not (cache / "mappings" / OBSERVATORY / name).is_file():
            raise ConfigError(f"CRDS context {name} is not in the cache {cache}/mappings/{OBSERVATORY}/")
        from crds.core import rmap

        try:
            with _crds_pointed_at(cache):
                pmap = rmap.get_cached_mapping(name)
        except SystemExit:
            raise ConfigError(f"crds gave up loading {name} from {cache}: check the cache's mappings "
                              f"and {_server_config_fix(cache)}") from None
        except Exception as exc:
            raise ConfigError(f"CRDS context {name} in {cache} cannot be loaded: {_one_line(exc)}") from None
        ctx = _contexts[key] = RefContext(name, cache, pmap)
    for instrument in ctx.instruments if instruments is None else instruments:
        ctx._imap(instrument)
    return ctx


class _MemoizedMatch:
    """Stands in for a crds MatchSelector's ``get_selection``, remembering its winnowing.

    crds re-winnows every match case of an rmap for every dataset (hundreds of cases for ACS darks,
    ~80% of a lookup). The candidates depend only on the values of the selector's own parameters,
    which few distinct datasets span, so replaying the remembered candidates, in the same order and
    ending in the same exception, gives crds's result at a fraction of the cost. The date-dependent
    USEAFTER choice below each candidate is still made per dataset.
    """

    def __init__(self, selector: Any) -> None:
        self.original = selector.get_selection
        self.params = tuple(selector._parameters)
        self.memo: dict[tuple, tuple[list, tuple[type, tuple] | None]] = {}

    def __call__(self, header: Mapping[str, Any]) -> Iterator[Any]:
        key = tuple(header.get(p, "UNDEFINED") for p in self.params)
        entry = self.memo.get(key)
        if entry is None:
            found: list = []
            ending = None
            try:
                found.extend(self.original(header))
            except Exception as exc:  # crds ends every winnowing with MatchingError
                ending = (type(exc), exc.args)
            entry = self.memo[key] = (found, ending)
        found, ending = entry
        yield from found
        if ending is not None:
            raise ending[0](*ending[1])  # a fresh exception: re-raising one object grows its traceback


def _memoize_matching(imap: Any) -> None:
    from crds.core import selectors

    for rmap in imap.selections.normal_values():
        selector = getattr(rmap, "selector", None)
        # rmaps are shared between contexts: wrap each selector once
        if isinstance(selector, selectors.MatchSelector) and "get_selection" not in vars(selector):
            selector.get_selection = _MemoizedMatch(selector)


def changed_types(old: RefContext, new: RefContext) -> dict[str, list[str]]:
    """Per instrument, the reference types whose rules differ between two contexts.

    Only these types can change a dataset's best references, so a reprocessing selection looks up
    just them (about 0.3 ms per dataset for a few types instead of ~0.8 ms for all of ACS's 21).
    """
    changed: dict[str, list[str]] = {}
    for instrument in sorted(set(old.instruments) | set(new.instruments)):
        before = old.rmap_names(instrument) if instrument in old.instruments else {}
        after = new.rmap_names(instrument) if instrument in new.instruments else {}
        types = sorted(t for t in set(before) | set(after) if before.get(t) != after.get(t))
        if types:
            changed[instrument] = types
    return changed


def best_references(params: Mapping[str, Any], ctx: RefContext,
                    reftypes: Iterable[str] | None = None) -> dict[str, str]:
    """{reftype: file name or ``N/A``} for one dataset; a failed lookup raises :class:`MissingReference`."""
    result = ctx.lookup(params, reftypes)
    if result.failures:
        raise missing_reference_error(result, ctx)
    return result.refs


def missing_reference_error(result: Lookup, ctx: RefContext, path: Path | None = None) -> MissingReference:
    lines = [f"{reftype.upper()}: {reason}" for reftype, reason in sorted(result.failures.items())]
    first = sorted(result.failures)[0].upper()
    return MissingReference(f"no {result.instrument} best reference in {ctx.name} for " + "; ".join(lines),
                            path=path, keyword=first)


def crds_version() -> str:
    """The version string crds itself records in CRDS_VER."""
    from crds.core import heavy_client

    return str(heavy_client.version_info())


# ------------------------------------------------------------------------------------ error diagnosis


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _explain(imap: Any, reftype: str, header: dict[str, Any], crds_text: str) -> str:
    """Name the parameter that failed to match.

    crds reports only 'No match found.' or 'No selection <= date'; replay its winnowing on the same
    conditioned header to find the first rmap parameter whose value leaves no candidate rule.
    """
    try:
        rmap = imap.get_rmap(reftype)
        prepared = rmap.map_irrelevant_parkeys_to_na(rmap._precondition_header(rmap, dict(header)))
        why = _walk(rmap.selector, prepared)
    except Exception:  # the replay relies on crds internals; fall back to crds's own words
        why = None
    if why is None:
        return crds_text or "no match"
    return f"{why} [{rmap.basename}]"


def _walk(selector: Any, header: Mapping[str, Any]) -> str | None:
    from crds.core import selectors

    if isinstance(selector, selectors.MatchSelector):
        params = selector._parameters
        values = [header.get(p, "UNDEFINED") for p in params]
        cases = dict(selector._match_selections)  # match tuple -> (matchers, nested choice)
        # a value that no rule names at all is the clearest culprit, wherever it sits
        for i, parkey in enumerate(params):
            status = [sel[0][i].match(values[i]) for sel in cases.values()]
            if values[i] != "N/A" and 1 not in status and -1 in status:
                if values[i] == "UNDEFINED":
                    return f"{parkey} is missing from the header"
                return f"{parkey}={values[i]!r} is named by no rule ({_offered(cases, i)})"
        # otherwise crds's own order: bind parameters one by one until no rule survives
        remaining = cases
        for i, parkey in enumerate(params):
            survivors = {key: sel for key, sel in remaining.items() if sel[0][i].match(values[i]) != -1}
            if not survivors:
                return (f"{parkey}={values[i]!r} matches no rule given the other parameters "
                        f"({_offered(remaining, i)})")
            remaining = survivors
        for _matchers, choice in remaining.values():
            if isinstance(choice, selectors.Selector) and (why := _walk(choice, header)):
                return why
        return None
    if isinstance(selector, selectors.UseAfterSelector):
        params = "/".join(selector._parameters)
        for parkey in selector._parameters:
            if str(header.get(parkey, "UNDEFINED")).strip() == "UNDEFINED":
                return f"{parkey} is missing from the header"
        try:
            date = selector._validate_header(header)
        except Exception as exc:
            return f"{params}: {_one_line(exc)}"
        keys = [s.key for s in selector._selections]
        if not keys:
            return f"{params}={date!r}: the rule has no USEAFTER entries"
        if date < keys[0]:
            return f"{params}={date!r} is before the earliest USEAFTER {keys[0]!r}"
    return None


def _offered(cases: Mapping[tuple, Any], index: int) -> str:
    wanted = sorted({v for key in cases for v in str(key[index]).split("|") if v != "N/A"})
    return "rules offer " + ", ".join(wanted[:8]) + (", ..." if len(wanted) > 8 else "")


def dataset_parameters(path: Path) -> dict[str, Any]:
    """The matching parameters of a FITS dataset: the union of all its headers, first value winning.

    This is what ``crds bestrefs --files`` matches on; primary keywords alone are not enough (ACS
    bias selection needs NAXIS1/2, LTV1/2 and CCDCHIP from the SCI extension).
    """
    from astropy.io import fits

    params: dict[str, Any] = {}
    try:
        with fits.open(path, memmap=True, do_not_scale_image_data=True) as hdul:
            for hdu in hdul:
                for card in hdu.header.cards:
                    key = card.keyword
                    if key and key not in params and key not in ("COMMENT", "HISTORY"):
                        value = card.value
                        if isinstance(value, str | int | float | bool):
                            params[key] = value.strip() if isinstance(value, str) else value
    except OSError as exc:
        raise BadInput(f"{Path(path).name}: not a readable FITS file: {_one_line(exc)}", path=path) from None
    return params


def is_na(value: object) -> bool:
    """Whether a header reference value means "no file" (blank or ``N/A``)."""
    return value is None or str(value).strip() == "" or str(value).strip().upper() == NA


def header_keyword(reftype: str) -> str:
    """FITS keyword holding a reference type (HST: the type name, upper case)."""
    return reftype.upper()


def header_value(instrument: str, filename: str) -> str:
    """``jref$m4r1753rj_bia.fits`` for a file name, ``N/A`` kept as is."""
    if filename.upper() == NA:
        return NA
    return f"{IRAF_PREFIX[instrument.upper()]}${filename}".lower()


def header_updates(result: Lookup, ctx: RefContext, version: str | None = None) -> dict[str, str]:
    """Keywords to write into a raw primary header for a successful lookup."""
    if result.instrument not in IRAF_PREFIX:
        raise Unsupported(f"no IRAF reference prefix known for instrument {result.instrument}",
                          keyword="INSTRUME")
    updates = {header_keyword(t): header_value(result.instrument, f) for t, f in sorted(result.refs.items())}
    updates["CRDS_CTX"] = ctx.name
    updates["CRDS_VER"] = version if version is not None else crds_version()
    return updates


#: Comments for keywords RF may add; CRDS_VER gets none because its value nearly fills the card.
_COMMENTS = {"CRDS_CTX": "CRDS context used for best references"}


def update_primary_header(path: Path, updates: Mapping[str, str]) -> None:
    """Rewrite ``path`` with new primary-header values: temp file beside it, then rename.

    Readers never see a half-written raw; pixel bytes are copied unscaled; a CHECKSUM present
    before stays valid after.
    """
    from astropy.io import fits

    path = Path(path)
    mode = path.stat().st_mode & 0o7777
    with fits.open(path, memmap=True, do_not_scale_image_data=True) as hdul:
        primary = hdul[0].header
        for key, value in updates.items():
            if key in primary:
                primary[key] = value
            else:
                primary[key] = (value, _COMMENTS.get(key, ""))
        checksum = "CHECKSUM" in primary
        with atomic_path(path) as tmp:
            # archive raws carry a few cards astropy deems non-standard; fix them silently rather
            # than refuse a file calwf3/calacs accept
            hdul.writeto(tmp, overwrite=True, output_verify="silentfix", checksum=checksum)
            os.chmod(tmp, mode)


# ---------------------------------------------------------------------------------------- locating


def reference_dir(cache: Path, instrument: str) -> list[Path]:
    """Directories a reference for ``instrument`` may be in: crds's flat or per-instrument layout."""
    refs = cache / "references" / OBSERVATORY
    return [refs, refs / instrument.lower()]


def locate_reference(value: str, cache: Path, environ: Mapping[str, str] | None = None) -> Path | None:
    """The file a header reference value names, or None for ``N/A``/blank.

    ``jref$name`` resolves exactly as hstcal does when ``$jref`` is set (plain concatenation, so the
    variable needs its trailing slash); otherwise to the CRDS cache. The result may not exist.
    """
    env = os.environ if environ is None else environ
    text = value.strip()
    if is_na(text):
        return None
    if "$" in text and not text.startswith("$"):
        prefix, rest = text.split("$", 1)
        if prefix in env:
            return Path(env[prefix] + rest)
        instrument = _PREFIX_INSTRUMENT.get(prefix.lower(), "")
        candidates = reference_dir(cache, instrument) if instrument else [cache / "references" / OBSERVATORY]
        for directory in candidates:
            if (directory / rest).exists():
                return directory / rest
        return candidates[0] / rest
    if text.startswith("$"):
        var, _, rest = text[1:].partition("/")
        return Path(env.get(var, "$" + var)) / rest
    return Path(text)


# ------------------------------------------------------------------------------------------- files


@dataclass(frozen=True)
class FileBestrefs:
    """Best references for one raw file, with what its header said before."""

    path: Path
    lookup: Lookup
    updates: dict[str, str]
    previous: dict[str, str]

    @property
    def changed(self) -> dict[str, tuple[str, str]]:
        """Reference keywords whose value differs from the header's: {keyword: (old, new)}."""
        return {k: (self.previous.get(k, ""), v) for k, v in self.updates.items()
                if k not in ("CRDS_CTX", "CRDS_VER") and self.previous.get(k, "").lower() != v.lower()}


def bestrefs_for_file(path: Path, ctx: RefContext, version: str | None = None) -> FileBestrefs:
    """Look up one raw file (no writing); failures are in ``result.lookup.failures``."""
    params = dataset_parameters(path)
    try:
        lookup = ctx.lookup(params)
    except (BadInput, Unsupported) as exc:
        raise type(exc)(f"{Path(path).name}: {exc.message}", path=path, keyword=exc.keyword) from None
    updates = header_updates(lookup, ctx, version) if not lookup.failures else {}
    previous = {k: str(params[k]).strip() for k in updates if k in params}
    return FileBestrefs(Path(path), lookup, updates, previous)


def member_raws(work: Path, member: str) -> list[Path]:
    """The raw files of one exposure that carry reference keywords: ``_raw`` (WFC3, ACS, STIS) or
    COS's ``_rawtag[_a|_b]``, ``_rawacq``, ``_rawaccum``."""
    return sorted(work.glob(f"{member}_raw*.fits"))


def assign_bestrefs(paths: Iterable[Path], ctx: RefContext) -> list[FileBestrefs]:
    """The RF step for a set of raws: all look-ups first, then the header updates.

    All or nothing: if any file has a failed look-up, no header is touched and the
    :class:`MissingReference` names every failed type of every file.
    """
    version = crds_version()
    results = [bestrefs_for_file(p, ctx, version) for p in paths]
    failed = [r for r in results if r.lookup.failures]
    if failed:
        parts = [missing_reference_error(r.lookup, ctx, r.path).line() for r in failed]
        first = failed[0]
        raise MissingReference("; ".join(parts), path=first.path if len(failed) == 1 else None,
                               keyword=sorted(first.lookup.failures)[0].upper())
    for r in results:
        update_primary_header(r.path, r.updates)
    return results
