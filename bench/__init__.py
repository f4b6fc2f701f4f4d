"""Benchmarks (``make bench``): one module ``bench_<area>.py`` per area, each with ``run() -> list[Result]``."""
