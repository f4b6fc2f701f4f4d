"""``owl pod``: inspect and check pod files (e.g. one sitting in quarantine) without a site."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from pipeline.cli.common import echo_json, json_option
from pipeline.core.errors import BadInput
from pipeline.core.exitcodes import ExitCode
from pipeline.science.telemetry.decode import DecodedPod, decode_pod


def _describe(path: Path, decoded: DecodedPod) -> dict:
    pod = decoded.pod
    return {
        "file": str(path), "ok": True, "rootname": pod.rootname, "instrument": pod.instrument,
        "format_version": pod.version,
        "created": datetime.fromtimestamp(pod.created_us / 1e6, UTC).isoformat(timespec="seconds"),
        "bytes": path.stat().st_size,
        "packets": {"total": pod.n_packets, "header": pod.n_header, "science": pod.n_science,
                    "engineering": pod.n_engineering},
        "primary_keywords": len(decoded.primary),
        "chips": {chip: dict(d.engineering) for chip, d in decoded.chips.items()},
    }


@click.group()
def pod() -> None:
    """Inspect and check pod telemetry files (layout: docs/pod-format.md)."""


@pod.command("check")
@click.argument("pods", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
def check(pods: tuple[Path, ...], as_json: bool) -> None:
    """Fully validate and decode each POD; one line per pod, exit 20 if any is bad."""
    results = []
    for path in pods:
        try:
            results.append(_describe(path, decode_pod(path)))
        except BadInput as exc:
            results.append({"file": str(path), "ok": False, "error": exc.line()})
    if as_json:
        echo_json(results)
    else:
        for r in results:
            if r["ok"]:
                chips = ", ".join(f"{c['NCOLS']}x{c['NROWS']}" for c in r["chips"].values())
                click.echo(f"{r['file']}: ok: {r['rootname']} {r['instrument']}, {r['packets']['total']} "
                           f"packets, chips {chips}")
            else:
                click.echo(f"{r['file']}: BAD: {r['error']}")
    if not all(r["ok"] for r in results):
        sys.exit(int(ExitCode.BAD_INPUT))
