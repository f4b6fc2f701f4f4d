"""CL: package the trailers as ``_trl.fits`` (archived too), then clean up the work area.

The work area of a dataset that completed every stage is removed; that of a dataset with any
stage not complete (failed, crashed, held, never run) is kept for inspection, and CL says where.
"""

from __future__ import annotations

import shutil

from pipeline.core.errors import OwlError
from pipeline.core.exitcodes import ExitCode
from pipeline.core.osf import COLUMNS
from pipeline.core.stage import Stage, StageContext, stage_main
from pipeline.core.trailer import package_trailer

#: Letters that count as finished for cleaning up: complete, or not applicable.
FINISHED = "cn"


class Cleanup(Stage):
    name = "cl"
    column = "CL"
    scope = "association"
    summary = ("package each trailer as _trl.fits and archive it; remove the work area of a completed "
               "dataset, keep (and report) that of a failed one")
    modules = ("pipeline.archive.ingest",)

    def run(self, ctx: StageContext) -> None:
        from pipeline.archive.ingest import ArchiveIngest  # after the OSF claim

        datasets = [ctx.dataset, *(m for m in ctx.member_names() if m != ctx.dataset)]
        batches = []
        for name in datasets:
            text = ctx.site.trailer_path(name)
            if not text.is_file():
                continue
            packaged = package_trailer(text, ctx.work / name.file("trl"), dataset=name.name)
            batches.append((name, [(packaged, "trl")], {"stage": "CL"}))
        versions = ArchiveIngest(ctx.site).ingest_many(batches)
        for (name, files, _meta), version in zip(batches, versions, strict=True):
            ctx.log(f"archived {files[0][0].name} as {name} version {version}")
        unfinished = self._unfinished(ctx, [d.name for d in datasets])
        if unfinished:
            ctx.warn(f"work area kept for inspection at {ctx.work}: not complete: {'; '.join(unfinished)}")
            return
        self._remove(ctx)

    @staticmethod
    def _unfinished(ctx: StageContext, names: list[str]) -> list[str]:
        """Each dataset and column (other than CL) whose letter is not complete or not-applicable."""
        out = []
        for name in names:
            entry = ctx.osf.get(name)
            bad = [f"{col}={letter}" for col, letter in zip(COLUMNS, entry.status, strict=True)
                   if col != "CL" and letter not in FINISHED]
            if bad:
                out.append(f"{name} {' '.join(bad)}")
        return out

    @staticmethod
    def _remove(ctx: StageContext) -> None:
        work = ctx.site.work_dir(ctx.dataset).resolve()
        root = ctx.site.areas.work.resolve()
        if work.parent != root:  # a dataset's area is always a direct child of the work root
            raise OwlError(f"refusing to remove {work}: not a dataset area under {root}", code=ExitCode.CONFIG)
        if work.exists():
            shutil.rmtree(work)
        ctx.log(f"work area {work} removed")


main = stage_main(Cleanup)

if __name__ == "__main__":
    main()
