"""What every benchmark module returns, and how figures are measured and reported."""

from __future__ import annotations

import platform
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field


@dataclass
class Result:
    """One figure: a median over repeats, with the goal it is held against (None: no goal)."""

    name: str
    value: float
    unit: str
    goal: float | None = None
    lower_is_better: bool = True
    details: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool | None:
        if self.goal is None:
            return None
        return self.value <= self.goal if self.lower_is_better else self.value >= self.goal

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> tuple[float, list[float]]:
    """Median wall time of ``fn`` in seconds over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_module(name: str, queue) -> None:
    """Child-process entry of ``python -m bench``: run one ``bench_<area>`` module, send its results back.

    It lives here, not in ``bench/__main__``, because spawned children cannot import ``__main__``'s functions.
    """
    import importlib

    module = importlib.import_module(f"bench.{name}")
    queue.put([r.as_dict() for r in module.run()])


def machine() -> str:
    import os

    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{platform.machine()} {os.cpu_count()} cores, {python}"
