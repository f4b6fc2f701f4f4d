"""Chip-sized temporaries reused across steps (``calib/scratch.py``), the side-by-side read of an
exposure's imsets, and the destripe's two halves: each gives what the plain version gives."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.science.calib import scratch
from pipeline.science.calib.imageio import read_exposure
from pipeline.science.calib.numerics import row_blocks
from pipeline.science.calib.steps import destripe
from pipeline.science.calib.steps.refimage import image_mean


def test_a_buffer_given_back_is_lent_again_and_two_borrowers_never_share_one() -> None:
    with scratch.borrowed((300, 200), np.float64) as a:
        a[...] = 1.0
        first = a.__array_interface__["data"][0]
        with scratch.borrowed((300, 200), np.float64) as b:
            assert not np.shares_memory(a, b)
    with scratch.borrowed((100, 50), np.float32) as c:   # smaller: one of the free buffers
        assert c.shape == (100, 50) and c.dtype == np.float32 and c.flags.c_contiguous
        assert c.__array_interface__["data"][0] in (first, b.__array_interface__["data"][0])
    assert len(scratch._free) <= scratch.KEEP


def test_threads_borrowing_at_once_get_distinct_buffers() -> None:
    seen: list[np.ndarray] = []
    barrier = threading.Barrier(3)

    def borrow() -> None:
        with scratch.borrowed((64, 64), np.float32) as a:
            barrier.wait()
            seen.append(a)
            barrier.wait()

    workers = [threading.Thread(target=borrow) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(seen) == 3
    assert not any(np.shares_memory(x, y) for i, x in enumerate(seen) for y in seen[i + 1:])


def test_image_mean_equals_the_whole_array_masked_sum() -> None:
    rng = np.random.default_rng(5)
    values = rng.normal(3.0, 2.0, (300, 70)).astype(np.float32)
    dq = rng.choice(np.array([0, 0, 0, 4, 16, 256], np.uint16), size=values.shape)
    good = (dq & np.uint16(16 | 256)) == 0
    want = float(np.float32(np.sum(values, where=good, dtype=np.float64) / np.count_nonzero(good)))
    assert image_mean(values, dq, 16 | 256) == want
    assert image_mean(values, np.full_like(dq, 16), 16) == 0.0


def test_reading_imsets_side_by_side_gives_the_same_arrays(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    hdus: list[fits.PrimaryHDU | fits.ImageHDU] = [fits.PrimaryHDU(header=fits.Header([("NEXTEND", 6)]))]
    for extver in (1, 2):
        sci = fits.ImageHDU(rng.integers(-32768, 32767, (40, 30), dtype=np.int16), name="SCI", ver=extver)
        sci.header["BZERO"] = 32768
        err = fits.ImageHDU(name="ERR", ver=extver)
        err.header.update(NPIX1=30, NPIX2=40, PIXVALUE=0.5)
        dq = fits.ImageHDU(rng.integers(0, 500, (40, 30), dtype=np.int16), name="DQ", ver=extver)
        hdus += [sci, err, dq]
    path = tmp_path / "x_raw.fits"
    fits.HDUList(hdus).writeto(path)
    one, two = read_exposure(path), read_exposure(path, workers=2)
    for a, b in zip(one.imsets, two.imsets, strict=True):
        for name in ("sci", "err", "dq"):
            x, y = getattr(a, name), getattr(b, name)
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes()
    assert float(two.imsets[1].err[3, 4]) == 0.5


def _amps(seed: int) -> list[destripe.Amp]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(4):
        pixels = rng.normal(100.0, 5.0, (300, 40)).astype(np.float32)
        prescan = pixels[:, :destripe.NBIAS_COLS].astype(np.float64)
        out.append(destripe.Amp(pixels, prescan, np.ones(300, bool), 2.5))
    return out


def test_stripes_removed_in_two_halves_side_by_side_equal_one_pass() -> None:
    one, two = _amps(9), _amps(9)
    assert destripe.remove_stripes(one) == destripe.remove_stripes(
        two, lambda fn, parts: [t.result() for t in [_Run(fn, p) for p in parts]])
    for a, b in zip(one, two, strict=True):
        assert a.pixels.tobytes() == b.pixels.tobytes()


class _Run(threading.Thread):
    """One part in a thread of its own (what map_chips does with two CPUs)."""

    def __init__(self, fn, part) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.fn, self.part = fn, part
        self.start()

    def run(self) -> None:
        self.fn(self.part)

    def result(self) -> None:
        self.join()


def _masked_extremes(arr: np.ndarray, good: np.ndarray) -> tuple[float, float]:
    """What the statistics did before: numpy's masked reductions a block of rows at a time, the
    blocks' results taken with Python's min/max in row order."""
    inf = np.float32(np.inf)
    lo, hi = inf, -inf
    for rows in row_blocks(arr.shape[0]):
        if np.count_nonzero(good[rows]):
            lo = min(lo, np.min(arr[rows], where=good[rows], initial=inf))
            hi = max(hi, np.max(arr[rows], where=good[rows], initial=-inf))
    return float(lo), float(hi)


def test_statistics_extremes_equal_the_masked_reductions_signed_zeros_included() -> None:
    from pipeline.science.calib.steps.stats import image_stats

    rng = np.random.default_rng(11)
    shape = (300, 1000)
    err = np.abs(rng.normal(5.0, 1.0, shape)).astype(np.float32)
    err[::7, ::5] = 0.0                     # ERR <= 0 is not a good pixel
    dq = rng.choice(np.array([0, 0, 0, 0, 4, 16], np.uint16), size=shape)
    half = rng.random(shape) < 0.5
    for sci in (rng.normal(0.0, 3.0, shape).astype(np.float32),
                np.where(half, np.abs(rng.normal(0.0, 3.0, shape)), 0.0).astype(np.float32),  # min 0.0
                np.where(half, np.float32(-0.0), np.float32(0.0))):          # zeros of both signs only
        sci_kw, err_kw = image_stats(sci, err, dq, 16)
        good = ((dq & 16) == 0) & (err > 0)
        lo, hi = _masked_extremes(sci, good)
        snr = np.divide(sci, err, where=good, out=np.zeros(shape, np.float32))
        snr_lo, snr_hi = _masked_extremes(snr, good)
        for got, want in ((sci_kw["GOODMIN"], lo), (sci_kw["GOODMAX"], hi), (sci_kw["SNRMIN"], snr_lo),
                          (sci_kw["SNRMAX"], snr_hi), (err_kw["GOODMIN"], _masked_extremes(err, good)[0])):
            assert got == want and np.signbit(got) == np.signbit(want)


def test_signed_zero_extremes_keep_the_sign_the_masked_reduction_gives() -> None:
    """A gathered array's vectorised min/max may pick the other zero; the masked one decides."""
    from pipeline.science.calib.steps.stats import _extremes

    rng = np.random.default_rng(0)
    inf = np.float32(np.inf)
    for _ in range(100):
        zeros = np.where(rng.random((128, 1000)) < 0.5, np.float32(-0.0), np.float32(0.0))
        good = rng.random(zeros.shape) < 0.8
        low, high = _extremes(zeros, good, inf)
        assert np.signbit(low) == np.signbit(np.min(zeros, where=good, initial=inf))
        assert np.signbit(high) == np.signbit(np.max(zeros, where=good, initial=-inf))
