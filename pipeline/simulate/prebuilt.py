"""Prebuilt simulated reference caches, linked into new sites instead of rebuilt.

The simulator's reference files are deterministic for a given (instruments, size, detector seed,
simulator source), and whole-chip darks and flats make even a subarray cache about 1 GB and half a
minute of writing. With ``OWL_SIM_REFCACHE=DIR`` the first build for a key is kept under DIR and every
later site gets hard links to its reference files (copies across file systems) and its own copies of
the small mappings and configuration, which deliveries (``--bump``) rewrite. Without the variable
each site builds its own cache, as before.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from pipeline.core.fsutil import file_lock
from pipeline.simulate import crdscache
from pipeline.simulate.detector import DETECTOR_SEED

ENV = "OWL_SIM_REFCACHE"
LOCK_TIMEOUT_S = 900.0  # another process may be building the same key: a full-frame build takes minutes


def build_or_link(crds_root: Path | str, instruments: Sequence[str], *, size: str,
                  seed: int = DETECTOR_SEED) -> str:
    """Give ``crds_root`` the simulated cache for this key; return its context name."""
    store = os.environ.get(ENV, "").strip()
    if not store:
        return crdscache.build_reference_cache(crds_root, instruments, seed=seed, size=size)
    root = Path(crds_root).expanduser().resolve()
    crdscache.refuse_built(root)
    template = _template(Path(store).expanduser().resolve(), instruments, size, seed)
    _link_tree(template, root)
    return crdscache.latest_context(root)


def _key(instruments: Sequence[str], size: str, seed: int) -> str:
    """Names what the cache holds and which simulator wrote it (any source change makes a new key)."""
    digest = hashlib.sha256()
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    insts = "-".join(sorted({i.lower() for i in instruments}))
    return f"{insts}_{size}_{seed}_{digest.hexdigest()[:16]}"


def _template(store: Path, instruments: Sequence[str], size: str, seed: int) -> Path:
    """The finished template for this key, built once under a lock and published by rename."""
    key = _key(instruments, size, seed)
    template = store / key
    store.mkdir(parents=True, exist_ok=True)
    with file_lock(store / f"{key}.lock", LOCK_TIMEOUT_S, f"simulated reference cache {key}"):
        if not (crdscache.config_dir(template) / crdscache.MARKER).is_file():
            scratch = store / f"{key}.building-{os.getpid()}"
            shutil.rmtree(scratch, ignore_errors=True)
            crdscache.build_reference_cache(scratch, instruments, seed=seed, size=size)
            os.replace(scratch, template)
    return template


def _link_tree(template: Path, root: Path) -> None:
    """Reference files by hard link (read-only once delivered); mappings and configuration copied."""
    references = crdscache.references_dir(template)
    for src in sorted(template.rglob("*")):
        if src.is_dir():
            continue
        dst = root / src.relative_to(template)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.parent == references:
            try:
                os.link(src, dst)
                continue
            except OSError:  # another file system, or links not allowed: a copy is as good
                pass
        shutil.copy2(src, dst)
