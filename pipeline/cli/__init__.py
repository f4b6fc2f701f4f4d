"""The ``owl`` command: a click group whose subcommands load only when used (fast start-up)."""

from __future__ import annotations

import importlib

import click

#: Subcommand name → "module:attribute". Each area registers its command group with one line.
COMMANDS: dict[str, str] = {
    "init": "pipeline.cli.site:init",
    "config": "pipeline.cli.site:config",
    "osf": "pipeline.cli.osf:osf",
    "archive": "pipeline.cli.archive:archive",
    "bestrefs": "pipeline.cli.bestrefs:bestrefs",
    "watch": "pipeline.cli.controller:watch",
    "submit": "pipeline.cli.controller:submit",
    "retry": "pipeline.cli.controller:retry",
    "status": "pipeline.cli.controller:status",
    "dag": "pipeline.cli.dag:dag",
    "demo": "pipeline.cli.demo:demo",
    "check": "pipeline.cli.check:check",
    "pod": "pipeline.cli.pod:pod",
    "simulate": "pipeline.cli.simulate:simulate",
    "calibrate": "pipeline.cli.calibrate:calibrate_cmd",
    "reprocess": "pipeline.cli.reprocess:reprocess", "request": "pipeline.cli.reprocess:request",
}


class LazyGroup(click.Group):
    """Imports a subcommand's module only when that subcommand (or the command list) is needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="owlpipe")
def main() -> None:
    """owlpipe: HST calibration pipeline (OPUS stages as DAGMan nodes, OSF blackboard).

    Most commands take --site DIR (default: $OWL_SITE or the current directory).
    """
