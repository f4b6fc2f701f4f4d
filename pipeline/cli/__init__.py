"""The ``owl`` command: a click group whose subcommands load only when used (fast start-up)."""

from __future__ import annotations

import importlib

import click

#: Subcommand name → "module:attribute". Each area registers its command group with one line.
COMMANDS: dict[str, str] = {
    "init": "pipeline.cli.site:init",
    "config": "pipeline.cli.site:config",
    "osf": "pipeline.cli.osf:osf",
    "archive": "pipeline.archive_cli:archive",
    "bestrefs": "pipeline.refs_cli:bestrefs",
    "watch": "pipeline.controller_cli:watch",
    "submit": "pipeline.controller_cli:submit",
    "retry": "pipeline.controller_cli:retry",
    "status": "pipeline.controller_cli:status",
    "dag": "pipeline.dag_cli:dag",
    "demo": "pipeline.demo:demo",
    "check": "pipeline.checks.cli:check",
    "pod": "pipeline.telemetry.cli:pod",
    "simulate": "pipeline.simulate.cli:simulate",
    "calibrate": "pipeline.calib.cli:calibrate_cmd",
    "reprocess": "pipeline.reprocess_cli:reprocess", "request": "pipeline.reprocess_cli:request",
    "serve": "pipeline.cli.serve:serve", "token": "pipeline.cli.token:token", "audit": "pipeline.cli.token:audit",
    "program": "pipeline.cli.program:program",
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
