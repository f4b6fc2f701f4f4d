"""Where a dataset's telemetry is found: the receipt area while fresh, the archive afterwards.

INGEST archives pods as kind :data:`POD_KIND` and association records as :data:`ASN_RECORD_KIND`;
2FITS (and reprocessing, after receipt is cleaned) finds them again through these functions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.core.config import Site
from pipeline.core.errors import BadInput
from pipeline.core.names import DatasetName
from pipeline.science.telemetry.dan import AssociationEntry
from pipeline.science.telemetry.receipt import association_record, checked_sha256, received_pod

if TYPE_CHECKING:
    from pipeline.archive.ingest import ArchiveIngest

POD_KIND = "pod"
ASN_RECORD_KIND = "dan_asn"


@dataclass(frozen=True)
class PodSource:
    path: Path
    #: True for an archive blob: read it, never move or quarantine it.
    archived: bool
    #: SHA-256 of bytes already checked whole (by receipt, or by INGEST for an archived pod), if known.
    sha256: str | None = None


def archive_opener(site: Site) -> Callable[[], ArchiveIngest]:
    """The site's archive, opened on first call only: while receipt holds the pods and the association
    record, 2FITS never needs it."""

    @functools.cache
    def opened() -> ArchiveIngest:
        from pipeline.archive.ingest import ArchiveIngest

        return ArchiveIngest(site)

    return opened


def newest_archived(archive: ArchiveIngest, dataset: DatasetName, kind: str) -> tuple[str, int] | None:
    """(sha256, version) of the newest archived file of a kind, or None."""
    from pipeline.archive.ingest import NotArchived

    try:
        newest = archive.files(dataset, kind=kind)
    except NotArchived:
        return None
    return (newest[0].sha256, newest[0].version) if newest else None


def find_pod(site: Site, archive: Callable[[], ArchiveIngest], member: DatasetName) -> PodSource:
    """The received pod if receipt still has it, else the newest archived one (``archive``: see
    :func:`archive_opener`)."""
    pod = received_pod(site, member.name)
    if pod.exists():
        return PodSource(pod, False, checked_sha256(site, member.name))
    newest = newest_archived(archive(), member, POD_KIND)
    if newest is None:
        raise BadInput(f"{member}: no pod in receipt ({pod}) or in the archive")
    return PodSource(archive().blob_path(newest[0]), True, newest[0])


def find_association(site: Site, archive: Callable[[], ArchiveIngest], association: DatasetName) -> AssociationEntry:
    record = association_record(site, association.name)
    if record is not None:
        return record
    newest = newest_archived(archive(), association, ASN_RECORD_KIND)
    if newest is None:
        raise BadInput(f"{association}: no association record in receipt or archive (was its DAN received?)")
    return AssociationEntry.from_json(archive().blob_path(newest[0]).read_text())
