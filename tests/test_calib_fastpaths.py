"""The speed paths of the built-in engine (issue 15) give what the straightforward code gives, to the bit.

Blocked left-to-right sums, constant reference planes kept as broadcast views, and chips in threads
(``perchip.map_chips``: same results, logs in imset order, the first chip's error) are checked here
against the plain forms; the end-to-end proof is the comparison with calwf3/calacs (docs/calib.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.science.calib.context import CalContext
from pipeline.science.calib.imageio import RefImage
from pipeline.science.calib.perchip import map_chips, threads
from pipeline.science.calib.steps.destripe import seq_sum, seq_sum_minus
from pipeline.science.calib.steps.refimage import RefBlock


def test_blocked_sums_equal_one_cumsum_over_everything() -> None:
    rng = np.random.default_rng(7)
    a = rng.normal(3000.0, 40.0, (700, 333)) * np.exp(rng.normal(0, 3, (700, 333)))
    row = rng.normal(0, 50, (700, 1))
    assert seq_sum_minus(a, 12.625) == seq_sum(a - 12.625)
    assert seq_sum_minus(a, row) == seq_sum(a - row)
    assert seq_sum_minus(a, row, per_row=True).tobytes() == seq_sum(a - row, axis=1).tobytes()
    assert seq_sum_minus(a[:0], 1.0) == 0.0
    single = a.astype(np.float32)[::-1]   # float32 pixels, a view with negative strides, as amp views are
    per_row = seq_sum_minus(single, row, per_row=True)
    for r in (0, 129, 699):   # C's loop: one double accumulator per row, columns in order
        total = 0.0
        for x in single[r]:
            total += float(x) - float(row[r, 0])
        assert per_row[r] == total


def _reference(tmp_path: Path) -> RefImage:
    sci = np.arange(12, dtype=np.float32).reshape(3, 4) + np.float32(0.3)
    hdus = [fits.PrimaryHDU(), fits.ImageHDU(sci, name="SCI")]
    for name, value in (("ERR", 0.05), ("DQ", 4)):
        h = fits.ImageHDU(name=name)
        h.header.update(NPIX1=4, NPIX2=3, PIXVALUE=value)
        hdus.append(h)
    fits.HDUList(hdus).writeto(tmp_path / "ref.fits")
    return RefImage.open("DARKFILE", tmp_path / "ref.fits")


def test_constant_planes_are_read_only_views_with_the_values_of_full_arrays(tmp_path: Path) -> None:
    imset = _reference(tmp_path).imset(1)
    err, dq = imset.err(), imset.dq()
    assert err.shape == dq.shape == (3, 4) and err.strides == (0, 0) and not err.flags.writeable
    assert err.tobytes() == np.full((3, 4), 0.05, np.float32).tobytes()
    assert dq.tobytes() == np.full((3, 4), 4, np.uint16).tobytes()
    with pytest.raises(ValueError):
        err[0, 0] = 1.0
    k = np.array([[0.5, 3.0, np.float32(1 / 3), 7.25]], np.float32)
    block = RefBlock(imset.sci(), err, dq).scaled(k)
    want = np.multiply(np.full((3, 4), 0.05, np.float32), k, dtype=np.float32)
    assert block.err is err   # the factor stays pending: no full-size scaled ERR
    assert block.scaled_err().tobytes() == want.tobytes()
    assert block.scaled_err(slice(1, 3)).tobytes() == want[1:3].tobytes()


def _ctx(tmp_path: Path, threads: str, sink: list[tuple[str, str]]) -> CalContext:
    return CalContext(path=tmp_path / "x_raw.fits", primary=fits.Header(), detector="UVIS",
                      environ={"OWL_CALIB_THREADS": threads}, log_sink=lambda s, t: sink.append((s, t)))


@pytest.mark.parametrize("threads", ["1", "2"])
def test_map_chips_keeps_order_of_results_and_logs(tmp_path: Path, threads: str) -> None:
    lines: list[tuple[str, str]] = []
    ctx = _ctx(tmp_path, threads, lines)

    def pixels(n: int) -> np.ndarray:
        a = np.full((512, 512), n, np.float32)
        for _ in range(3 - n):   # the first chip finishes last when run side by side
            a = np.sqrt(a * a + 1)
        return a

    def work(n: int) -> np.ndarray:
        ctx.log(f"chip {n} start")
        a = pixels(n)
        ctx.warn(f"chip {n} done")
        return a

    results = map_chips(ctx, work, [1, 2])
    assert [r.tobytes() for r in results] == [pixels(1).tobytes(), pixels(2).tobytes()]
    assert lines[-4:] == [("info", "chip 1 start"), ("warn", "chip 1 done"),
                          ("info", "chip 2 start"), ("warn", "chip 2 done")]
    assert ctx.history[-4:] == ["chip 1 start", "WARNING: chip 1 done", "chip 2 start", "WARNING: chip 2 done"]


def test_map_chips_raises_the_first_failing_chip_after_its_log(tmp_path: Path) -> None:
    lines: list[tuple[str, str]] = []
    ctx = _ctx(tmp_path, "2", lines)

    def work(n: int) -> int:
        ctx.log(f"chip {n}")
        if n >= 2:
            raise ValueError(f"chip {n} failed")
        return n

    with pytest.raises(ValueError, match="chip 2 failed"):
        map_chips(ctx, work, [1, 2, 3])
    assert [t for _, t in lines] == ["chip 1", "chip 2"]   # what a loop would have logged before stopping


def test_thread_count_follows_owl_then_the_batch_system_then_the_cpus() -> None:
    assert threads({"OWL_CALIB_THREADS": "3", "OMP_NUM_THREADS": "1"}) == 3
    assert threads({"OMP_NUM_THREADS": "1"}) == 1          # HTCondor: the CPUs the job asked for
    assert threads({"OWL_CALIB_THREADS": "x"}) >= 1
