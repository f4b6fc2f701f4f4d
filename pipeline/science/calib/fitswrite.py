"""Writing calibrated images to FITS: astropy's bytes, without astropy's round trip through byte swaps.

``HDUList.writeto`` turns each little-endian array big-endian *in place*, writes it and swaps it
back: two passes over every pixel of a 168 MB product and the whole array dirtied twice. Here the
headers are astropy's own (verified, EXTEND updated and each image header brought up to date as
``writeto`` does, then ``Header.tostring``), and each array goes to the file through a small
big-endian buffer, a block of rows at a time: one read of the pixels, no change to them, and any
array layout (a view of a larger array is written as it is). ``tests/test_calib_fitswrite.py``
holds the file to ``writeto``'s byte for byte. The disk writes start every few MB
(:mod:`pipeline.core.writeback`), so the atomic write's closing ``fsync`` waits for the tail only.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
from astropy.io import fits

from pipeline.core.fsutil import atomic_write
from pipeline.core.writeback import EarlyWriteback

#: FITS logical record: headers and data are padded to a multiple of it.
RECORD = 2880
#: Bytes of pixels converted and written at a time (stays in cache).
BLOCK_BYTES = 1 << 21


def _write_array(fh: BinaryIO, data: np.ndarray, writeback: EarlyWriteback) -> int:
    """``data`` in big-endian C order, a block of rows at a time, the disk writes started as it goes
    (``writeback``); returns the bytes written."""
    if data.dtype.kind not in "fi" and data.dtype != np.uint8:
        raise ValueError(f"cannot write {data.dtype} pixels (unsigned and boolean images need BZERO scaling)")
    big = data.dtype.newbyteorder(">")
    rows = data if data.ndim == 2 else np.ascontiguousarray(data).reshape(-1, data.shape[-1])
    step = max(1, BLOCK_BYTES // max(1, rows.shape[1] * big.itemsize))
    buf = np.empty((min(step, rows.shape[0]), rows.shape[1]), dtype=big)
    for start in range(0, rows.shape[0], step):
        part = rows[start:start + step]
        out = buf[:part.shape[0]]
        out[...] = part
        fh.write(out.data)
        writeback.wrote(out.nbytes)
    return data.nbytes


def write_images(hdul: fits.HDUList, fh: BinaryIO) -> None:
    """Write ``hdul`` (a primary HDU and image extensions) to the open binary file ``fh``."""
    hdul.verify(option="exception")
    hdul.update_extend()
    writeback = EarlyWriteback(fh)   # the caller's fsync then waits for the last few MB only
    for hdu in hdul:
        if not isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU)):
            raise TypeError(f"{type(hdu).__name__}: only image HDUs are written here")
        hdu.update_header()
        fh.write(hdu.header.tostring().encode("ascii"))
        if hdu.data is not None and hdu.data.size:
            size = _write_array(fh, hdu.data, writeback)
            fh.write(b"\0" * (-size % RECORD))


def write_file(hdul: fits.HDUList, path: Path) -> Path:
    """:func:`write_images` to ``path`` atomically (temporary name, fsync, rename)."""
    with atomic_write(path) as fh:
        write_images(hdul, fh)
    return path
