"""``owl archive``: query the catalogue, fetch files, list versions, verify the store."""

from __future__ import annotations

import sys
import time

import click

from pipeline.cli.common import config_option, echo_json, json_option, open_site, reports_errors, site_option


def _archive(site_dir: str | None, config_file: str | None):
    from pipeline.archive.store import Archive

    return Archive(open_site(site_dir, config_file))


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t))


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@click.group()
def archive() -> None:
    """The archive: content-addressed store of raw and calibrated files, catalogued per dataset version."""


@archive.command()
@site_option
@config_option
@click.option("--dataset", help="dataset name (wildcards * and ? allowed)")
@click.option("--association", help="association name")
@click.option("--instrument", help="INSTRUME, e.g. WFC3")
@click.option("--detector", help="DETECTOR, e.g. UVIS")
@click.option("--target", help="TARGNAME (wildcards allowed)")
@click.option("--filter", "filters", help="one filter or grating, e.g. F606W")
@click.option("--program", help="proposal id")
@click.option("--context", "crds_context", help="CRDS context the products were calibrated with")
@click.option("--kind", help="file kind: raw, flt, flc, drz, drc, trl, drz_jpg, ...")
@click.option("--date-from", help="observed on or after (ISO date, e.g. 2002-04-13)")
@click.option("--date-to", help="observed on or before (ISO date)")
@click.option("--cone", nargs=3, type=float, metavar="RA DEC RADIUS", help="cone search, degrees")
@click.option("--header", "header", multiple=True, metavar="KEY=VALUE",
              help="raw header keyword must equal VALUE (repeatable), e.g. --header CCDAMP=ABCD")
@click.option("--all-versions", is_flag=True, help="list every version, not only the newest of each kind")
@click.option("--limit", type=int, help="at most this many rows")
@json_option
@reports_errors
def query(site_dir, config_file, dataset, association, instrument, detector, target, filters, program,
          crds_context, kind, date_from, date_to, cone, header, all_versions, limit, as_json) -> None:
    """List catalogued files matching every filter given."""
    keywords = {}
    for item in header:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--header")
        keywords[key.strip().upper()] = value.strip()
    ra, dec, radius = cone if cone else (None, None, None)
    rows = _archive(site_dir, config_file).query(
        dataset=dataset, association=association, instrument=instrument, detector=detector, target=target,
        filters=filters, program=program, crds_context=crds_context, kind=kind, date_from=date_from,
        date_to=date_to, ra=ra, dec=dec, radius=radius, header=keywords or None, all_versions=all_versions,
        limit=limit)
    if as_json:
        echo_json([r.as_dict() for r in rows])
        return
    click.echo(f"{'dataset':<10}{'ver':>4} {'kind':<14} {'instrument':<11}{'detector':<9}{'filters':<14}"
               f"{'target':<18}{'date_obs':<20}{'size':>10}  name")
    for r in rows:
        click.echo(f"{r.dataset:<10}{r.version:>4} {r.kind:<14} {r.instrument or '-':<11}{r.detector or '-':<9}"
                   f"{(r.filters or '-')[:13]:<14}{(r.target or '-')[:17]:<18}{r.date_obs or '-':<20}"
                   f"{_size(r.size):>10}  {r.name}")
    click.echo(f"{len(rows)} file(s)")


@archive.command()
@click.argument("dataset")
@site_option
@config_option
@click.option("--kind", help="only files of this kind (e.g. drz)")
@click.option("--version", type=int, help="this version (default: the newest file of each kind)")
@click.option("--dest", type=click.Path(file_okay=False), default=".", show_default=True,
              help="directory to write the files into")
@json_option
@reports_errors
def get(dataset, site_dir, config_file, kind, version, dest, as_json) -> None:
    """Copy a dataset's archived files into DEST (each checked against its sha256)."""
    arch = _archive(site_dir, config_file)
    paths = arch.get(dataset, kind, version, dest)
    files = arch.files(dataset, version, kind)
    if as_json:
        echo_json([{**f.as_dict(), "path": str(p), "blob": str(f.path)} for f, p in zip(files, paths, strict=True)])
        return
    for f, p in zip(files, paths, strict=True):
        click.echo(f"{p}  ({f.kind}, version {f.version}, {_size(f.size)})")


@archive.command()
@click.argument("dataset")
@site_option
@config_option
@json_option
@reports_errors
def versions(dataset, site_dir, config_file, as_json) -> None:
    """Every archived version of DATASET with its files."""
    infos = _archive(site_dir, config_file).version_info(dataset)
    if as_json:
        echo_json([i.as_dict() for i in infos])
        return
    if not infos:
        click.echo(f"{dataset}: not archived")
        sys.exit(1)
    for info in infos:
        ctx = info.fields.get("crds_context") or "-"
        click.echo(f"{info.dataset} version {info.version}  ingested {_when(info.ingested)}  CRDS {ctx}")
        software = info.fields.get("software") or {}
        if software:
            click.echo("    software " + "  ".join(f"{k}={v}" for k, v in software.items()))
        for f in info.files:
            click.echo(f"    {f.kind:<12} {f.name:<32} {_size(f.size):>10}  sha256 {f.sha256[:16]}...")


@archive.command()
@site_option
@config_option
@json_option
@reports_errors
def verify(site_dir, config_file, as_json) -> None:
    """Re-hash every stored file; report each mismatch or missing file (exit 1 if any)."""
    arch = _archive(site_dir, config_file)
    if as_json or not sys.stderr.isatty():
        report = arch.verify()
    else:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task("verifying", total=None)
            report = arch.verify(lambda done, total: bar.update(task, completed=done, total=total))
    if as_json:
        echo_json(report.as_dict())
    else:
        for line in report.mismatches:
            click.echo(f"MISMATCH {line}")
        for line in report.missing:
            click.echo(f"MISSING  {line}")
        for line in report.orphans:
            click.echo(f"orphan   {line} (not catalogued; harmless)")
        click.echo(f"{report.checked} stored file(s), {_size(report.bytes)} checked: "
                   f"{len(report.mismatches)} mismatch(es), {len(report.missing)} missing")
    sys.exit(0 if report.ok else 1)
