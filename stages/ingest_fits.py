"""owl-ingest-fits: INGEST for the recalibrate workflow, from raw FITS instead of telemetry (column IN).

An astronomer's ``*_raw.fits`` (and ``*_asn.fits``) are staged by ``owl submit --workflow recalibrate
--fits DIR`` into ``<receipt>/fits/<dataset>/``. This stage checks each file is the exposure it
claims to be, archives it (kind ``raw`` / ``asn``; a rerun adds no version), and puts a working copy
where 2FITS would have written it, so RF and the stages after it run unchanged. Staged files are
kept: they are the user's originals.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.config import Site
from pipeline.core.errors import BadInput
from pipeline.core.fsutil import copy_atomic
from pipeline.core.names import DatasetName
from pipeline.core.stage import Stage, StageContext, stage_main


def staging_dir(site: Site, dataset: DatasetName | str) -> Path:
    """Where ``owl submit --fits`` puts a dataset's raw FITS for this stage."""
    return site.areas.receipt / "fits" / str(dataset).lower()


def _check_raw(path: Path, member: DatasetName) -> None:
    from astropy.io import fits  # after the OSF claim (fast start-up)

    try:
        with fits.open(path) as hdul:
            header = hdul[0].header
            root = str(header.get("ROOTNAME", "")).strip().lower()
            instrument = str(header.get("INSTRUME", "")).strip().lower()
            n_sci = sum(1 for h in hdul if h.name == "SCI")
    except OSError as exc:
        raise BadInput(f"{path.name}: not a readable FITS file ({exc})", path=path) from None
    if root != member.name:
        raise BadInput(f"{path.name}: ROOTNAME {root or '(missing)'} is not {member.name}", path=path,
                       keyword="ROOTNAME")
    if instrument != member.instrument:
        raise BadInput(f"{path.name}: INSTRUME {instrument or '(missing)'} does not match the name's "
                       f"instrument {member.instrument}", path=path, keyword="INSTRUME")
    if n_sci == 0:
        raise BadInput(f"{path.name}: no SCI extension", path=path)


class IngestFits(Stage):
    name = "ingest-fits"
    column = "IN"
    scope = "association"
    summary = "Archive staged raw FITS (recalibrate workflow) and put working copies where 2FITS would"
    modules = ("pipeline.archive.ingest", "pipeline.core.asntable")

    def run(self, ctx: StageContext) -> None:
        from pipeline.archive.ingest import ArchiveIngest  # after the OSF claim
        from pipeline.core.asntable import read_asn_table  # numpy, astropy: after the OSF claim

        source = staging_dir(ctx.site, ctx.dataset)
        archive = ArchiveIngest(ctx.site)
        association = ctx.dataset.name if ctx.dataset.is_association else None
        if association is not None:
            table = source / ctx.dataset.file("asn")
            if not table.exists():
                raise BadInput(f"{ctx.dataset}: association table {table} not staged")
            asn = read_asn_table(table)
            if sorted(asn.members) != sorted(ctx.members):
                raise BadInput(f"{table.name}: members {sorted(asn.members)} differ from the OSF's "
                               f"{sorted(ctx.members)}", path=table)
            version = archive.ingest(ctx.dataset, [(table, "asn")], {"association": association})
            copy_atomic(table, ctx.work / table.name)
            ctx.log(f"{table.name}: archived as version {version}; working copy in {ctx.work}")
        for member in ctx.member_names():
            raw = source / member.file("raw")
            if not raw.exists():
                raise BadInput(f"{member}: {raw.name} not staged in {source}")
            _check_raw(raw, member)
            version = archive.ingest(member, [(raw, "raw")], {"association": association})
            copy_atomic(raw, ctx.work / raw.name)
            ctx.log(f"{raw.name}: archived as {member} version {version}; working copy in {ctx.work}")


main = stage_main(IngestFits)

if __name__ == "__main__":
    main()
