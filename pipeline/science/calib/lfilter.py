"""scipy's ``lfilter`` for the DS_INT bias shift, without the second it takes to import ``scipy.signal``.

``scipy.signal.lfilter`` (b, a with more than one coefficient) is a thin wrapper around the C routine
``scipy.signal._sigtools._linear_filter``. Importing ``scipy.signal`` executes the whole package
(linalg, fft, ndimage, special, spatial: about 1 s of CPU), which is most of what a CA node spends on
an ACS/WFC exposure outside the arithmetic. The extension module itself needs only numpy, so it is
loaded here from its file under its own name. Where that is not possible (another scipy layout) the
public ``lfilter`` is used: same routine, same bits (``tests/test_calib_lfilter.py`` holds the two equal).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np

_EXTENSION = "scipy.signal._sigtools"


@cache
def _linear_filter() -> Callable[..., tuple[np.ndarray, np.ndarray]] | None:
    """scipy's C ``_linear_filter``, loaded without ``scipy.signal``'s ``__init__``; None if unavailable."""
    loaded = sys.modules.get(_EXTENSION)
    if loaded is None:
        try:
            import scipy

            path = next(iter(sorted((Path(scipy.__file__).parent / "signal").glob("_sigtools.*"))), None)
            if path is None or not path.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
                return None
            loader = importlib.machinery.ExtensionFileLoader(_EXTENSION, str(path))
            spec = importlib.util.spec_from_file_location(_EXTENSION, path, loader=loader)
            if spec is None:
                return None
            loaded = importlib.util.module_from_spec(spec)
            loader.exec_module(loaded)
        except (ImportError, OSError):
            return None
    return getattr(loaded, "_linear_filter", None)


def first_order(x: np.ndarray, pole: float, z0: float) -> tuple[np.ndarray, np.ndarray]:
    """``lfilter([1.0], [1.0, -pole], x, zi=[z0])`` for a 1-D double ``x``: ``y[n] = x[n] + pole*y[n-1]``
    with ``y[-1]`` standing for ``z0/pole``; returns (y, final state) exactly as scipy does."""
    b, a = np.array([1.0]), np.array([1.0, -pole])
    zi = np.array([z0], dtype=np.float64)
    x = np.ascontiguousarray(x, dtype=np.float64)
    direct = _linear_filter()
    if direct is not None:
        return direct(b, a, x, -1, zi)
    from scipy.signal import lfilter  # pragma: no cover - other scipy layouts

    return lfilter(b, a, x, zi=zi)  # pragma: no cover
