"""A stage used only to exercise the wrapper contract (pipeline.core.stage); run as ``python -m tests.stagekit``."""

from __future__ import annotations

import time

from pipeline.core.errors import BadInput, MissingReference
from pipeline.core.stage import Stage, StageContext, stage_main


class ProbeStage(Stage):
    name = "probe"
    column = "RF"
    summary = "wrapper probe: behaves as --mode says"
    modules = ("colorsys",)  # a module nothing else here imports: loaded by the wrapper before run

    def add_arguments(self, parser) -> None:
        parser.add_argument("--mode", default="ok", choices=["ok", "bad", "missing", "crash", "sleep", "oom", "eio",
                                                             "startup"])

    def run(self, ctx: StageContext) -> None:
        mode = ctx.options.mode
        if mode == "ok":
            (ctx.work / "done.txt").write_text(" ".join(ctx.members))
            ctx.log("probe did its job")
        elif mode == "startup":
            import gc
            import sys

            seen = ("colorsys" in sys.modules, gc.isenabled(), gc.get_freeze_count() > 0)
            (ctx.work / "done.txt").write_text(" ".join(map(str, seen)))
        elif mode == "bad":
            bad = ctx.work / "input.pod"
            bad.write_bytes(b"\x00garbage")
            raise BadInput("packet 3: CRC mismatch (0x1234 != 0xbeef)", path=bad)
        elif mode == "missing":
            raise MissingReference("DARKFILE iref$x1_drk.fits not found", keyword="DARKFILE")
        elif mode == "crash":
            raise RuntimeError("boom")
        elif mode == "oom":
            raise MemoryError
        elif mode == "eio":
            import errno

            raise OSError(errno.EIO, "Input/output error")
        else:
            print("sleeping", flush=True)
            time.sleep(120)


main = stage_main(ProbeStage)

if __name__ == "__main__":
    main()
