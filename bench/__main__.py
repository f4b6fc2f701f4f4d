"""Run every benchmark module (or those named on the command line) and print a summary table.

Each module runs in its own process so peak-memory figures are its own. Results are also written
to ``.bench/results.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import pkgutil
import sys
from pathlib import Path

import bench
from bench.common import machine, run_module


def main(argv: list[str] | None = None) -> int:
    available = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help=f"benchmarks to run (default: all of {', '.join(available)})")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.modules) - set(available))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available)}")
    ctx = mp.get_context("spawn")
    results: dict[str, list[dict]] = {}
    print(f"machine: {machine()}")
    for name in args.modules or available:
        print(f"== {name}", flush=True)
        queue: mp.Queue = ctx.Queue()
        proc = ctx.Process(target=run_module, args=(name, queue))
        proc.start()
        proc.join()
        if proc.exitcode != 0:
            print(f"   FAILED (exit {proc.exitcode})")
            results[name] = [{"name": name, "error": proc.exitcode}]
            continue
        results[name] = queue.get()
        for r in results[name]:
            goal = "" if r["goal"] is None else f"  goal {'<=' if r['lower_is_better'] else '>='} {r['goal']:g}"
            verdict = {None: "", True: "  ok", False: "  MISSED"}[r["ok"]]
            print(f"   {r['name']:<55} {r['value']:>12.4g} {r['unit']:<10}{goal}{verdict}")
    out = Path(".bench/results.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "results": results}, indent=2))
    failed = any("error" in r for rs in results.values() for r in rs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
