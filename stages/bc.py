"""BC: before-calibration checks on every member's raw file (rule table in pipeline.science.checks.bc)."""

from __future__ import annotations

from pipeline.core.errors import BadInput
from pipeline.core.stage import Stage, StageContext, stage_main


class BeforeCalibrationChecks(Stage):
    name = "bc"
    column = "BC"
    scope = "association"
    summary = "check headers, switches and every needed reference before calibration"
    modules = ("pipeline.science.refs", "pipeline.science.checks.bc")

    def run(self, ctx: StageContext) -> None:
        from pipeline.science import refs  # astropy: after the OSF claim (fast start-up)
        from pipeline.science.checks import bc
        from pipeline.science.checks.rules import raise_failures

        cache = refs.cache_root(ctx.site)
        members = ctx.member_names()
        failures = []
        for member in members:
            raws = refs.member_raws(ctx.work, member.name)
            if not raws:
                raise BadInput(f"no raw file for {member} in {ctx.work}: 2FITS has not written it")
            for raw in raws:
                found = bc.check_raw(raw, cache, members=len(members))
                failures.extend(found)
                ctx.log(f"{raw.name}: {len(bc.RULES)} rules, {len(found)} failure(s)")
        for failure in failures:
            ctx.trailer.error(f"{self.name}: {failure.line()}")
        raise_failures(failures)


main = stage_main(BeforeCalibrationChecks)
