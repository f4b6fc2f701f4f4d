"""Early writeback (pipeline.core.writeback): the ranges handed to the kernel follow the file, in
order and without gaps, the bytes are unchanged, and a file object without a descriptor is fine."""

from __future__ import annotations

import io
import itertools
import os
import sys
from pathlib import Path

import pytest

from pipeline.core import writeback


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_the_kernel_is_asked_on_linux(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 100_000)
    fd = os.open(path, os.O_RDWR)
    try:
        assert writeback.start_writeback(fd, 0, 100_000)
    finally:
        os.close(fd)


def test_ranges_cover_what_was_written_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(writeback, "start_writeback", lambda fd, off, n: calls.append((off, n)) or True)
    path = tmp_path / "f.bin"
    chunks = [bytes([i]) * (700 + 37 * i) for i in range(40)]
    with open(path, "wb") as fh:
        fh.write(b"header")
        follow = writeback.EarlyWriteback(fh, step=4096)
        for c in chunks:
            fh.write(c)
            follow.wrote(len(c))
    assert path.read_bytes() == b"header" + b"".join(chunks)
    assert calls and calls[0][0] == len(b"header")
    for (off, n), (next_off, _) in itertools.pairwise(calls):
        assert n >= 4096 and next_off == off + n
    assert calls[-1][0] + calls[-1][1] <= path.stat().st_size


def test_a_file_object_without_a_descriptor_is_left_alone() -> None:
    buf = io.BytesIO()
    follow = writeback.EarlyWriteback(buf, step=1)
    buf.write(b"abc")
    follow.wrote(3)
    assert buf.getvalue() == b"abc"
