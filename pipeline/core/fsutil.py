"""File-system primitives that keep the promise "nothing is ever lost or half-written"."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from astropy.io.fits import HDUList

_CHUNK = 1 << 20


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Mode for files we create: what open() would give (mkstemp's 0600 would hide products from the
#: pool's job owner, who may be another Unix user than the site's owner).
FILE_MODE = 0o666 & ~_umask()


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: Path | str, mode: str = "wb") -> Iterator[IO]:
    """Write to a temporary file beside ``path``, fsync it, then rename it into place.

    Readers see either the old file or the complete new one; a crash leaves only a ``.tmp``
    file that no one mistakes for a product.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for tools that insist on writing by name.

    On success the temporary file is fsynced and renamed onto ``path``.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f"{target.suffix}.tmp", dir=target.parent)
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
        fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_write_fits(hdul: HDUList, path: Path | str, *, checksum: bool = False) -> Path:
    """Write an HDUList atomically (astropy writes by name, so go through :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        hdul.writeto(tmp, overwrite=True, checksum=checksum)
    return Path(path)


def sha256_file(path: Path | str) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def copy_atomic(src: Path | str, dest: Path | str) -> Path:
    """Copy a file so that ``dest`` appears complete or not at all."""
    with atomic_write(dest) as out, open(src, "rb") as inp:
        shutil.copyfileobj(inp, out, _CHUNK)
    return Path(dest)


def append_tail(out: IO[bytes], src: IO[bytes], offset: int) -> None:
    """Append ``src``'s bytes from ``offset`` to its end to ``out``: copied by the kernel on Linux
    (``sendfile``; macOS's sends only to sockets), through a buffer elsewhere."""
    if not sys.platform.startswith("linux"):
        src.seek(offset)
        shutil.copyfileobj(src, out, _CHUNK)
        return
    out.flush()  # what ``out`` holds goes first
    end = os.fstat(src.fileno()).st_size
    while offset < end:
        sent = os.sendfile(out.fileno(), src.fileno(), offset, end - offset)
        if sent == 0:  # the source shrank under us
            raise OSError(f"{getattr(src, 'name', src)}: ended at byte {offset} of {end} while being copied")
        offset += sent


def move_file(src: Path | str, dest_dir: Path | str) -> Path:
    """Move ``src`` into ``dest_dir`` without ever losing it.

    A rename when both live on one file system; otherwise copy atomically, then unlink the source.
    An existing file of the same name gets a numbered suffix instead of being overwritten.
    """
    src_path = Path(src)
    dest_root = Path(dest_dir)
    dest_root.mkdir(parents=True, exist_ok=True)
    dest = dest_root / src_path.name
    n = 1
    while dest.exists():
        dest = dest_root / f"{src_path.name}.{n}"
        n += 1
    try:
        os.rename(src_path, dest)
    except OSError:
        copy_atomic(src_path, dest)
        src_path.unlink()
    fsync_dir(dest_root)
    return dest


def quarantine(path: Path | str, quarantine_dir: Path | str, reason: str) -> Path:
    """Move a bad input into quarantine with a ``.reason`` file beside it; never delete it."""
    moved = move_file(path, quarantine_dir)
    with atomic_write(moved.with_name(moved.name + ".reason"), "w") as fh:
        fh.write(reason.rstrip("\n") + "\n")
    return moved


@contextlib.contextmanager
def file_lock(path: Path | str, timeout: float, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed) for the ``with`` block.

    Waits up to ``timeout`` seconds, then raises a retryable :class:`~pipeline.core.errors.LockTimeout`
    naming ``what`` and the lock file, so a stuck holder never hangs a pipeline node for ever.
    """
    from pipeline.core.errors import LockTimeout

    lock = Path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockTimeout(f"{what}: lock {lock} still held after {timeout:g} s") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing releases the lock
