"""Chip-sized temporaries handed from one step to the next instead of freed and allocated again.

On the VMs a CA node runs on, memory a process touches for the first time costs more than the
arithmetic done in it (the development machine: 136 MB of fresh pages took 0.3 s of system time,
the same pages freed and taken again within the process 0.02-0.03 s), and numpy gives every array
of more than a few MB back to the kernel when it is freed. A step whose temporary is as large as a
chip borrows it here (:func:`borrowed`) and gives it back when done; the next step that needs one
gets the same pages, already mapped. ACS/WFC: BLEVCORR's two double amp arrays (2 x 34 MB) become
ACS2D's scaled dark and masks.

At most :data:`KEEP` buffers are kept (two chips in flight, two temporaries each); a borrow larger
than every free buffer allocates a new one. :func:`release` gives them all back to the kernel (the
engine calls it once an exposure's arithmetic is done, before its product is written).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

#: Free buffers kept for the next borrower.
KEEP = 4

_lock = threading.Lock()
_free: list[np.ndarray] = []


@contextmanager
def borrowed(shape: tuple[int, ...], dtype: type | np.dtype) -> Iterator[np.ndarray]:
    """An uninitialised C-contiguous array of ``shape`` and ``dtype`` (its contents are whatever the
    last borrower left), given back to the pool when the ``with`` block ends."""
    want = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * want.itemsize
    with _lock:   # the smallest free buffer that is large enough (by position: arrays do not compare)
        fitting = [i for i, b in enumerate(_free) if b.nbytes >= nbytes]
        buf = _free.pop(min(fitting, key=lambda i: _free[i].nbytes)) if fitting else None
    if buf is None:
        buf = np.empty(max(nbytes, 1), np.uint8)
    try:
        yield buf[:nbytes].view(want).reshape(shape)
    finally:
        with _lock:
            _free.append(buf)
            _free.sort(key=lambda b: -b.nbytes)
            del _free[KEEP:]


def release() -> None:
    """Drop every free buffer (the memory goes back to the kernel once no array uses it)."""
    with _lock:
        _free.clear()
