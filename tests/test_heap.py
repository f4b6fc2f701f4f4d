"""pipeline.core.heap: freed full-frame arrays are reused instead of faulted in afresh (glibc only)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from pipeline.core.heap import keep_freed_memory, operator_set
from tests.conftest import REPO

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

#: Makes and drops ten 64 MB arrays (each one mmap of its own by default) and prints the page faults.
#: Transparent huge pages are off for the child (PR_SET_THP_DISABLE), so that a fault is a 4 KiB page
#: whatever the machine's THP setting.
_CHURN = """
import ctypes, resource, sys
ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)
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


def _plain_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES" and not k.startswith("MALLOC_")}


@glibc
def test_freed_arrays_are_reused_instead_of_faulted_in_again():
    pages = 64 * 2**20 // os.sysconf("SC_PAGE_SIZE")
    kept, faults = _churn("keep", _plain_environment())
    assert kept == "True" and faults < 2 * pages
    _, faults = _churn("default", _plain_environment())
    assert faults > 8 * pages


@glibc
def test_an_operators_mmap_or_trim_setting_wins():
    kept, _ = _churn("keep", {**_plain_environment(), "GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1000000"})
    assert kept == "False"


def test_only_the_settings_it_changes_count_as_the_operators():
    assert operator_set({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.mmap_max=4"})
    assert operator_set({"MALLOC_TRIM_THRESHOLD_": "0"})
    assert operator_set({"MALLOC_MMAP_THRESHOLD_": "65536"})
    assert not operator_set({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.tcache_count=0"})
    assert not operator_set({})
    assert keep_freed_memory({"GLIBC_TUNABLES": "glibc.malloc.mmap_max=4"}) is False
