"""numba for the calibration kernels: imported in one place, compiled with its on-disk cache, started cheaply.

The first compiled call of a process makes numba load its implementation registry. One of those
modules, ``numba.np.arraymath``, probes for BLAS by importing ``scipy.linalg`` (~0.25 CPU-seconds,
about a tenth of a whole WFC3/IR calibration) only to choose how ``np.correlate``/``np.convolve``
take inner products. No kernel of ours calls them, so that module is loaded here with the probe
answered "no BLAS"; numba's own check is put back at once, and anything compiled later that needs
BLAS (``np.dot``) still checks and finds it. Should numba's internals move, the probe simply runs.

Where the cache lives: numba writes next to the sources when it can, else under the user's cache
directory; a site points every node at its ``cache`` area (``NUMBA_CACHE_DIR``, see
:meth:`pipeline.core.config.Site.environment`), so a pool job never recompiles.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pipeline.science.calib import perchip

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; the kernels still run as plain Python
    numba = None


def _load_registry_without_blas_probe() -> None:
    try:
        import numba.np.linalg as linalg
    except ImportError:  # pragma: no cover - a numba without this module probes as it likes
        return
    probe = getattr(linalg, "ensure_blas", None)
    if probe is None:  # pragma: no cover
        return

    def no_probe() -> None:
        raise ImportError("BLAS not probed while numba starts")

    linalg.ensure_blas = no_probe
    try:
        import numba.np.arraymath  # noqa: F401  (binds the probe's answer at import)
    finally:
        linalg.ensure_blas = probe


if numba is not None:
    _load_registry_without_blas_probe()

#: A kernel's parallel loop (``range`` where numba is missing).
prange = range if numba is None else numba.prange


def jit(fn: Callable[..., Any], **options: Any) -> Callable[..., Any]:
    """``numba.njit`` with the on-disk cache where a cache directory can be written (numba refuses to
    decorate when it finds none, e.g. read-only site-packages and no usable HOME), else uncached; no
    fast-math, so every kernel keeps the C code's rounding order."""
    opts = {"error_model": "numpy", "fastmath": False, **options}
    try:
        return numba.njit(cache=True, **opts)(fn)
    except RuntimeError:
        return numba.njit(cache=False, **opts)(fn)


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """numba's parallel loops on ``n`` threads (at most its pool): a pool job that asked for one CPU
    stays on one (``perchip.threads`` reads HTCondor's ``OMP_NUM_THREADS``; numba does not)."""
    if numba is None:
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def kernel_threads(environ: Mapping[str, str]) -> contextlib.AbstractContextManager[None]:
    """:func:`threads` for one calibration: as many as :func:`perchip.threads` gives the chips
    (``OWL_CALIB_THREADS``, else HTCondor's ``OMP_NUM_THREADS``, else the usable CPUs)."""
    return threads(perchip.threads(environ))
