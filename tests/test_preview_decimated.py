"""Previews of pictures larger than PREVIEW_MAX: every f-th pixel, read decimated, with the usual stretch."""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from pipeline.science import preview


def _image(shape: tuple[int, int], seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sci = rng.normal(900, 20, shape)
    sci[rng.integers(0, shape[0], 300), rng.integers(0, shape[1], 300)] += 30000  # "stars"
    dq = np.zeros(shape, np.int16)
    dq[::7, ::5] = 256  # flagged pixels, some of them on the decimated grid
    return sci, dq


def _write(path, sci, dq, dtype) -> None:
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(sci.astype(dtype), name="SCI"),
                  fits.ImageHDU(dq, name="DQ")]).writeto(path)


def test_large_scaled_integer_image_is_shown_at_every_fth_pixel(tmp_path):
    step = 3
    shape = (preview.PREVIEW_MAX * step - 40, 700)  # needs f = 3
    sci, dq = _image(shape)
    big = tmp_path / "idn101a1q_raw.fits"
    _write(big, np.round(sci), dq, np.uint16)  # astropy stores int16 with BZERO = 32768, as raws are
    with fits.open(big, memmap=True, do_not_scale_image_data=True) as hdul:  # as render_image opens it
        assert hdul["SCI"].header["BZERO"] == 32768
        # the stretch is affine-invariant, so check the scaling itself against astropy's scaled read
        np.testing.assert_array_equal(preview._stored(hdul["SCI"], step), fits.getdata(big, "SCI")[::step, ::step])
    small = tmp_path / "idn101a2q_raw.fits"
    _write(small, np.round(sci)[::step, ::step], dq[::step, ::step], np.float32)  # the same pixels, unscaled

    shown = preview.render_image(big)
    assert shown.shape == (-(-shape[0] // step), -(-shape[1] // step))
    assert max(shown.shape) <= preview.PREVIEW_MAX
    np.testing.assert_array_equal(shown, preview.render_image(small))  # same pixels, same mask, same stretch
    assert shown.max() == 255 and (shown == 0).any()


def test_image_within_the_limit_keeps_every_pixel(tmp_path):
    sci, dq = _image((preview.PREVIEW_MAX, 300))
    path = tmp_path / "idn101a1q_flt.fits"
    _write(path, sci, dq, np.float32)
    assert preview.render_image(path).shape == (preview.PREVIEW_MAX, 300)
