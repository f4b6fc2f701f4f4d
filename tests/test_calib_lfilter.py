"""The DS_INT bias shift's first-order filter: scipy's C routine loaded without ``scipy.signal``.

It must give the bits ``scipy.signal.lfilter`` gives (calacs agreement was proven with it), and the
ACS bias shift must run without importing ``scipy.signal`` (about 1 s of a CA node's CPU).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from pipeline.science.calib import lfilter as owl_lfilter

ROOT = Path(__file__).resolve().parents[1]


def test_direct_extension_is_loaded_and_agrees_bit_for_bit_with_scipy_signal_lfilter() -> None:
    assert owl_lfilter._linear_filter() is not None, "scipy's _sigtools could not be loaded directly"
    rng = np.random.default_rng(3)
    x = rng.normal(4000.0, 900.0, 250_000) * 1.3e-3
    for pole, z0 in ((1.0 - 5.9e-4, 3.7), (0.25, -12.5), (1.0 - 1e-12, 0.0)):
        y, zf = owl_lfilter.first_order(x, pole, z0)
        want_y, want_zf = lfilter([1.0], [1.0, -pole], x, zi=[z0])
        assert y.tobytes() == want_y.tobytes()
        assert zf.tobytes() == want_zf.tobytes()


def test_the_recurrence_is_the_one_the_bias_shift_model_needs() -> None:
    y, zf = owl_lfilter.first_order(np.array([1.0, 0.0, 0.0, 2.0]), 0.5, 4.0)
    assert y.tolist() == [5.0, 2.5, 1.25, 2.625]    # y[n] = x[n] + 0.5*y[n-1], y[0] = x[0] + z0
    assert zf.tolist() == [1.3125]


def test_bias_shift_runs_without_importing_scipy_signal() -> None:
    code = ("import sys, numpy as np\n"
            "from pipeline.science.calib.steps import destripe\n"
            "out, magic = destripe.bias_shift(np.full((2068, 2072), 250.0), 1)\n"
            "assert abs(magic - 250.0 * (1 - 10.805754e-3 * 0.3)) < 1e-6, magic\n"
            "print('scipy.signal' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False", done.stdout + done.stderr
