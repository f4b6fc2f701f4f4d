"""Which files in a dataset's work area are products, previews or trailers, grouped by dataset.

INGEST_SCI, PVW, INGEST_PVW and CL all ask the same question of a work area ("what is there of
this association?"); the answer lives here once. Only files named ``<ipppssoot>_<suffix>.<ext>``
whose rootname belongs to the association (itself, its members, its numbered products) count;
scratch files (drizzle intermediates, ``*_tmp`` files, hidden names) never do.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from pipeline.core.names import SUFFIXES, BadName, DatasetName, split_file_name

#: Suffixes that are working files, never archived.
SCRATCH_SUFFIXES = {"blv_tmp", "blc_tmp", "trl"}
SCIENCE_EXTENSIONS = {"fits", "fits.gz"}
PREVIEW_EXTENSIONS = {"jpg", "png"}
#: (path, archive kind) per dataset.
Grouped = dict[DatasetName, list[tuple[Path, str]]]


def family(dataset: DatasetName, members: list[DatasetName]) -> set[str]:
    """Rootnames that belong to ``dataset``: itself, its members and (associations) products 1-9."""
    names = {dataset.name, *(m.name for m in members)}
    if dataset.is_association:
        names |= {dataset.product(i).name for i in range(1, 10)}
    return names


def _files(work: Path, dataset: DatasetName, members: list[DatasetName]) -> list[tuple[DatasetName, str, str, Path]]:
    if not work.is_dir():
        return []
    allowed = family(dataset, members)
    out = []
    for path in sorted(work.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        try:
            root, suffix, ext = split_file_name(path)
        except BadName:
            continue
        if root.name in allowed:
            out.append((root, suffix, ext, path))
    return out


def science_files(work: Path, dataset: DatasetName, members: list[DatasetName]) -> Grouped:
    """Archivable science files per dataset (in name order), as (path, kind) with the suffix as kind."""
    known = set(SUFFIXES.get(dataset.instrument, ())) - SCRATCH_SUFFIXES
    grouped: Grouped = defaultdict(list)
    for root, suffix, ext, path in _files(work, dataset, members):
        if ext in SCIENCE_EXTENSIONS and suffix in known:
            grouped[root].append((path, suffix))
    return dict(grouped)


def preview_files(work: Path, dataset: DatasetName, members: list[DatasetName]) -> Grouped:
    """Preview pictures per dataset, as (path, kind) with kind ``<suffix>_<ext>`` (``drz_jpg``,
    ``drz_thumb_jpg``, ``x1dsum_fuva_png``)."""
    grouped: Grouped = defaultdict(list)
    for root, suffix, ext, path in _files(work, dataset, members):
        if ext in PREVIEW_EXTENSIONS:
            grouped[root].append((path, f"{suffix}_{ext}"))
    return dict(grouped)


def previewable_files(work: Path, dataset: DatasetName, members: list[DatasetName]) -> list[Path]:
    """Science files that get previews (see :mod:`pipeline.science.preview`)."""
    from pipeline.science.preview import IMAGE_SUFFIXES, SPECTRUM_SUFFIXES

    wanted = set(IMAGE_SUFFIXES) | set(SPECTRUM_SUFFIXES)
    return [path for _root, suffix, ext, path in _files(work, dataset, members)
            if ext in SCIENCE_EXTENSIONS and suffix in wanted]
