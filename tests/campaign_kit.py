"""A reprocess-shaped workflow of stand-in stages, for campaign mechanics without calibration.

RF, CA and MD are the orchestration kit's stages (:mod:`tests.orchkit`, steerable per dataset through
``OWL_KIT_PLAN``); the archiving stage is :class:`KitArchive`, which does what INGEST_SCI does for a
campaign's purposes: a new catalogue version of every member whose raw header carries the context
RF would use. A DAG that never reaches it leaves nothing new in the archive.
"""

from __future__ import annotations

import sys
from pathlib import Path

from astropy.io import fits

from pipeline.archive.store import Archive
from pipeline.core.stage import Stage, StageContext, run_stage
from pipeline.science import refs
from tests.orchkit import REPO

WORKFLOW = """
name = "kitrepro"
description = "campaign test workflow: kit stages, then a stand-in INGEST_SCI"
priority = "reprocess"
retry_unless_exit = 100
start = "RF"

[defaults]
retries = 1

[categories]
ca = 2

[stages.RF]
column = "RF"
executable = "kit-rf"

[stages.CA]
column = "CA"
executable = "kit-ca"
scope = "exposure"
after = ["RF"]
category = "ca"

[stages.MD]
column = "MD"
executable = "kit-md"
after = ["CA"]

[stages.INGEST_SCI]
column = "IS"
executable = "kit-archive"
after = ["MD"]
"""


class KitArchive(Stage):
    name = "kit-archive"
    column = "IS"
    scope = "association"
    summary = "campaign test stage: archive a raw header per member, stamped with RF's context"

    def run(self, ctx: StageContext) -> None:
        context = refs.resolve_context(refs.cache_root(ctx.site), ctx.site.crds.context or None)
        archive = Archive(ctx.site)
        for member in ctx.member_names():
            raw = ctx.work / f"{member.name}_raw.fits"
            header = fits.Header({"INSTRUME": "WFC3", "DETECTOR": "UVIS", "CRDS_CTX": context,
                                  "ROOTNAME": member.name.upper()})
            fits.PrimaryHDU(header=header).writeto(raw, overwrite=True)
            version = archive.ingest(member, [(raw, "raw")])
            ctx.log(f"archived {raw.name} as {member} version {version} ({context})")


def main() -> None:
    sys.exit(run_stage(KitArchive, sys.argv[1:]))


def install(bin_dir: Path, workflow_dir: Path) -> Path:
    """Write the ``kit-archive`` executable into ``bin_dir`` and the workflow file; return its path."""
    exe = bin_dir / "kit-archive"
    exe.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO)!r})\n"
                   "from tests.campaign_kit import main\nmain()\n")
    exe.chmod(0o755)
    path = workflow_dir / "kitrepro.toml"
    path.write_text(WORKFLOW)
    return path
