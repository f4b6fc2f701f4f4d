"""``owl bestrefs``: CRDS best references for raw files, with or without a site."""

from __future__ import annotations

import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pipeline.cli.common import config_option, echo_json, json_option, reports_errors, site_option
from pipeline.core.errors import ConfigError, MissingReference, OwlError

if TYPE_CHECKING:
    from pipeline.core.config import Site
    from pipeline.science.refs import FileBestrefs


def site_if_any(site_dir: str | None, config_file: str | None) -> Site | None:
    """The site when one is named or found; None when $CRDS_PATH alone will do (astronomers' use)."""
    from pipeline.core.config import load_site

    try:
        return load_site(site_dir, config_file)
    except ConfigError as exc:
        if site_dir or config_file or not os.environ.get("CRDS_PATH"):
            raise ConfigError(f"no CRDS cache: set CRDS_PATH, or use a site ({exc.line()})") from None
        return None


def _report(result: FileBestrefs, update: bool) -> None:
    lookup = result.lookup
    click.echo(f"{result.path.name}  {lookup.instrument}")
    if lookup.failures:
        for reftype, why in sorted(lookup.failures.items()):
            click.echo(f"  {reftype.upper():<9} FAILED  {why}")
        return
    changed = result.changed
    for keyword, value in result.updates.items():
        if keyword in ("CRDS_CTX", "CRDS_VER"):
            continue
        note = ""
        if keyword in changed:
            old = changed[keyword][0]
            if not old:
                note = "  (new keyword)" if update else "  (not in header)"
            else:
                note = f"  ({'was' if update else 'header has'} {old})"
        click.echo(f"  {keyword:<9} {value}{note}")


@click.command("bestrefs")
@click.argument("raws", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--context", help="CRDS context, e.g. hst_0349.pmap (default: $CRDS_CONTEXT, the site's "
                                "crds.context, else the cache's operational context)")
@click.option("--update", is_flag=True, help="write the references, CRDS_CTX and CRDS_VER into each header "
                                             "(atomically); without it, only report")
@json_option
@site_option
@config_option
@reports_errors
def bestrefs(raws: tuple[Path, ...], context: str | None, update: bool, as_json: bool,
             site_dir: str | None, config_file: str | None) -> None:
    """Best reference files for RAW files from the local CRDS cache (offline, crds in-process).

    The cache is $CRDS_PATH when set, else the site's CRDS area. A type with no matching rule
    fails with the parameter that did not match; the exit status is then 21.
    """
    from pipeline.science import refs

    site = site_if_any(site_dir, config_file)
    cache = refs.cache_root(site)
    ctx = refs.load_context(cache, context, site_default=(site.crds.context or None) if site else None,
                            site_mode=site.crds.mode if site else None)
    version = refs.crds_version()
    results = []
    errors: list[OwlError] = []
    show_progress = len(raws) > 10 and not as_json and sys.stderr.isatty()
    bar = click.progressbar(raws, label="bestrefs", file=sys.stderr) if show_progress else nullcontext(raws)
    with bar as todo:
        for raw in todo:
            try:
                result = refs.bestrefs_for_file(raw, ctx, version)
            except OwlError as exc:
                errors.append(exc)
                continue
            if update and not result.lookup.failures:
                refs.update_primary_header(raw, result.updates)
            results.append(result)
    failed = [r for r in results if r.lookup.failures]
    if as_json:
        echo_json({
            "context": ctx.name, "cache": str(cache), "updated": update,
            "files": [{
                "file": str(r.path), "instrument": r.lookup.instrument,
                "references": {k: v for k, v in r.updates.items() if k not in ("CRDS_CTX", "CRDS_VER")},
                "changed": {k: {"old": old, "new": new} for k, (old, new) in r.changed.items()},
                "failures": {k.upper(): v for k, v in r.lookup.failures.items()},
            } for r in results],
            "errors": [e.line() for e in errors],
        })
    else:
        click.echo(f"CRDS context {ctx.name} (cache {cache})")
        for r in results:
            _report(r, update)
        for err in errors:
            click.echo(f"owl: {err.line()}", err=True)
    if failed:
        first = failed[0]
        raise MissingReference(f"{len(failed)} of {len(results)} file(s) have types with no match; first: "
                               f"{refs.missing_reference_error(first.lookup, ctx, first.path).line()}")
    if errors:
        sys.exit(int(errors[0].code))

