"""The product writer (:mod:`pipeline.science.calib.fitswrite`) gives astropy's ``writeto`` bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.science.calib import fitswrite
from pipeline.science.calib.fitswrite import BLOCK_BYTES, write_images
from pipeline.science.calib.imageio import Exposure, Imset
from pipeline.science.calib.products import build_hdulist, write_product


def _exposure(tmp_path: Path) -> Exposure:
    """Two imsets whose arrays are what the engine hands over: float32 SCI/ERR, uint16 DQ, one set
    of them views of larger arrays (the trimmed parts of raw-format images), one set big-endian."""
    rng = np.random.default_rng(7)
    rows = BLOCK_BYTES // (4 * 301) * 2 + 37          # several blocks and a partial one
    big = rng.normal(1000.0, 30.0, (rows + 9, 330)).astype(np.float32)
    primary = fits.Header([("ROOTNAME", "ab1234xyq"), ("INSTRUME", "WFC3"), ("NEXTEND", 6), ("BZERO", 32768)])
    imsets = []
    for extver in (1, 2):
        sci = big[5:5 + rows, 13:314] if extver == 1 else big[:rows, :301].astype(">f4")
        err = np.sqrt(np.abs(sci)).astype(np.float32)
        dq = rng.integers(0, 65535, sci.shape, dtype=np.uint16)
        dq[0, :3] = (0, 32768, 65535)
        hdr = fits.Header([("EXTNAME", "SCI"), ("EXTVER", extver), ("CCDCHIP", 3 - extver), ("BUNIT", "ELECTRONS")])
        imsets.append(Imset(extver, sci, err, dq, hdr, fits.Header([("EXTNAME", "ERR")]),
                            fits.Header([("EXTNAME", "DQ")])))
    return Exposure(path=tmp_path / "ab1234xyq_raw.fits", primary=primary, imsets=imsets)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_written_bytes_are_astropys_and_the_arrays_are_untouched(tmp_path: Path, monkeypatch, workers: int) -> None:
    """One thread, or several writing bands of rows (many, and a partial one: BAND_BYTES made small)
    at their own offsets: the same bytes as astropy's writeto."""
    monkeypatch.setattr(fitswrite, "BAND_BYTES", 3 * BLOCK_BYTES // 8)   # SCI/ERR: 6 bands, DQ: 3, each with a partial
    exposure = _exposure(tmp_path)
    before = [(im.sci.copy(), im.err.copy(), im.dq.copy()) for im in exposure.imsets]
    hdul = build_hdulist(exposure, switches={"FLATCORR": "COMPLETE"}, primary_updates={"MEANBLEV": 1.5},
                         engine="builtin", filename="ab1234xyq_flt.fits")
    ours, theirs = tmp_path / "ours.fits", tmp_path / "theirs.fits"
    with open(ours, "wb") as fh:
        write_images(hdul, fh, workers)
        fh.flush()
        assert fh.tell() == ours.stat().st_size   # the file object is left at the end of what was written
    for im, (sci, err, dq) in zip(exposure.imsets, before, strict=True):
        assert im.sci.tobytes() == sci.tobytes() and im.err.tobytes() == err.tobytes()
        assert im.dq.tobytes() == dq.tobytes()
        assert im.sci.dtype == sci.dtype
    hdul.writeto(theirs)
    assert ours.read_bytes() == theirs.read_bytes()
    with fits.open(ours) as back:
        assert np.array_equal(back["SCI", 1].data, exposure.imsets[0].sci)
        assert np.array_equal(back["DQ", 2].data.astype(np.int16).view(np.uint16), exposure.imsets[1].dq)
        assert back[0].header["EXTEND"] is True and "BZERO" not in back[0].header


def test_write_product_is_atomic_and_readable(tmp_path: Path) -> None:
    exposure = _exposure(tmp_path)
    out = write_product(exposure, tmp_path / "out" / "ab1234xyq_flt.fits", switches={}, primary_updates={})
    assert [p.name for p in out.parent.iterdir()] == [out.name]   # no temporary left behind
    with fits.open(out) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "SCI", "ERR", "DQ", "SCI", "ERR", "DQ"]
        assert hdul[0].header["FILENAME"] == out.name and hdul[0].header["NEXTEND"] == 6
        assert np.array_equal(hdul["ERR", 2].data, exposure.imsets[1].err)


@pytest.mark.parametrize("dtype", [np.uint32, np.int8])
def test_pixels_needing_bzero_are_refused_not_written_wrong(tmp_path: Path, dtype: type) -> None:
    hdul = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((3, 4), np.float32))])
    hdul[1].data = np.zeros((3, 4), dtype)
    for workers in (1, 2):
        with open(tmp_path / "x.fits", "wb") as fh, pytest.raises(ValueError, match=np.dtype(dtype).name):
            write_images(hdul, fh, workers)


def test_a_failing_writer_thread_leaves_no_file(tmp_path: Path, monkeypatch) -> None:
    """A band that cannot be written fails the whole write: the error is raised and neither the
    product nor its temporary file is left behind."""
    monkeypatch.setattr(fitswrite, "BAND_BYTES", BLOCK_BYTES // 4)
    calls = []

    def failing(fd: int, rows: np.ndarray, offset: int) -> None:
        calls.append(offset)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(fitswrite, "_write_band", failing)
    exposure = _exposure(tmp_path)
    out = tmp_path / "out" / "ab1234xyq_flt.fits"
    with pytest.raises(OSError, match="No space left"):
        write_product(exposure, out, switches={}, primary_updates={}, workers=2)
    assert len(calls) >= 3 and list(out.parent.iterdir()) == []   # the bands not started are cancelled
