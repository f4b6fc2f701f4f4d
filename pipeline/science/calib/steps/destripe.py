"""Post-SM4 ACS/WFC bias level: bias-shift, cross-talk and destriping (``blev_funcs_postsm4.c``).

Each amp is handled as a 2068 x 2072 "amp array" with its amp at the origin (24 prescan columns
then 2048 science columns). All arithmetic is double; results go back as float32.

* Bias shift (DS_INT readouts at gain 2; ISR ACS 2012-02): a per-amp model of the DC offset the
  pre-amp's AC coupling leaves behind, run along the serial clocking order with 146 virtual gap
  pixels per row (filled with the "magic square" mean of rows 2057-2066, cols 13-22); the magic
  square is measured again afterwards and subtracted.
* Cross talk: ``SCI[j] += 9.1e-5 * SCI[nx-1-j]`` along each row, in place and left to right, so
  the right half sees the already-corrected left half.
* Destripe: the prescan column means (after removing each row's mean of columns 13-24, 4 x 5-sigma
  clipping, skipping rows with columns 24-29 >= 50000) are subtracted from the prescan; rows are
  judged good or bad; the amp's bias mean (6 x mean-absolute-deviation clipping, 5 to 10 passes) is
  subtracted from the whole amp (MEANBLEV); the row stripe (mean over amps with a good row and
  prescan std < 15, needing >= 2 amps) is interpolated along the serial clocking
  ``i + (j - 11.5)/(2072 + 146)`` and subtracted from all amps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.science.calib.lfilter import first_order
from pipeline.science.calib.numerics import BLOCK_ROWS, row_blocks

NBIAS_COLS = 24
NOSCN_ROWS = 20
SERIAL_FREQ = 1000.0 / 22.0
PARALLEL_SHIFT = 3.212
NGAP_PIX = int(SERIAL_FREQ * PARALLEL_SHIFT + 0.5)
TIME_CONST = (37.290251, 36.180001, 37.867770, 42.461249)
DC_RATIO = (0.3, 0.3, 0.3, 0.3)
DSI_SENS = (2.9188919e-3, 10.805754e-3, 12.432145e-3, 3.8596253e-3)
CROSS_SCALE = 9.1e-5
#: ``map(fn, items)``, possibly in threads (the chips' :func:`~pipeline.science.calib.perchip.map_chips`).
Mapper = Callable[[Callable[[Any], Any], Sequence[Any]], Any]


def amp_view(chip_sci: np.ndarray, amp: int, full_frame: bool = True) -> np.ndarray:
    """The amp array (a view) with the amp at [0, 0]: A/B flip rows, B/D flip columns."""
    nx = chip_sci.shape[1]
    half = nx // 2 if full_frame else nx
    if amp == 0:
        return chip_sci[::-1, :half]
    if amp == 1:
        return chip_sci[::-1, ::-1][:, :half]
    if amp == 2:
        return chip_sci[:, :half]
    return chip_sci[:, ::-1][:, :half]


def _magic_square(a: np.ndarray) -> float:
    block = a[2057:2067, 13:23]
    return seq_sum(block) / block.size


def _shifted(ampdata: np.ndarray, amp: int, out: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """The DSI-corrected amp array (double, into ``out`` when given) before the second magic square
    is removed, and that magic square. ``ampdata``: float32 or double, any strides; it is read a
    block of rows at a time."""
    rows, cols = ampdata.shape
    magic = _magic_square(ampdata)
    factor = 1.0 - math.exp(-1.0 / (TIME_CONST[amp] * SERIAL_FREQ))
    pole = 1.0 - factor
    k = 10.0 / 22.0
    dc_last = magic * DC_RATIO[amp]    # dc[0]
    state = pole * dc_last
    out = np.empty((rows, cols)) if out is None else out
    # The pixel stream (each row followed by its virtual gap pixels) goes through in blocks of rows,
    # the filter state carried from one block to the next: the same operations on every element as
    # on the whole stream at once, in two buffers allocated once and reused block after block (fresh
    # ones per block cost page faults: ~half of this step's time on a cold process).
    stream = np.empty((min(BLOCK_ROWS, rows), cols + NGAP_PIX))
    scratch = np.empty(stream.size)
    for block in row_blocks(rows):
        gap = stream[:block.stop - block.start]
        gap[:, :cols] = ampdata[block]
        gap[:, cols:] = magic
        x = gap.ravel()
        # dc[j] = x[j-1]*factor*ratio + (1-factor)*dc[j-1], the products rounded in calacs's order
        drive = np.multiply(x, factor, out=scratch[:x.size])
        drive *= DC_RATIO[amp]
        dc, zf = first_order(drive, pole, state)
        state = zf[0]
        # corrected = (x - sens*dc) - k*(dc - previous dc), in the buffers already there
        step = drive
        np.subtract(dc[1:], dc[:-1], out=step[1:])
        step[0] = dc[0] - dc_last
        dc_last = dc[-1]
        step *= k
        dc *= DSI_SENS[amp]
        x -= dc
        x -= step
        out[block] = gap[:, :cols]
    return out, _magic_square(out)


def bias_shift(ampdata: np.ndarray, amp: int) -> tuple[np.ndarray, float]:
    """Correct one amp array (float32 or double) for the DSI bias shift; returns (data as double,
    magic square removed)."""
    out, magic2 = _shifted(ampdata, amp)
    out -= magic2
    return out, magic2


def bias_shift_in_place(amp_array: np.ndarray, amp: int, work: np.ndarray | None = None) -> float:
    """:func:`bias_shift` of a float32 amp array (a view such as :func:`amp_view`), the result
    rounded to float32 into it; returns the magic square removed. ``work``: a double array of the
    amp's shape to compute in (its contents are overwritten), else a new one."""
    out, magic2 = _shifted(amp_array, amp, work)
    np.subtract(out, magic2, out=amp_array, casting="same_kind")
    return magic2


def cross_talk(sci: np.ndarray) -> None:
    """In-place cross-talk removal, left to right (so the right half uses corrected values)."""
    nx = sci.shape[1]
    half = (nx + 1) // 2
    for rows in row_blocks(sci.shape[0]):   # rows are independent: blocks keep the temporaries in cache
        part = sci[rows]
        left_src = part[:, ::-1][:, :half].astype(np.float64)   # original right half, mirrored
        left_src *= CROSS_SCALE
        part[:, :half] += left_src.astype(np.float32)
        right_src = part[:, ::-1][:, half:].astype(np.float64)  # now-corrected left half
        right_src *= CROSS_SCALE
        part[:, half:] += right_src.astype(np.float32)


def seq_sum(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """Left-to-right double sum in C loop order (numpy's ``sum`` is pairwise, which changes the last
    bits): over the flattened array (row-major) or along ``axis``."""
    if axis is None:
        flat = values.ravel()
        return float(np.cumsum(flat, dtype=np.float64)[-1]) if flat.size else 0.0
    if values.shape[axis] == 0:
        return np.zeros(np.delete(values.shape, axis))
    return np.take(np.cumsum(values, axis=axis, dtype=np.float64), -1, axis=axis)


def seq_sum_minus(values: np.ndarray, minus: float | np.ndarray, *, per_row: bool = False) -> np.ndarray | float:
    """``seq_sum(values - minus)`` (all of it, or ``per_row`` along axis 1) for a 2-D ``values``
    (double, or float32 taken exactly into double) and a scalar or per-row ``minus`` (shape (rows, 1)),
    the difference in double, computed in blocks of rows in one reused buffer, so that neither the
    difference nor the running sum is ever a full-size array.

    All of it: the running total is carried from block to block in the slot before the block's
    differences, where the next cumulative sum starts: the same additions, in the same order, as one
    ``cumsum`` over everything. Per row: the block's differences are laid out transposed (a row of
    the block per column of the buffer) and summed over the buffer's first axis, which numpy does one
    buffer row after the other for all columns at once: each image row's additions in column order,
    as a C loop does, but many rows per instruction instead of one chain of dependent additions."""
    rows, cols = values.shape
    minus = minus if isinstance(minus, np.ndarray) else np.float64(minus)  # a double, even for float32 values
    if per_row:
        out = np.empty(rows)
        across = np.empty((cols, min(BLOCK_ROWS, rows)))
        for block in row_blocks(rows):
            diff = across[:, :block.stop - block.start]
            np.subtract(values[block].T, (minus[block] if minus.ndim else minus).T, out=diff)
            np.add.reduce(diff, axis=0, out=out[block])   # no columns: 0.0, the sum of nothing
        return out
    total: float | None = None
    buf = np.empty(min(BLOCK_ROWS, rows) * cols + 1)
    for block in row_blocks(rows):
        n = (block.stop - block.start) * cols
        diff = buf[1:1 + n].reshape(block.stop - block.start, cols)
        np.subtract(values[block], minus[block] if minus.ndim else minus, out=diff)
        if n:
            run = buf[1:1 + n] if total is None else buf[:1 + n]
            if total is not None:
                run[0] = total
            np.cumsum(run, out=run)
            total = float(run[-1])
    return 0.0 if total is None else total


def _calc_mean_std(values: np.ndarray, sig: float) -> tuple[float, float]:
    """4 passes of sigma clipping around the mean (sample std about the previous mean)."""
    mean = seq_sum(values) / values.size
    std = math.sqrt(seq_sum((values - mean) ** 2) / (values.size - 1))
    for _ in range(4):
        keep = np.abs(values - mean) <= sig * std
        n = int(keep.sum())
        kept = values[keep]
        new_mean = seq_sum(kept) / n if n else math.nan
        new_std = math.sqrt(seq_sum((kept - mean) ** 2) / (n - 1)) if n > 1 else math.nan
        mean, std = new_mean, new_std
    return mean, std


@dataclass
class Amp:
    """One amp of a full frame being destriped: its float32 pixels (an :func:`amp_view` of the chip,
    written once, by :func:`remove_stripes`) and its prescan columns in double, which is all the
    levels change before then. calacs works on a double copy of every amp (4 x 34 MB); the science
    columns are only read until the stripes come out, and a float32 value taken into double is
    exact, so each pixel gets the same double operations in the same order as there."""

    pixels: np.ndarray
    #: The prescan in double: column means, then the bias mean, subtracted.
    prescan: np.ndarray
    #: Rows usable for the stripe model (``find_good_rows``, then narrowed by ``remove_stripes``).
    good: np.ndarray
    #: The amp's bias mean (MEANBLEV), still to be subtracted from the science columns.
    level: float


def amp_levels(pixels: np.ndarray) -> Amp:
    """Prescan column means out, good rows, the bias mean (``blev_funcs_postsm4.c``, one amp)."""
    prescan = pixels[:, :NBIAS_COLS].astype(np.float64)
    subtract_bias_column_means(prescan, pixels)
    good = find_good_rows(prescan, pixels[:, NBIAS_COLS:])
    level = bias_mean(prescan, good)
    prescan -= level
    return Amp(pixels, prescan, good, level)


def subtract_bias_column_means(prescan: np.ndarray, pixels: np.ndarray) -> None:
    """Each prescan column's clipped mean (of the prescan less each row's mean of columns 12-23),
    subtracted from that column; rows whose columns 24-29 reach 50000 are left out of the means."""
    rowmean = seq_sum(prescan[:, 12:NBIAS_COLS], axis=1) / 12.0
    minus = prescan - rowmean[:, None]
    usable = np.all(pixels[:, 24:30] < 50000, axis=1)
    for j in range(NBIAS_COLS):
        mean, _ = _calc_mean_std(minus[usable, j], 5.0)
        prescan[:, j] -= mean


def find_good_rows(prescan: np.ndarray, science: np.ndarray) -> np.ndarray:
    """Rows whose mean (less the prescan level) is within 100 of the amp's, none of columns 24-29
    above 70000 (row 0 never); ``science``: the amp's columns from 24 on (float32 or double)."""
    rows = prescan.shape[0]
    body = slice(0, rows - NOSCN_ROWS)
    bias_mean = seq_sum(prescan[body]) / ((rows - NOSCN_ROWS) * NBIAS_COLS)
    amp_mean = seq_sum_minus(science[body], bias_mean) / (science.shape[1] * (rows - NOSCN_ROWS))
    good = np.zeros(rows, bool)
    ref = seq_sum(prescan[1:] + prescan[:-1], axis=1) / (2 * NBIAS_COLS)
    row_means = seq_sum_minus(science[1:], ref[:, None], per_row=True) / science.shape[1]
    dev = np.trunc(row_means - amp_mean)  # C abs() on a double truncates to int first
    bad = (np.abs(dev) > 100) | np.any(science[1:, :6] > 70000, axis=1)
    good[1:] = ~bad
    return good


def bias_mean(prescan: np.ndarray, good_rows: np.ndarray) -> float:
    """Mean of the good prescan pixels with 6 x mean-absolute-deviation clipping (5-10 passes).

    ``calc_bias_mean_std`` walks the prescan column by column: the sums run in column-major order.
    """
    vals = prescan.T  # column-major walk = row-major over the transpose
    good = np.repeat(good_rows[None, :], NBIAS_COLS, axis=0)
    ntot1 = int(good.sum())
    nits = 0
    while True:
        ntot2 = ntot1
        nits += 1
        n = int(good.sum())
        mean = seq_sum(vals[good]) / n if n else 0.0
        std = seq_sum(np.abs(vals[good] - mean)) / n if n else 0.0
        good &= ~(np.abs(vals - mean) > 6.0 * std)
        ntot1 = int(good.sum())
        if not (nits <= 5 or (nits <= 10 and ntot1 < ntot2)):
            break
    return seq_sum(vals[good]) / ntot1 if ntot1 else 0.0


def remove_stripes(amps: list[Amp], mapper: Mapper | None = None) -> tuple[int, int]:
    """The row stripe common to the amps, interpolated along the serial clocking, out of every amp;
    each amp's pixels become ``float32(((double pixel - level) - stripe))`` (the prescan: its double
    values less the stripe). Returns (rows fixed, rows skipped); ``good`` keeps the rows used.
    ``mapper`` (``map(fn, items)`` in threads, e.g. :func:`~pipeline.science.calib.perchip.map_chips`)
    takes the two halves of the rows side by side: every pixel gets the same operations either way."""
    rows = amps[0].pixels.shape[0]
    means = np.stack([seq_sum(a.prescan, axis=1) / NBIAS_COLS for a in amps])
    stds = np.stack([np.sqrt(seq_sum((a.prescan - m[:, None]) ** 2, axis=1) / (NBIAS_COLS - 1))
                     for a, m in zip(amps, means, strict=True)])
    ok = np.stack([a.good for a in amps]) & ~(stds >= 15)
    for a, o in zip(amps, ok, strict=True):
        a.good[...] = o
    n = ok.sum(axis=0)
    rowmeans = np.where(n >= 2, seq_sum(np.where(ok, means, 0.0), axis=0) / np.maximum(n, 1), 0.0)
    blocks = list(row_blocks(rows))
    half = (len(blocks) + 1) // 2
    parts = [blocks[:half], blocks[half:]] if len(blocks) > 1 else [blocks]
    (mapper or (lambda fn, items: [fn(item) for item in items]))(
        lambda part: _subtract_stripes(amps, rowmeans, part), parts)
    fixed = int((n >= 2).sum())
    return fixed, rows - fixed


def _subtract_stripes(amps: list[Amp], rowmeans: np.ndarray, blocks: list[slice]) -> None:
    """The stripe model over ``blocks`` of rows, out of every amp, a block at a time (no full-size
    temporaries; one buffer per call)."""
    rows, cols = amps[0].pixels.shape
    along = (np.arange(cols, dtype=np.float64)[None, :] - 11.5) / float(cols + 146)
    buf = np.empty((min(BLOCK_ROWS, rows), cols))
    for block in blocks:
        pt = np.arange(block.start, block.stop, dtype=np.float64)[:, None] + along
        lower = np.clip(np.floor(pt).astype(np.int64), 0, rows - 2)
        dist = pt - lower
        interp = rowmeans[lower] + dist * (rowmeans[lower + 1] - rowmeans[lower])
        part = buf[:block.stop - block.start]
        for a in amps:
            part[:, :NBIAS_COLS] = a.prescan[block]
            part[:, NBIAS_COLS:] = a.pixels[block, NBIAS_COLS:]
            part[:, NBIAS_COLS:] -= a.level
            part -= interp
            a.pixels[block] = part
