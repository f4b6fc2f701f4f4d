"""INGEST_SCI: archive the calibrated products of an association (or singleton) as new versions."""

from __future__ import annotations

from pipeline.core.errors import BadInput
from pipeline.core.stage import Stage, StageContext, stage_main
from pipeline.science import products


class IngestScience(Stage):
    name = "ingest-sci"
    column = "IS"
    scope = "association"
    summary = ("archive raw, calibrated and drizzled products (content-addressed, catalogued from their "
               "headers), one new version per dataset, all or nothing")
    modules = ("pipeline.archive.ingest",)

    def run(self, ctx: StageContext) -> None:
        from pipeline.archive.ingest import ArchiveIngest  # after the OSF claim

        found = products.science_files(ctx.work, ctx.dataset, ctx.member_names())
        if not found:
            raise BadInput(f"{ctx.dataset}: no science product in {ctx.work} to archive")
        association = {"association": ctx.dataset.name} if ctx.dataset.is_association else {}
        batches = [(root, files, {**association, "stage": "INGEST_SCI"}) for root, files in found.items()]
        versions = ArchiveIngest(ctx.site).ingest_many(batches)
        for (root, files, _meta), version in zip(batches, versions, strict=True):
            ctx.log(f"archived {root} version {version}: {', '.join(p.name for p, _kind in files)}")


main = stage_main(IngestScience)

if __name__ == "__main__":
    main()
