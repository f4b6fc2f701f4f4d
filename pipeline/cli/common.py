"""Options and error handling shared by ``owl`` subcommands."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from pipeline.core.errors import OwlError

if TYPE_CHECKING:
    from pipeline.core.config import Site

site_option = click.option("--site", "site_dir", type=click.Path(file_okay=False),
                           help="site directory (default: $OWL_SITE or the current directory)")
config_option = click.option("--config", "config_file", type=click.Path(dir_okay=False),
                             help="site configuration file (default: <site>/owl.toml)")
json_option = click.option("--json", "as_json", is_flag=True, help="print machine-readable JSON")


def open_site(site_dir: str | None, config_file: str | None = None) -> Site:
    from pipeline.core.config import load_site  # only commands that open a site pay for it

    return load_site(site_dir, config_file)


def reports_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn OwlErrors into one clear line on stderr and the error's exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OwlError as exc:
            click.echo(f"owl: {exc.line()}", err=True)
            sys.exit(int(exc.code))

    return wrapper


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


class ProgressDisplay:
    """A rich progress bar over long work, with lines printed above it as things happen."""

    def __init__(self, console, description: str, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = console
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=console)
        self.task = self.progress.add_task(description, total=total)

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def say(self, text: str) -> None:
        self.progress.console.print(text)
