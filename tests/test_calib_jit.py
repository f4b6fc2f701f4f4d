"""The calibration kernels' numba set-up (``pipeline/science/calib/jit.py``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.science.calib import jit

needs_numba = pytest.mark.skipif(jit.numba is None, reason="numba not installed")

_PROBE = """
import sys
import numpy as np
from pipeline.science.calib.jit import jit, numba

def total(x):
    return x.sum()

print(jit(total)(np.arange(4.0)), 'scipy.linalg' in sys.modules)
dot = numba.njit(lambda a, b: np.dot(a, b))
print(dot(np.ones(3), np.ones(3)), 'scipy.linalg' in sys.modules)
"""


@needs_numba
def test_first_compiled_call_does_not_import_scipy_linalg_and_blas_still_works(tmp_path) -> None:
    """numba's start-up BLAS probe (scipy.linalg, ~0.25 CPU-s) is skipped; a kernel that needs BLAS
    later still gets it (numba's own check runs then)."""
    run = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=300,
                         env={"NUMBA_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["6.0", "False", "3.0", "True"]


@needs_numba
def test_threads_bounds_numba_and_restores_it() -> None:
    before = jit.numba.get_num_threads()
    with jit.threads(1):
        assert jit.numba.get_num_threads() == 1
    with jit.threads(10_000):  # never more than numba's pool
        assert jit.numba.get_num_threads() == jit.numba.config.NUMBA_NUM_THREADS
    assert jit.numba.get_num_threads() == before


@needs_numba
def test_kernel_threads_follow_the_calibration_thread_count() -> None:
    """The CTE and IR kernels run on as many threads as the chips get (HTCondor's OMP_NUM_THREADS)."""
    with jit.kernel_threads({"OMP_NUM_THREADS": "1"}):
        assert jit.numba.get_num_threads() == 1
    with jit.kernel_threads({"OWL_CALIB_THREADS": "1", "OMP_NUM_THREADS": "8"}):
        assert jit.numba.get_num_threads() == 1
