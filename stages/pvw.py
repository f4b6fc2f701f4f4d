"""PVW: preview pictures of every product in the work area (JPEG images, PNG spectrum plots)."""

from __future__ import annotations

from pipeline.core.errors import BadInput
from pipeline.core.stage import Stage, StageContext, stage_main


class Previews(Stage):
    name = "pvw"
    column = "PV"
    scope = "association"
    summary = ("write <root>_<suffix>.jpg and _thumb.jpg for raw/flt/flc/crj/drz/drc images and a "
               "flux-versus-wavelength PNG per segment for x1d/x1dsum spectra")
    modules = ("pipeline.science.preview", "pipeline.science.products")

    def run(self, ctx: StageContext) -> None:
        from pipeline.science import preview, products  # numpy, astropy: after the OSF claim (fast start-up)

        sources = products.previewable_files(ctx.work, ctx.dataset, ctx.member_names())
        if not sources:
            raise BadInput(f"{ctx.dataset}: no product to preview in {ctx.work}")
        for path in sources:
            written = preview.make_previews(path, ctx.work)
            ctx.log(f"{path.name}: preview(s) {', '.join(p.name for p in written)}")


main = stage_main(Previews)

if __name__ == "__main__":
    main()
