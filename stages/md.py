"""MD: AstroDrizzle an association's (or singleton's) calibrated exposures into ``_drz`` / ``_drc``."""

from __future__ import annotations

from pipeline.core.stage import Stage, StageContext, stage_main


class Drizzle(Stage):
    name = "md"
    column = "MD"
    scope = "association"
    summary = ("AstroDrizzle the members' _flt into <name>_drz.fits and _flc into <name>_drc.fits "
               "(offline, on copies, side by side on a 2-CPU node; fails if drizzlepac drops any input)")
    modules = ("pipeline.science.drizzle", "pipeline.science.drizzle_sets")

    def load(self, ctx: StageContext) -> None:
        from pipeline.science import drizzle

        super().load(ctx)
        if ctx.dataset.instrument.upper() in drizzle.DRIZZLED_INSTRUMENTS:
            drizzle.import_astrodrizzle()

    def run(self, ctx: StageContext) -> None:
        from pipeline.science import drizzle, refs  # astropy, drizzlepac: after the OSF claim (fast start-up)
        from pipeline.science.drizzle_sets import drizzle_sets, side_by_side

        if ctx.dataset.instrument.upper() not in drizzle.DRIZZLED_INSTRUMENTS:
            ctx.log(f"MD does not apply to {ctx.dataset.instrument.upper()} data: no drizzled product")
            return
        members, skipped = drizzle.imaging_members(ctx.work, ctx.member_names())
        for reason in skipped:
            ctx.log(f"not drizzled: {reason}")
        if not members:
            ctx.log(f"no exposure of {ctx.dataset} is drizzled (spectroscopic or DRIZCORR omitted): no product")
            return
        cores = ctx.site.calibration.drizzle_cores
        sets = drizzle.association_inputs(ctx.work, members)
        at_once = side_by_side(len(sets))
        for kind, inputs in sets.items():
            ctx.log(f"AstroDrizzle {len(inputs)} _{kind} input(s) on {cores} core(s)"
                    + (f", {at_once} products side by side" if at_once > 1 else "") + ": "
                    + " ".join(p.name for p in inputs))
        products = drizzle_sets(sets, ctx.dataset, ctx.work, cores=cores, cache=refs.cache_root(ctx.site), log=ctx.warn,
                                workers=at_once)
        for inputs, product in zip(sets.values(), products, strict=True):
            if product.mdriztab is None:
                ctx.log(f"no MDRIZTAB named in {inputs[0].name} (MDRIZTAB absent or N/A): AstroDrizzle ran "
                        "with drizzlepac's default parameters")
            else:
                head, why, *values = product.mdriztab.history()
                ctx.log(f"{head} ({why.strip()}): " + "; ".join(v.strip() for v in values))
                if product.overridden:
                    ctx.log(f"MDRIZTAB values MD sets itself, ignored: {', '.join(product.overridden)}")
            if product.fast_paths:
                ctx.log("driz_cr ran with bit-identical fast paths (pipeline.science.drizzle_exact): "
                        + ", ".join(product.fast_paths))
            ctx.trailer.include(product.log, f"AstroDrizzle log for {product.path.name}")
            ctx.log(f"wrote {product.path.name} from {len(product.inputs)} input(s) in {product.seconds:.1f} s")


main = stage_main(Drizzle)

if __name__ == "__main__":
    main()
