"""owl-dan-receipt: accept a downlink (DAN + pods) and register its datasets on the OSF (column DR).

Unlike the other stages its argument is a Data Availability Notice, not a dataset: one run moves
the DR column of every exposure and association the notice announces. The work itself lives in
:mod:`pipeline.science.telemetry.receipt`; this module is the executable around it.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from typing import NoReturn

from pipeline.core.config import load_site
from pipeline.core.errors import OwlError
from pipeline.core.exitcodes import ExitCode, meaning
from pipeline.core.osf import Blackboard, OSFError
from pipeline.core.stage import Interrupted, Stage, classify, install_sigterm
from pipeline.science.telemetry.receipt import ReceivingStation, locate_dan, receipt_log


class DanReceipt(Stage):
    name = "dan-receipt"
    column = "DR"
    scope = "association"
    summary = ("Validate a Data Availability Notice and every pod it lists (size, sha256, packet CRC and "
               "sequence), move them into the receipt area, register exposures and associations on the OSF")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="owl-dan-receipt",
        description=f"{DanReceipt.summary} (OSF column {DanReceipt.column}). Bad pods are quarantined "
                    "with a .reason file and their dataset marked 'e'; the rest of the downlink is "
                    "registered. Receiving the same DAN again registers nothing twice.",
        epilog="Exit codes: " + "; ".join(f"{c.value} {meaning(c)}" for c in ExitCode),
    )
    parser.add_argument("dan", metavar="DAN",
                        help="DAN file (<downlink>.dan.json) or a downlink id looked up in the inbox")
    parser.add_argument("--site", help="site directory (default: $OWL_SITE or the current directory)")
    parser.add_argument("--config", help="site configuration file (default: <site>/owl.toml)")
    parser.add_argument("--json", action="store_true", help="print the receipt report as JSON")
    return parser


def run(argv: list[str] | None = None) -> int:
    """Receive one downlink; return the exit code (20 if any pod was rejected)."""
    args = build_parser().parse_args(argv)
    label = "owl-dan-receipt"
    try:
        site = load_site(args.site, args.config)
        osf = Blackboard(site.database_url, site.database.busy_timeout)
    except (OwlError, OSFError) as exc:
        print(f"{label}: {exc.line()}", file=sys.stderr)
        return int(exc.code)
    install_sigterm()
    try:
        report = ReceivingStation(site, osf, label).receive(locate_dan(site, args.dan))
    except (Interrupted, KeyboardInterrupt) as exc:
        receipt_log(site).error(f"{label}: interrupted ({exc or 'Ctrl-C'}); rerun to resume")
        print(f"{label}: interrupted; rerun the same DAN to resume", file=sys.stderr)
        return int(ExitCode.KILLED)
    except BaseException as exc:  # every failure becomes an exit code and a log line
        err = classify(exc)
        if err is None:
            receipt_log(site).block("error", [f"{label} unexpected error: {exc!r}",
                                              *traceback.format_exc().splitlines()])
            err = OwlError(f"unexpected error: {type(exc).__name__}: {exc}", code=ExitCode.INTERNAL)
        print(f"{label}: {err.line()}", file=sys.stderr)
        return int(err.code)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(f"{label}: {report.summary()}")
        for pod in report.failures:
            print(f"{label}: {pod.dataset}: {pod.message}", file=sys.stderr)
    return int(ExitCode.BAD_INPUT) if report.failures else int(ExitCode.SUCCESS)


def main(argv: list[str] | None = None) -> NoReturn:
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
