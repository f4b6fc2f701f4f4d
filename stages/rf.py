"""RF: CRDS best references into the raw headers (``BIASFILE = 'iref$...'``, ``CRDS_CTX``)."""

from __future__ import annotations

from pipeline.core.errors import BadInput
from pipeline.core.stage import Stage, StageContext, stage_main
from pipeline.science import refs


class BestRefsStage(Stage):
    name = "rf"
    column = "RF"
    scope = "association"
    summary = "assign CRDS best reference files to every member's raw header"
    modules = refs.CRDS_MODULES

    def run(self, ctx: StageContext) -> None:
        cache = refs.cache_root(ctx.site)
        members = ctx.member_names()
        context = refs.load_context(cache, site_default=ctx.site.crds.context or None,
                                    site_mode=ctx.site.crds.mode, instruments={m.instrument for m in members})
        ctx.log(f"CRDS context {context.name} from cache {cache}")
        raws = []
        for member in members:
            found = refs.member_raws(ctx.work, member.name)
            if not found:
                raise BadInput(f"no raw file for {member} in {ctx.work} ({member.file('raw')}, "
                               f"{member.name}_rawtag*.fits, ...): 2FITS has not written it")
            raws.extend(found)
        for result in refs.assign_bestrefs(raws, context):
            changed = ", ".join(f"{k}={new}" for k, (_old, new) in sorted(result.changed.items()))
            ctx.log(f"{result.path.name}: {result.lookup.instrument} references from {context.name}: "
                    f"{changed or 'unchanged'}")


main = stage_main(BestRefsStage)
