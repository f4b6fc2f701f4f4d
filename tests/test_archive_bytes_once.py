"""The archive reads each file's bytes once: hard link within the site's file system, else hash while copying.

Reads are counted per inode through a wrapper around the builtin ``open`` (what the archive and
fsutil read with; pathlib's own reads, used by the checks here, bypass it), so a re-read of the source,
of its staged copy or of the hard link would show as extra bytes.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from pipeline.archive.store import Archive

DATASET = "idn101a1q"
SHM = Path("/dev/shm")


class _CountingFile:
    """A binary file opened for reading whose bytes are added to ``counts[inode]``."""

    def __init__(self, fh, counts: Counter) -> None:
        self._fh, self._counts, self._inode = fh, counts, os.fstat(fh.fileno()).st_ino

    def read(self, *args):
        data = self._fh.read(*args)
        self._counts[self._inode] += len(data)
        return data

    def readinto(self, buffer):
        n = self._fh.readinto(buffer)
        self._counts[self._inode] += n or 0
        return n

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()

    def __getattr__(self, name):
        return getattr(self._fh, name)


@pytest.fixture
def reads(monkeypatch) -> Counter:
    """Bytes read through ``open(..., 'rb')`` per inode while the test runs."""
    counts: Counter = Counter()
    real_open = builtins.open

    def counting_open(file, mode="r", *args, **kwargs):
        fh = real_open(file, mode, *args, **kwargs)
        return _CountingFile(fh, counts) if mode == "rb" else fh

    monkeypatch.setattr(builtins, "open", counting_open)
    return counts


def _payload(path: Path, size: int = 3 * (1 << 20) + 12345) -> bytes:
    data = os.urandom(size)  # more than one copy chunk
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def _blob(arch: Archive) -> Path:
    (stored,) = arch.files(DATASET)
    return stored.path


def test_work_area_file_is_hard_linked_and_read_once(site, reads):
    source = site.areas.work / DATASET / f"{DATASET}.pod"
    data = _payload(source)
    arch = Archive(site)
    assert arch.ingest(DATASET, [(source, "pod")]) == 1
    blob = _blob(arch)
    assert blob.name == hashlib.sha256(data).hexdigest()
    assert os.path.samefile(blob, source) and source.stat().st_nlink == 2  # no copy, no leftover temp link
    assert source.stat().st_mode & 0o222 == 0  # the shared inode is read-only
    assert reads[source.stat().st_ino] == len(data)  # hashed by exactly one read
    assert list(arch.tmp.iterdir()) == []


def test_file_outside_the_site_is_copied_hashing_while_copying(site, tmp_path, reads):
    source = tmp_path / "user" / f"{DATASET}.pod"  # a user's file may be edited in place later: never linked
    data = _payload(source)
    arch = Archive(site)
    arch.ingest(DATASET, [(source, "pod")])
    blob = _blob(arch)
    assert not os.path.samefile(blob, source) and source.stat().st_nlink == 1
    assert source.stat().st_mode & 0o222  # the user's file keeps its mode
    assert reads[source.stat().st_ino] == len(data)  # one read of the source ...
    assert reads[blob.stat().st_ino] == 0  # ... and no re-read of the copy it was hashed from
    assert blob.read_bytes() == data and blob.name == hashlib.sha256(data).hexdigest()


def test_work_area_on_another_file_system_falls_back_to_a_copy(site, reads):
    """A real cross-device link (EXDEV): the work area is moved to /dev/shm (tmpfs), the archive stays put."""
    if not SHM.is_dir() or os.stat(SHM).st_dev == os.stat(site.areas.archive).st_dev:
        pytest.skip("no tmpfs at /dev/shm on another file system than the site")
    elsewhere = Path(tempfile.mkdtemp(dir=SHM, prefix="owl-work-"))
    try:
        shutil.rmtree(site.areas.work)
        site.areas.work.symlink_to(elsewhere)
        source = site.areas.work / DATASET / f"{DATASET}.pod"
        data = _payload(source)
        arch = Archive(site)
        arch.ingest(DATASET, [(source, "pod")])
        blob = _blob(arch)
        assert not os.path.samefile(blob, source)
        assert blob.read_bytes() == data and blob.name == hashlib.sha256(data).hexdigest()
        assert reads[source.stat().st_ino] == len(data)
        assert list(arch.tmp.iterdir()) == []
    finally:
        shutil.rmtree(elsewhere)


def test_rerun_of_a_linked_file_converges_without_a_copy(site):
    source = site.areas.work / DATASET / f"{DATASET}.pod"
    _payload(source)
    arch = Archive(site)
    assert arch.ingest(DATASET, [(source, "pod")]) == 1
    assert arch.ingest(DATASET, [(source, "pod")]) == 1  # the served version is returned
    assert source.stat().st_nlink == 2
    assert arch.verify().ok
