"""Turn a header reference value (``iref$name.fits``) into a file path the way hstcal does.

hstcal (``cvos/irafinit.c``, ``tables/c_vfn2osfn.c``) resolves ``name$rest`` as
``getenv("name") + "rest"`` with **no separator inserted**, so ``iref`` must end in ``/``; with
``iref`` unset the literal ``irefrest`` is kept and the file is not found. ``$iref/rest`` is the
Unix form and needs no trailing slash; absolute paths are used as they are.

We honour the environment exactly like that, because astronomers reuse their hstcal set-up. Only
when the variable is unset do we fall back to a CRDS cache (the site's, else ``$CRDS_PATH``), which
is where bestrefs put the files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pipeline.core.errors import MissingReference
from pipeline.science.refs import IRAF_PREFIX, is_na, locate_reference


def crds_cache(site: object | None, environ: Mapping[str, str]) -> Path | None:
    """The CRDS cache to fall back on: ``$CRDS_PATH``, else the site's, else none.

    Same precedence as :func:`pipeline.science.refs.cache_root`, so RF and CA always read one cache.
    """
    if environ.get("CRDS_PATH"):
        return Path(environ["CRDS_PATH"]).expanduser()
    if site is not None:
        return Path(site.areas.crds)  # type: ignore[attr-defined]
    return None


def resolve_reference(value: str, *, site: object | None = None,
                      environ: Mapping[str, str] | None = None) -> Path | None:
    """The path a reference keyword value names (None for ``N/A``); the file may not exist."""
    env = os.environ if environ is None else environ
    if is_na(value):
        return None
    text = str(value).strip()
    cache = crds_cache(site, env)
    if text.startswith("$"):
        var, _, rest = text[1:].partition("/")
        if var in env:
            return Path(env[var]) / rest
        text = f"{var}${rest}"  # unset: look in the cache like the iref$ form
    prefix = text.split("$", 1)[0] if "$" in text else None
    if prefix is not None and prefix not in env and cache is None:
        return Path(text.replace("$", "", 1))  # hstcal keeps the literal name: irefsyn_ccd.fits
    if cache is None:
        cache = Path("/nonexistent-crds-cache")  # only reached when the variable is set
    return locate_reference(text, cache, env)


def require_reference(header: Mapping[str, object], keyword: str, *, site: object | None = None,
                      environ: Mapping[str, str] | None = None, optional: bool = False) -> Path | None:
    """Resolve ``keyword`` from a primary header and insist that the file exists.

    Raises :class:`MissingReference` naming the keyword, its value and the resolved path. With
    ``optional`` a missing keyword or ``N/A`` gives None instead of an error.
    """
    env = os.environ if environ is None else environ
    if keyword not in header:
        if optional:
            return None
        raise MissingReference(f"keyword {keyword} is missing from the primary header", keyword=keyword)
    value = str(header[keyword]).strip()
    path = resolve_reference(value, site=site, environ=env)
    if path is None:
        if optional:
            return None
        raise MissingReference(f"{keyword} = '{value}': a reference file is required", keyword=keyword)
    if not path.is_file():
        raise MissingReference(f"{keyword} = '{value}' resolves to {path}, which does not exist"
                               f"{_hint(value, env)}", keyword=keyword, path=path)
    return path


def _hint(value: str, env: Mapping[str, str]) -> str:
    """Explain the classic mistake: ``iref`` set without its trailing slash."""
    if "$" not in value or value.startswith("$"):
        return ""
    prefix = value.split("$", 1)[0]
    setting = env.get(prefix)
    if setting is None:
        return f" (${prefix} is not set and no CRDS cache was given)"
    if not setting.endswith("/"):
        return f" (${prefix}={setting} lacks the trailing '/' that hstcal-style names need)"
    return ""


def iraf_prefix(instrument: str) -> str:
    """``iref``, ``jref``, ... for an instrument name as written in INSTRUME."""
    return IRAF_PREFIX[instrument.strip().upper()]
