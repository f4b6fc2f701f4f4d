"""The one overscan trim for both instruments (steps/trim.py), on hand-made raws with known columns."""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from pipeline.science.calib.chip import Chip
from pipeline.science.calib.geometry import Overscan
from pipeline.science.calib.imageio import Imset
from pipeline.science.calib.steps.trim import trim_overscan
from pipeline.science.calib.tables import CCDParams


def chip(nx: int, ny: int, trimx: list[int], trimy: list[int], ccdamp: str, header: dict) -> Chip:
    """A chip whose SCI pixel value is its raw column number (so the kept columns can be read back)."""
    sci = np.tile(np.arange(nx, dtype=np.float32), (ny, 1))
    sci_header = fits.Header(header)
    im = Imset(1, sci, sci.copy(), np.zeros((ny, nx), np.uint16), sci_header, sci_header.copy(), sci_header.copy())
    ccd = CCDParams(row=1, ccdamp=ccdamp, chip=1, atodgain=(1, 1, 1, 1), readnoise=(3, 3, 3, 3),
                    ccdbias=(0, 0, 0, 0), mean_gain=1.0, ampx=nx // 2, ampy=0, saturate=65535.0)
    oscn = Overscan(trimx, trimy, [0] * 4, [0] * 4, {}, True)
    return Chip(im, ccd, oscn, ampx=nx // 2, ampy=0, subarray=False)


def test_acs_raw_without_ltv_gets_minus_offset_like_uvis():
    c = chip(40, 10, [4, 4, 0, 0], [0, 2], "ABCD", {"CRPIX1": 20.0})
    out = trim_overscan(c, serial_virtual=False)
    assert out.sci.shape == (8, 32)
    assert out.sci[0, 0] == 4 and out.sci[0, -1] == 35  # kept raw columns 4..35, contiguous
    assert out.sci_header["LTV1"] == -4.0 and out.sci_header["LTV2"] == 0.0
    assert out.sci_header["CRPIX1"] == 16.0 and "CRPIX2" not in out.sci_header
    assert (out.sci_header["SIZAXIS1"], out.sci_header["SIZAXIS2"]) == (32, 8)


def test_acs_raw_with_ltv_shifts_it():
    c = chip(40, 10, [4, 4, 0, 0], [2, 0], "ABCD", {"LTV1": 0.0, "LTV2": -5.0})
    out = trim_overscan(c, serial_virtual=False)
    assert (out.sci_header["LTV1"], out.sci_header["LTV2"]) == (-4.0, -7.0)
    assert out.dq.dtype == np.uint16 and out.sci.flags.c_contiguous


def test_uvis_four_amp_readout_closes_the_virtual_gap():
    # 48 raw columns: prescan 0-3 | amp A 4-20 | serial virtual 21-26 (centred on nx/2) | amp B 27-43 | 44-47
    c = chip(48, 6, [4, 4, 3, 3], [0, 0], "ABCD", {"LTV1": 0.0, "LTV2": 0.0})
    out = trim_overscan(c, serial_virtual=True)
    assert out.sci[0].astype(int).tolist() == [*range(4, 21), *range(27, 44)]


def test_uvis_two_amp_readout_keeps_contiguous_columns():
    """Not 4-amp: the size still leaves TRIMX3+TRIMX4 out, but no columns move (calwf3's behaviour)."""
    c = chip(48, 6, [4, 2, 3, 3], [0, 0], "AC", {"LTV1": 0.0, "LTV2": 0.0})
    out = trim_overscan(c, serial_virtual=True)
    assert out.sci[0].astype(int).tolist() == list(range(4, 40))


def test_trim_reuses_the_raw_buffer_across_many_row_blocks():
    """The trimmed arrays are the raw arrays' own memory (no new full-size array); with several
    blocks of rows and a virtual gap to close, every kept pixel still lands where it belongs."""
    ny, nx = 300, 48
    c = chip(nx, ny, [4, 4, 3, 3], [7, 2], "ABCD", {"LTV1": 0.0, "LTV2": 0.0})
    rng = np.random.default_rng(4)
    c.imset.sci[...] = rng.normal(size=(ny, nx)).astype(np.float32)
    c.imset.dq[...] = rng.integers(0, 65535, (ny, nx), dtype=np.uint16)
    kept = [*range(4, 21), *range(27, 44)]
    expected_sci = c.imset.sci[7:ny - 2][:, kept].copy()
    expected_dq = c.imset.dq[7:ny - 2][:, kept].copy()
    raw_sci = c.imset.sci
    out = trim_overscan(c, serial_virtual=True)
    assert np.shares_memory(out.sci, raw_sci) and out.sci.flags.c_contiguous
    assert np.array_equal(out.sci, expected_sci) and np.array_equal(out.dq, expected_dq)
