"""Starting the disk writes of a big file while it is still being written.

An atomic write ends with ``fsync``, which waits until every dirty page of the file is on disk: for
a 168 MB ``_flt`` that is ~0.13 s of wall time after the last byte was handed to the kernel (measured
on the development machine, ext4). Linux's ``sync_file_range(SYNC_FILE_RANGE_WRITE)`` starts the
writeback of a range without waiting for it, so a writer that calls it every few megabytes keeps the
disk busy while it converts the next rows, and the final ``fsync`` waits for the tail only. The
``fsync`` stays: this changes when the bytes go to disk, not what is durable when the write returns.
Where the call does not exist (not Linux, not glibc/musl) nothing is done.
"""

from __future__ import annotations

import ctypes
import io
from collections.abc import Callable
from functools import cache
from typing import IO

#: ``SYNC_FILE_RANGE_WRITE``: start writeback of the range's dirty pages, do not wait.
_SYNC_FILE_RANGE_WRITE = 2
#: Bytes between two calls: large enough that the calls cost nothing, small enough to overlap.
STEP_BYTES = 8 << 20


@cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def start_writeback(fd: int, offset: int, length: int) -> bool:
    """Ask the kernel to start writing ``length`` bytes of ``fd`` from ``offset``; True if it was asked."""
    fn = _sync_file_range()
    return fn is not None and fn(fd, offset, length, _SYNC_FILE_RANGE_WRITE) == 0


class EarlyWriteback:
    """Follows a binary file being written sequentially; every :data:`STEP_BYTES` the part written
    since the last call goes to :func:`start_writeback` (the file object is flushed first). A file
    object without a descriptor (``BytesIO``) or a position (a pipe) is followed by doing nothing."""

    def __init__(self, fh: IO[bytes], step: int = STEP_BYTES) -> None:
        self.fh = fh
        self.step = step
        self.pending = 0
        try:
            self.fd: int | None = fh.fileno()
            self.started = fh.tell()   # everything before this offset has been handed over
        except (OSError, io.UnsupportedOperation, AttributeError):
            self.fd, self.started = None, 0

    def wrote(self, nbytes: int) -> None:
        self.pending += nbytes
        if self.fd is None or self.pending < self.step:
            return
        self.fh.flush()
        end = self.fh.tell()
        start_writeback(self.fd, self.started, end - self.started)
        self.started, self.pending = end, 0
