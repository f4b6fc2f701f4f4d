"""pipeline.core.heap: freed full-frame arrays are reused instead of faulted in afresh (glibc only)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from pipeline.core.heap import keep_freed_memory
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

#: Makes and drops ten 64 MB arrays (each one mmap of its own by default) and prints the page faults.
_CHURN = """
import resource, sys
import numpy
from pipeline.core.heap import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    a = numpy.ones(8 * 2**20)
    del a
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _churn(mode: str, env: dict[str, str]) -> tuple[str, int]:
    done = subprocess.run([sys.executable, "-c", _CHURN, mode], check=True, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    kept, faults = done.stdout.split()
    return kept, int(faults)


def test_freed_arrays_are_reused_instead_of_faulted_in_again():
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env["NUMPY_MADVISE_HUGEPAGE"] = "0"   # 4 KiB pages: faults count pages
    pages = 64 * 2**20 // os.sysconf("SC_PAGE_SIZE")
    kept, faults = _churn("keep", env)
    assert kept == "True" and faults < 2 * pages
    _, faults = _churn("default", env)
    assert faults > 8 * pages


def test_an_operators_malloc_tunables_win():
    assert keep_freed_memory({"GLIBC_TUNABLES": "glibc.malloc.mmap_max=4"}) is False
    kept, _ = _churn("keep", {**os.environ, "GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    assert kept == "False"
