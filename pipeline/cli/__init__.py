"""The ``owl`` command: a click group whose subcommands load only when used (fast start-up).

The registry carries each command's one-line help, so ``owl --help`` lists the commands without
importing any of their modules (tests/test_cli_startup.py checks the lines match the commands).
"""

from __future__ import annotations

import importlib

import click

from pipeline.core import startup

#: Subcommand name → ("module:attribute", one-line help). Each area registers its command group with one line.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("pipeline.cli.site:init",
             "Create a site in DIRECTORY: owl.toml, its areas, the OSF database and the archive's catalogue."),
    "config": ("pipeline.cli.site:config", "Inspect a site's configuration."),
    "osf": ("pipeline.cli.osf:osf",
            "Observation Status File blackboard: one row per dataset, one letter per stage column."),
    "archive": ("pipeline.cli.archive:archive",
                "The archive: content-addressed store of raw and calibrated files, catalogued per dataset version."),
    "bestrefs": ("pipeline.cli.bestrefs:bestrefs",
                 "Best reference files for RAW files from the local CRDS cache (offline, crds in-process)."),
    "watch": ("pipeline.cli.controller:watch",
              "Watch the inbox: receive each new DAN and submit one DAG per complete association."),
    "submit": ("pipeline.cli.controller:submit",
               "Submit one association's DAG; the local executor runs it now, with a progress display."),
    "retry": ("pipeline.cli.controller:retry",
              "Reset failed (e, x) columns, or every column from a stage on, and submit the DAG again."),
    "status": ("pipeline.cli.controller:status",
               "The OSF grid: a row per dataset, a column per stage, per-stage counts of every letter."),
    "dag": ("pipeline.cli.dag:dag",
            "One association's HTCondor DAG: write it, follow it, hold, release, remove or rescue it."),
    "demo": ("pipeline.cli.demo:demo", "Create a site, simulate a downlink, process it with the watcher and local "
             "executor, show the OSF."),
    "check": ("pipeline.cli.check:check",
              "Run the before/after-calibration checks (what owl-bc and owl-ac run) on files."),
    "pod": ("pipeline.cli.pod:pod", "Inspect and check pod telemetry files (layout: docs/pod-format.md)."),
    "simulate": ("pipeline.cli.simulate:simulate",
                 "Simulate WFC3/UVIS, ACS/WFC and WFC3/IR observations: a downlink of pods and a DAN into the site "
                 "inbox (building the site's reference files on first use), and with --fits the same exposures "
                 "as FITS."),
    "calibrate": ("pipeline.cli.calibrate:calibrate_cmd",
                  "Calibrate RAW files (``*_raw.fits``) or associations (``*_asn.fits``)."),
    "reprocess": ("pipeline.cli.reprocess:reprocess",
                  "Reprocess exactly the archived datasets whose best references a new CRDS context changes."),
    "request": ("pipeline.cli.reprocess:request",
                "Prioritise DATASET: move it to the front of its reprocessing campaign, or raise the priority of its "
                "queued DAG (or OSF row) to the site's priorities.requested."),
    "serve": ("pipeline.cli.serve:serve",
              "Serve the archive: IVOA SIA v2 at /sia, a JSON API at /api, file and tar downloads with tokens."),
    "token": ("pipeline.cli.token:token", "API tokens for the archive service (only their hashes are stored)."),
    "audit": ("pipeline.cli.token:audit", "File accesses and refusals of the archive service, newest first."),
    "program": ("pipeline.cli.program:program",
                "Programs: their PI and exclusive-access period (data are public after observation + N months)."),
}


class LazyGroup(click.Group):
    """Imports a subcommand's module only when that subcommand runs (or its own help is asked for)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target[0].split(":")
        command = getattr(importlib.import_module(module), attr)
        startup.loaded()
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the registry's help lines: ``owl --help`` imports no command module."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, click.utils.make_default_short_help(COMMANDS[name][1], limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="owlpipe")
def main() -> None:
    """owlpipe: HST calibration pipeline (OPUS stages as DAGMan nodes, OSF blackboard).

    Most commands take --site DIR (default: $OWL_SITE or the current directory).
    """


def run() -> None:
    """The ``owl`` console script: :data:`main` with the collector paused until the command's module
    is loaded (:mod:`pipeline.core.startup`)."""
    startup.begin()
    main()
