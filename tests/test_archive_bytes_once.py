"""The archive reads each file's bytes once: hard link within the site's file system, else hash while copying.

Reads are counted per inode through a wrapper around the builtin ``open`` (what the archive and
fsutil read with) and ``io.open`` (what pathlib's ``read_bytes`` reads with: the telemetry decoder's
own read), so a re-read of the source, of its staged copy or of the hard link would show as extra
bytes. The checks here read with ``os.open`` file descriptors, which are not counted.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from pipeline.archive.ingest import read_once
from pipeline.archive.store import Archive
from pipeline.core.errors import BadInput
from pipeline.core.stage import run_stage
from stages.dan_receipt import run as receive
from stages.ingest import Ingest
from tests.front_data import write_test_downlink

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
    """Bytes read through ``open(..., 'rb')`` and ``io.open`` (pathlib) per inode while the test runs."""
    counts: Counter = Counter()
    real_open = io.open

    def counting_open(file, mode="r", *args, **kwargs):
        fh = real_open(file, mode, *args, **kwargs)
        return _CountingFile(fh, counts) if mode == "rb" else fh

    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr(io, "open", counting_open)
    return counts


def _read_uncounted(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, path.stat().st_size + 1)
    finally:
        os.close(fd)


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
    assert _read_uncounted(blob) == data and blob.name == hashlib.sha256(data).hexdigest()


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
        assert _read_uncounted(blob) == data and blob.name == hashlib.sha256(data).hexdigest()
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


def test_ingest_decodes_and_hashes_each_pod_from_one_read(site, reads):
    """owl-ingest decodes each pod (CRCs, pixels) and archives it: one read of the pod's bytes in all."""
    assert receive([str(write_test_downlink(site.areas.inbox))]) == 0
    pods = [site.areas.receipt / "pods" / f"{m}.pod" for m in ("ib1f01a1q", "ib1f01a2q")]
    reads.clear()  # the DAN receipt's own validation read is another stage's
    assert run_stage(Ingest, ["ib1f01010"]) == 0
    arch = Archive(site)
    for pod in pods:
        (stored,) = arch.files(pod.stem, kind="pod")
        data = _read_uncounted(pod)
        assert stored.sha256 == hashlib.sha256(data).hexdigest() and os.path.samefile(stored.path, pod)
        assert reads[pod.stat().st_ino] == len(data) > 0


def test_read_once_outside_the_site_is_written_from_its_buffer(site, tmp_path, reads):
    source = tmp_path / "user" / f"{DATASET}.pod"
    data = _payload(source)
    read = read_once(source)
    arch = Archive(site)
    arch.ingest(DATASET, [(read, "pod")])
    blob = _blob(arch)
    assert not os.path.samefile(blob, source) and source.stat().st_mode & 0o222  # copied, the user's file untouched
    assert reads[source.stat().st_ino] == len(data) and reads[blob.stat().st_ino] == 0
    assert _read_uncounted(blob) == data and blob.name == hashlib.sha256(data).hexdigest()


def test_file_changed_after_its_read_is_refused(site):
    source = site.areas.work / DATASET / f"{DATASET}.pod"
    _payload(source)
    read = read_once(source)
    source.write_bytes(b"edited after the read")
    arch = Archive(site)
    with pytest.raises(BadInput, match="changed after it was read"):
        arch.ingest(DATASET, [(read, "pod")])
    assert arch.versions(DATASET) == [] and list(arch.tmp.iterdir()) == []


def _several(site, tmp_path) -> list[tuple[Path, str, bytes]]:
    """Files of one ingest: three in the work area (linked), two outside the site (copied)."""
    work = site.areas.work / DATASET
    files = [(work / f"{DATASET}_{k}.fits", k) for k in ("raw", "flt", "crj")]
    files += [(tmp_path / "user" / f"{DATASET}_{k}.jpg", k) for k in ("prev", "thumb")]
    return [(path, kind, _payload(path, (1 << 20) + 7 * i)) for i, (path, kind) in enumerate(files)]


@pytest.mark.parametrize("cpus", ["1", "2"])
def test_files_of_one_ingest_staged_side_by_side_are_each_read_once(site, tmp_path, reads, monkeypatch, cpus):
    """Staging runs in threads when the node has CPUs for them (OMP_NUM_THREADS: HTCondor's request_cpus);
    either way each file is read once and catalogued with its own kind and hash."""
    monkeypatch.setenv("OMP_NUM_THREADS", cpus)
    monkeypatch.setattr("pipeline.archive.ingest.read_fits_headers", lambda path: ({}, None))  # payloads, not FITS
    files = _several(site, tmp_path)
    arch = Archive(site)
    assert arch.ingest(DATASET, [(path, kind) for path, kind, _data in files]) == 1
    stored = {f.name: f for f in arch.files(DATASET)}
    assert sorted(stored) == sorted(path.name for path, _kind, _data in files)
    for path, kind, data in files:
        assert stored[path.name].kind == kind and stored[path.name].sha256 == hashlib.sha256(data).hexdigest()
        assert reads[path.stat().st_ino] == len(data)
    assert list(arch.tmp.iterdir()) == []


def test_one_file_failing_to_stage_leaves_nothing_of_the_others(site, tmp_path, monkeypatch):
    """The others were staged beside it: their temporary links and copies go, no blob, no version."""
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setattr("pipeline.archive.ingest.read_fits_headers", lambda path: ({}, None))
    files = _several(site, tmp_path)
    arch = Archive(site)
    real = arch._stage_file

    def stage(path: Path, kind: str):
        if kind == "flt":
            raise OSError(f"{path.name}: input/output error")
        return real(path, kind)

    monkeypatch.setattr(arch, "_stage_file", stage)
    with pytest.raises(OSError, match=r"_flt\.fits: input/output error"):
        arch.ingest(DATASET, [(path, kind) for path, kind, _data in files])
    assert arch.versions(DATASET) == [] and list(arch.tmp.iterdir()) == []
    assert not any(p.is_file() for p in arch.blobs.rglob("*") if p.parent != arch.tmp)
    assert all(path.stat().st_nlink == 1 for path, _kind, _data in files)


@pytest.mark.parametrize("cpus", ["1", "2"])
def test_an_unreadable_header_stops_the_ingest_while_its_files_hash(site, tmp_path, monkeypatch, cpus):
    """Headers are read while the files are staged: a file that is not FITS is refused by name, and
    what was staged beside it is removed."""
    monkeypatch.setenv("OMP_NUM_THREADS", cpus)
    files = _several(site, tmp_path)   # random bytes named .fits: no FITS header
    arch = Archive(site)
    with pytest.raises(BadInput, match=rf"{DATASET}_raw\.fits: not a readable FITS file"):
        arch.ingest(DATASET, [(path, kind) for path, kind, _data in files])
    assert arch.versions(DATASET) == [] and list(arch.tmp.iterdir()) == []
    assert all(path.stat().st_nlink == 1 for path, _kind, _data in files)
