"""Cutting a reference image down to the science array, and the 1-D arithmetic of hstcal.

``sub1d``: ``SCI -= R; ERR = sqrt(ERR^2 + RERR^2); DQ |= RDQ``.
``div1d``: where ``F == 0`` only ``DQ |= 512``; elsewhere ``SCI /= F`` and
``ERR = sqrt((ERR/F)^2 + (FE*SCI/F/F)^2)``; ``DQ |= FDQ`` everywhere. All float32, as in C.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.core.errors import MissingReference
from pipeline.science.calib import scratch
from pipeline.science.calib.chip import Chip
from pipeline.science.calib.imageio import RefImset, find_line
from pipeline.science.calib.numerics import BLOCK_ROWS, row_blocks
from pipeline.science.calib.steps.dqi import BADFLAT


@dataclass
class RefBlock:
    """Reference SCI/ERR/DQ over the science array (``trim1d`` of each line).

    The arrays may be read-only views of the reference file (memory-mapped, big-endian): scale
    them into new arrays (:meth:`scaled`), never in place. A scaled block keeps ERR as read, with
    the factor pending (``err_scale``): the steps take ``ERR * k`` a block of rows at a time
    (:meth:`scaled_err`), so no full-size scaled ERR is ever allocated (fresh pages cost more than
    the arithmetic on the VMs a CA node runs on). Each element gets the same float32 product.
    """

    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    #: The factor (a scalar or a per-column row) ERR is still to be multiplied by; None: none.
    err_scale: np.ndarray | np.float32 | None = None

    def scaled(self, k: np.ndarray | np.float32, offset: np.float32 | None = None,
               out: np.ndarray | None = None) -> RefBlock:
        """SCI times ``k`` (a scalar or a per-column row) in float32 (into ``out`` when given, e.g.
        a :mod:`~pipeline.science.calib.scratch` buffer), ``offset`` added; ERR times ``k`` pending."""
        sci = np.multiply(self.sci, k, out=out, dtype=np.float32)
        if offset is not None:
            sci += offset
        err = self.err if self.err_scale is None else self.scaled_err()  # a second factor: the first applied
        return RefBlock(sci, err, self.dq, k)

    def scaled_err(self, rows: slice = slice(None)) -> np.ndarray:
        """ERR over ``rows`` with the pending factor applied (``ERR * k`` in float32, as in C)."""
        err = self.err[rows]
        return err if self.err_scale is None else np.multiply(err, self.err_scale, dtype=np.float32)


#: Column rule for a subarray of a raw-format (untrimmed, 4-amp) reference: (x0, nx) -> columns.
ColumnRule = Callable[[int, int], np.ndarray]


def cut_reference(chip: Chip, ref: RefImset, *, columns: ColumnRule | None = None,
                  need_err: bool = True, need_dq: bool = True) -> RefBlock:
    """The part of ``ref`` under the science chip, placed by LTV corners (``FindLine``).

    Same corner, binning and width: the whole image. Otherwise the subarray at (x0, y0), with
    ``columns`` deciding which reference columns a raw-format subarray maps to. Different binning
    is an error, as in hstcal (SIZE_MISMATCH).
    """
    ny, nx = chip.sci.shape
    place = find_line(chip.imset.sci_header, nx, ref.header, ref.nx)
    where = f"{ref.ref.keyword} {ref.ref.path.name}"
    if place.rx != 1 or place.ry != 1:
        raise MissingReference(f"{where}: reference and science image are not binned to the same pixel size",
                               keyword=ref.ref.keyword, path=ref.ref.path)
    rows = slice(place.y0, place.y0 + ny)
    cols = columns(place.x0, nx) if (columns is not None and not place.same_size) else np.arange(place.x0,
                                                                                                place.x0 + nx)
    if place.y0 < 0 or place.y0 + ny > ref.ny or cols.min() < 0 or cols.max() >= ref.nx:
        raise MissingReference(f"{where}: science array ({nx}x{ny} at {place.x0},{place.y0}) is not inside the "
                               f"reference ({ref.nx}x{ref.ny})", keyword=ref.ref.keyword, path=ref.ref.path)
    contiguous = bool(cols.size == 0 or (cols[-1] - cols[0] == cols.size - 1))
    take = (lambda a: a[rows, cols[0]:cols[-1] + 1]) if contiguous else (lambda a: a[rows][:, cols])
    sci = take(ref.sci())
    err = take(ref.err()) if need_err else np.zeros(sci.shape, np.float32)
    dq = take(ref.dq()) if need_dq else np.zeros(sci.shape, np.uint16)
    return RefBlock(sci, err, dq)


def sub1d(chip: Chip, ref: RefBlock) -> None:
    sci, err, dq = chip.sci, chip.err, chip.dq
    sci -= ref.sci
    for rows in row_blocks(sci.shape[0]):
        e = err[rows]
        np.square(e, out=e)
        e += np.square(ref.scaled_err(rows), dtype=np.float32)
        np.sqrt(e, out=e)
    dq |= ref.dq


def div1d(chip: Chip, ref: RefBlock) -> None:
    for rows in row_blocks(chip.sci.shape[0]):
        sci, err, dq = chip.sci[rows], chip.err[rows], chip.dq[rows]
        f, fe = ref.sci[rows], ref.scaled_err(rows)
        zero = f == 0
        np.bitwise_or(dq, np.uint16(BADFLAT), out=dq, where=zero)
        ok = ~zero
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            a_expr = np.divide(err, f, dtype=np.float32)
            b_expr = np.multiply(fe, sci, dtype=np.float32)
            b_expr /= f
            b_expr /= f
            np.divide(sci, f, out=sci, where=ok)
            np.square(a_expr, out=a_expr)
            np.square(b_expr, out=b_expr)
            a_expr += b_expr
            np.sqrt(a_expr, out=err, where=ok)
        dq |= ref.dq[rows]


def scale_by_amp(block: RefBlock, k_left: np.float32, k_right: np.float32, ampx: int,
                 out: np.ndarray | None = None) -> RefBlock:
    """``multgn1d``: columns < ampx times ``k_left``, the rest times ``k_right`` (SCI and ERR)."""
    k = np.full(block.sci.shape[1], k_right, np.float32)
    k[:ampx] = k_left
    return block.scaled(k[None, :], out=out)


def gain_factors(k0: float, gains: tuple[float, float]) -> tuple[np.float32, np.float32]:
    """``multgn1d`` scale factors: ``k0/gain`` per slot in float32; a zero left gain gives 0."""
    k0f = np.float32(k0)
    left = np.float32(k0f / np.float32(gains[0])) if gains[0] > 0 else np.float32(0.0)
    with np.errstate(divide="ignore"):
        right = np.float32(k0f / np.float32(gains[1]))
    return left, right


def line_weighted_mean(values: np.ndarray, dq: np.ndarray, sdqflags: int) -> float:
    """MEANDARK/MEANFLSH: Σ_lines(mean_good * frac_good) / Σ_lines frac_good (float sums per line)."""
    good = (dq & np.uint16(sdqflags)) == 0
    ngood = good.sum(axis=1)
    sums = np.add.reduce(values, axis=1, where=good, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(ngood > 0, (sums / np.maximum(ngood, 1)).astype(np.float32), np.float32(0))
    weights = np.where(ngood > 0, ngood.astype(np.float32) / np.float32(values.shape[1]), np.float32(0))
    total = np.cumsum((means * weights).astype(np.float32), dtype=np.float32)[-1]
    wsum = np.cumsum(weights, dtype=np.float32)[-1]
    return float(np.float32(total / wsum)) if wsum > 0 else 0.0


def image_mean(values: np.ndarray, dq: np.ndarray, sdqflags: int) -> float:
    """calacs's ``AvgSciVal`` (MEANDARK, MEANFLSH): one double mean over every good pixel, as float.
    The mask is built a block of rows at a time into a borrowed buffer (no full-size temporaries)."""
    with scratch.borrowed(dq.shape, np.bool_) as good:
        flags = np.empty((min(BLOCK_ROWS, dq.shape[0]), *dq.shape[1:]), np.uint16)
        for rows in row_blocks(dq.shape[0]):
            part = flags[:rows.stop - rows.start]
            np.bitwise_and(dq[rows], np.uint16(sdqflags), out=part)
            np.equal(part, 0, out=good[rows])
        n = int(np.count_nonzero(good))
        return float(np.float32(np.sum(values, where=good, dtype=np.float64) / n)) if n else 0.0
