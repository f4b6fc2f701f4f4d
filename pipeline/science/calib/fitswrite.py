"""Writing calibrated images to FITS: astropy's bytes, without astropy's round trip through byte swaps.

``HDUList.writeto`` turns each little-endian array big-endian *in place*, writes it and swaps it
back: two passes over every pixel of a 168 MB product and the whole array dirtied twice. Here the
headers are astropy's own (verified, EXTEND updated and each image header brought up to date as
``writeto`` does, then ``Header.tostring``), and each array goes to the file through a small
big-endian buffer, a block of rows at a time: one read of the pixels, no change to them, and any
array layout (a view of a larger array is written as it is). ``tests/test_calib_fitswrite.py``
holds the file to ``writeto``'s byte for byte. The disk writes start every few MB
(:mod:`pipeline.core.writeback`), so the atomic write's closing ``fsync`` waits for the tail only.
With the calibration's threads, bands of rows are converted and written side by side.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import numpy as np
from astropy.io import fits

from pipeline.core.fsutil import atomic_write
from pipeline.core.writeback import EarlyWriteback, start_writeback
from pipeline.science.calib import perchip

#: FITS logical record: headers and data are padded to a multiple of it.
RECORD = 2880
#: Bytes of pixels converted and written at a time (stays in cache).
BLOCK_BYTES = 1 << 21
#: Bytes of one thread's band of rows when several threads write (a few bands per image balance them).
BAND_BYTES = 8 << 20


def _rows(data: np.ndarray) -> np.ndarray:
    """``data`` as a 2-D array of rows (a view where it can be); only types FITS stores as they are."""
    if (data.dtype.kind not in "fi" and data.dtype != np.uint8) or data.dtype == np.int8:
        raise ValueError(f"cannot write {data.dtype} pixels (unsigned, signed-byte and boolean images need "
                         "BZERO scaling)")
    return data if data.ndim == 2 else np.ascontiguousarray(data).reshape(-1, data.shape[-1])


def _big_endian_blocks(rows: np.ndarray) -> Iterator[np.ndarray]:
    """``rows`` in big-endian, a block of rows at a time, in one small buffer reused (use each block
    before asking for the next)."""
    big = rows.dtype.newbyteorder(">")
    step = max(1, BLOCK_BYTES // max(1, rows.shape[1] * big.itemsize))
    buf = np.empty((min(step, rows.shape[0]), rows.shape[1]), dtype=big)
    for start in range(0, rows.shape[0], step):
        part = rows[start:start + step]
        out = buf[:part.shape[0]]
        out[...] = part
        yield out


def _images(hdul: fits.HDUList) -> list[tuple[bytes, np.ndarray | None]]:
    """Each HDU's header bytes (brought up to date as ``writeto`` does) and its pixels, if any."""
    hdul.verify(option="exception")
    hdul.update_extend()
    out: list[tuple[bytes, np.ndarray | None]] = []
    for hdu in hdul:
        if not isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU)):
            raise TypeError(f"{type(hdu).__name__}: only image HDUs are written here")
        hdu.update_header()
        data = hdu.data if hdu.data is not None and hdu.data.size else None
        out.append((hdu.header.tostring().encode("ascii"), data))
    return out


def write_images(hdul: fits.HDUList, fh: BinaryIO, workers: int = 1) -> None:
    """Write ``hdul`` (a primary HDU and image extensions) to the open binary file ``fh``.

    ``workers`` > 1 (and a real file): the pixels are converted and written by that many threads side
    by side, each a band of rows at its own offset (``pwrite``): numpy's conversion and the kernel's
    copy into the page cache both run without the GIL, and the write is the one step of a calibration
    that was left to one core. The bytes are the same either way."""
    images = _images(hdul)
    try:
        fd, start = fh.fileno(), fh.tell()
    except (OSError, AttributeError, ValueError):
        fd = None
    if workers < 2 or fd is None:
        writeback = EarlyWriteback(fh)   # the caller's fsync then waits for the last few MB only
        for header, data in images:
            fh.write(header)
            if data is not None:
                for block in _big_endian_blocks(_rows(data)):
                    fh.write(block.data)
                    writeback.wrote(block.nbytes)
                fh.write(b"\0" * (-data.nbytes % RECORD))
        return
    fh.flush()
    bands, offset = [], start
    for header, data in images:
        _pwrite_all(fd, header, offset)   # headers are a few kB: written here, in order
        offset += len(header)
        if data is None:
            continue
        rows = _rows(data)
        row_bytes = max(1, rows.shape[1] * rows.dtype.itemsize)
        step = max(1, BAND_BYTES // row_bytes)
        bands.extend((rows[r:r + step], offset + r * row_bytes) for r in range(0, rows.shape[0], step))
        offset += data.nbytes
        _pwrite_all(fd, b"\0" * (-data.nbytes % RECORD), offset)
        offset += -data.nbytes % RECORD
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="owl-write") as pool:
        list(pool.map(lambda band: _write_band(fd, *band), bands))
    fh.seek(offset)


def _write_band(fd: int, rows: np.ndarray, offset: int) -> None:
    """Rows of an image, big-endian, at ``offset`` of ``fd``; their disk writes started."""
    at = offset
    for block in _big_endian_blocks(rows):
        _pwrite_all(fd, block.data, at)
        at += block.nbytes
    start_writeback(fd, offset, at - offset)


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data).cast("B")
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def write_file(hdul: fits.HDUList, path: Path, workers: int | None = None) -> Path:
    """:func:`write_images` to ``path`` atomically (temporary name, fsync, rename); ``workers``: the
    calibration's threads (:func:`~pipeline.science.calib.perchip.threads` of its environment), else
    those of this process's environment."""
    with atomic_write(path) as fh:
        write_images(hdul, fh, perchip.threads() if workers is None else workers)
    return path
