"""INGEST_PVW: archive the preview pictures PVW wrote, as new versions of their datasets."""

from __future__ import annotations

from pipeline.core.errors import BadInput
from pipeline.core.stage import Stage, StageContext, stage_main
from pipeline.science import products


class IngestPreviews(Stage):
    name = "ingest-pvw"
    column = "IP"
    scope = "association"
    summary = "archive the preview JPEGs and spectrum plots (content-addressed, catalogued), all or nothing"
    modules = ("pipeline.archive.ingest",)

    def run(self, ctx: StageContext) -> None:
        from pipeline.archive.ingest import ArchiveIngest  # after the OSF claim

        found = products.preview_files(ctx.work, ctx.dataset, ctx.member_names())
        if not found:
            raise BadInput(f"{ctx.dataset}: no preview in {ctx.work} to archive (has PVW run?)")
        batches = [(root, files, {"stage": "INGEST_PVW"}) for root, files in found.items()]
        versions = ArchiveIngest(ctx.site).ingest_many(batches)
        for (root, files, _meta), version in zip(batches, versions, strict=True):
            ctx.log(f"archived {len(files)} preview(s) of {root} as version {version}")


main = stage_main(IngestPreviews)

if __name__ == "__main__":
    main()
