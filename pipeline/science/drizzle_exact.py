"""Faster, bit-identical AstroDrizzle: a lean drizzlepac import, two faster ``driz_cr`` pieces, and the
log's version lines without importing the packages they name.

``import drizzlepac`` runs a package ``__init__`` that imports every task (tweakreg, the HAP
alignment and catalogue code: photutils, scikit-learn, ...), ~3.5 CPU-seconds of which AstroDrizzle
needs ~2; :func:`lean_import` loads only the modules AstroDrizzle's own imports pull in.

Profiling AstroDrizzle on a full-frame WFC3/UVIS pair with the MDRIZTAB two-image row (``minmed``,
``driz_cr``) shows ~14 % of its CPU in two places that compute integers or exact float64 operations
the slow way:

* ``quickDeriv.qderiv`` (the blotted image's absolute derivative): four passes, each allocating three
  float64 frames; :func:`qderiv` performs the same float64 operations, in the same order, in place.
* ``scipy.signal.convolve2d`` called by ``drizCR._driz_cr`` on a boolean CR mask with a small kernel of
  whole numbers (3 × 3 ones, the ``driz_cr_grow`` box, the ``driz_cr_ctegrow`` tail): the direct 2-D
  convolution of scipy; :func:`convolve2d` sums the shifted mask once per non-zero kernel entry. The
  result is a sum of whole numbers, exact in any order, returned in scipy's dtype; any other call
  (other modes, boundaries, non-integer data or kernels) goes to scipy unchanged.

Beside them, every run's ``util.print_pkg_versions`` imports tweakwcs and photutils (which nothing else
AstroDrizzle runs loads) only to log their ``__version__``; :func:`print_pkg_versions` writes the same
lines, taking a not-yet-imported package's version from its installed distribution.

:func:`exact_fast_paths` swaps them in for the duration of one AstroDrizzle run, and only for the
drizzlepac version they were checked against (:data:`CHECKED_DRIZZLEPAC`): with any other version
AstroDrizzle runs exactly as installed. ``tests/test_md_mdriztab.py`` checks both against the
originals and the MD product against a plain AstroDrizzle run, pixel for pixel.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
from collections.abc import Iterator
from importlib import metadata

import numpy as np

#: The drizzlepac release whose ``drizCR._driz_cr`` and ``quickDeriv.qderiv`` these replace.
CHECKED_DRIZZLEPAC = "3.11.0"


def qderiv(array: np.ndarray) -> np.ndarray:
    """``drizzlepac.quickDeriv.qderiv`` without its temporaries: identical float64 steps, in place."""
    n1, n2 = array.shape
    tmp = np.zeros(array.shape, dtype=np.float64)
    out = np.zeros(array.shape, dtype=np.float64)
    shifts = (((slice(0, n1 - 1), slice(1, n2 - 1)), (slice(0, n1 - 1), slice(0, n2 - 2))),
              ((slice(0, n1 - 1), slice(0, n2 - 2)), (slice(0, n1 - 1), slice(1, n2 - 1))),
              ((slice(1, n1 - 1), slice(0, n2 - 1)), (slice(0, n1 - 2), slice(0, n2 - 1))),
              ((slice(0, n1 - 2), slice(0, n2 - 1)), (slice(1, n1 - 1), slice(0, n2 - 1))))
    for target, source in shifts:
        tmp[target] = array[source]
        np.subtract(array, tmp, out=tmp)
        np.fabs(tmp, out=tmp)
        np.maximum(tmp, out, out=out)
        np.multiply(tmp, 0.0, out=tmp)  # as the original: NaN and inf stay NaN for the next pass
    return out.astype(np.float32)


def _whole_number_box_sum(data: np.ndarray, kernel: np.ndarray) -> np.ndarray | None:
    """The 'same'-size, 'symm'-boundary convolution of integer ``data`` with a kernel of whole
    numbers, as sums of shifted copies; None when that would not be exact (scipy must do it)."""
    if data.ndim != 2 or kernel.ndim != 2 or not (data.dtype == bool or np.issubdtype(data.dtype, np.integer)):
        return None
    p, q = kernel.shape
    if p % 2 == 0 or q % 2 == 0 or p > data.shape[0] or q > data.shape[1] or kernel.dtype.kind not in "biuf":
        return None
    if not np.all(np.isfinite(kernel)) or not np.array_equal(kernel, np.round(kernel)):
        return None
    dtype = np.result_type(data, kernel)
    peak = float(np.abs(kernel).sum()) * float(max(abs(int(data.max(initial=0))), abs(int(data.min(initial=0)))))
    if peak >= 2**15:  # the sum could overflow a narrow result type, where scipy's wrap-around would differ
        return None
    work = np.uint8 if data.dtype == bool and (kernel >= 0).all() and peak < 256 else np.int32
    padded = np.pad(data.view(np.uint8) if data.dtype == bool else data, ((p // 2, p // 2), (q // 2, q // 2)),
                    mode="symmetric").astype(work, copy=False)
    ny, nx = data.shape
    if (kernel == 1).all():  # a box: sum along rows, then along columns
        rows = sum(padded[:, n: n + nx] for n in range(q))
        return sum(rows[m: m + ny] for m in range(p)).astype(dtype)
    total = np.zeros(data.shape, dtype=work)
    for m in range(p):
        for n in range(q):
            weight = int(kernel[m, n])
            if weight:  # convolution: the kernel is flipped
                window = padded[p - 1 - m: p - 1 - m + ny, q - 1 - n: q - 1 - n + nx]
                total += window if weight == 1 else (weight * window).astype(work)
    return total.astype(dtype)


def convolve2d(in1, in2, mode: str = "full", boundary: str = "fill", fillvalue=0):
    """``scipy.signal.convolve2d``; exact whole-number sums for ``mode='same', boundary='symm'``."""
    from scipy import signal

    if mode == "same" and boundary == "symm":
        result = _whole_number_box_sum(np.asarray(in1), np.asarray(in2))
        if result is not None:
            return result
    return signal.convolve2d(in1, in2, mode=mode, boundary=boundary, fillvalue=fillvalue)


#: The packages ``drizzlepac.util.print_pkg_versions`` names in every AstroDrizzle log, in its order.
_LOGGED_PACKAGES = ("drizzlepac", "tweakwcs", "numpy", "astropy", "stwcs", "photutils")


def _version_line(software: str, git: bool) -> str:
    """One package's line as ``print_pkg_versions`` writes it; the version of one of its own packages not yet
    imported is its installed distribution's (the original imports it to read ``__version__``)."""
    module = sys.modules.get(software)
    if module is None and (git or software not in _LOGGED_PACKAGES):  # import it, as the original does
        try:
            module = importlib.import_module(software)
        except Exception:
            return f"{software} not found in path..."
    if module is None:
        try:
            return f"{software} Version -> {metadata.version(software)} "
        except (metadata.PackageNotFoundError, ValueError):
            return f"{software} not found in path..."
    version = getattr(module, "__version__", None)
    line = f"{software} Version -> {version} " if isinstance(version, str) else f"{software} No version defined.  "
    if git:
        try:
            line += "\n    GIT version -> " + "-".join([module.__version__, module.__version_post__,
                                                         module.__version_commit]).rstrip()
        except Exception:
            line += " "
    return line


def print_pkg_versions(packages=None, git: bool = False, svn: bool = False, log=None) -> None:
    """``drizzlepac.util.print_pkg_versions``, the same lines, without importing tweakwcs and photutils
    (which nothing else in AstroDrizzle loads) just to print their versions: ~0.7-1.5 CPU-s a run."""
    output = log.info if log is not None else print
    names = list(_LOGGED_PACKAGES)
    if packages is not None:
        names.extend(packages if isinstance(packages, list) else [packages])
    output("Version Information")
    output("-" * 20)
    sysver = sys.version.split("\n")
    output(f"Python Version {sysver.pop()}")
    for line in sysver:
        output(line)
    for software in names:
        output(_version_line(software, git))


class _Signal(types.ModuleType):
    """``scipy.signal`` as drizCR sees it: :func:`convolve2d` replaced, everything else scipy's."""

    def __init__(self) -> None:
        super().__init__("scipy.signal")
        self.convolve2d = convolve2d

    def __getattr__(self, name: str):
        from scipy import signal

        return getattr(signal, name)


def drizzlepac_version() -> str | None:
    try:
        return metadata.version("drizzlepac")
    except metadata.PackageNotFoundError:
        return None


def lean_import(submodule: str) -> types.ModuleType:
    """``drizzlepac.<submodule>`` without the package ``__init__``'s imports of unrelated tasks (for the
    checked drizzlepac; else, or once drizzlepac is loaded, the ordinary import). What ``__init__``
    gives AstroDrizzle is kept: ``__version__`` and stsci.skypac imported with its chatter silenced."""
    if "drizzlepac" not in sys.modules and drizzlepac_version() == CHECKED_DRIZZLEPAC:
        spec = importlib.util.find_spec("drizzlepac")
        package = importlib.util.module_from_spec(spec)
        sys.modules["drizzlepac"] = package
        try:
            package.__version__ = importlib.import_module("drizzlepac.version").__version__
            with contextlib.redirect_stdout(None):
                importlib.import_module("stsci.skypac")
            return importlib.import_module(f"drizzlepac.{submodule}")
        except BaseException:
            for name in [n for n in sys.modules if n == "drizzlepac" or n.startswith("drizzlepac.")]:
                del sys.modules[name]
            raise
    return importlib.import_module(f"drizzlepac.{submodule}")


@contextlib.contextmanager
def exact_fast_paths(enabled: bool = True) -> Iterator[tuple[str, ...]]:
    """Within the block, drizzlepac's ``driz_cr`` uses :func:`qderiv` and :func:`convolve2d`, and the log's
    version lines come from :func:`print_pkg_versions`; yields the names of what was replaced (empty: not
    ``enabled`` or another drizzlepac version, nothing replaced)."""
    if not enabled or drizzlepac_version() != CHECKED_DRIZZLEPAC:
        yield ()
        return
    from drizzlepac import drizCR, quickDeriv, util

    saved = (drizCR.signal, quickDeriv.qderiv, util.print_pkg_versions)
    drizCR.signal, quickDeriv.qderiv, util.print_pkg_versions = _Signal(), qderiv, print_pkg_versions
    try:
        yield ("quickDeriv.qderiv", "drizCR.signal.convolve2d", "util.print_pkg_versions")
    finally:
        drizCR.signal, quickDeriv.qderiv, util.print_pkg_versions = saved
