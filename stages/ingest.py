"""owl-ingest: archive the received raw pods of an association or singleton (OSF column IN).

Each pod is read once and fully decoded from that buffer (sequence counts, the on-board pixel CRC;
the packet CRCs too unless the buffer hashes to what receipt checked: the receipt copy may have rotted
since), which is also what is hashed; it is then stored (hard-linked, not re-read) in the
content-addressed archive as kind
``pod`` under its exposure, with catalogue fields read from the pod's own header cards so that
reprocessing can select archived pods by instrument, detector, filter or date. The association's
record from its DAN is archived too (kind ``dan_asn``), so reprocessing from the archive alone knows
the association type. A rerun finds the identical newest file and adds no version.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.core.errors import BadInput
from pipeline.core.names import DatasetName
from pipeline.core.stage import Stage, StageContext, stage_main

if TYPE_CHECKING:
    from pipeline.archive.ingest import ArchiveIngest, ReadOnce


class Ingest(Stage):
    name = "ingest"
    column = "IN"
    scope = "association"
    summary = "Archive the raw pod files (content-addressed, checksummed, catalogued)"
    modules = ("pipeline.archive.ingest", "pipeline.science.telemetry.decode")

    def run(self, ctx: StageContext) -> None:
        from pipeline.archive.ingest import (  # after the claim
            ArchiveIngest,
            catalogue_fields,
            header_dict,
            read_once,
        )
        from pipeline.science.telemetry.decode import decode_pod  # numpy: after the OSF claim (fast start-up)
        from pipeline.science.telemetry.receipt import associations_dir, checked_sha256, received_pod
        from pipeline.science.telemetry.sources import ASN_RECORD_KIND, POD_KIND, newest_archived

        archive = ArchiveIngest(ctx.site)
        association = ctx.dataset.name if ctx.dataset.is_association else None
        for member in ctx.member_names():
            pod = received_pod(ctx.site, member.name)
            if not pod.exists():
                if newest_archived(archive, member, POD_KIND) is None:
                    raise BadInput(f"{member}: no received pod at {pod} and none in the archive")
                ctx.log(f"{member}: pod no longer in receipt and already archived; nothing to do")
                continue
            read = read_once(pod)  # decoded and hashed from this one buffer
            # bytes receipt checked whole (same hash) skip the packet CRCs; BadInput names the pod (quarantined)
            decoded = decode_pod(pod, data=read.data, data_sha256=read.sha256,
                                 trusted_sha256=checked_sha256(ctx.site, member.name))
            fields = {**catalogue_fields(header_dict(decoded.primary)), "association": association,
                      "pod_packets": decoded.pod.n_packets}
            self._archive(ctx, archive, member, read, POD_KIND, fields)
        if association is not None:
            record = associations_dir(ctx.site) / f"{association}.json"
            if record.exists():
                self._archive(ctx, archive, ctx.dataset, record, ASN_RECORD_KIND, {"association": association})
            elif newest_archived(archive, ctx.dataset, ASN_RECORD_KIND) is None:
                raise BadInput(f"{ctx.dataset}: association record {record} missing (was the DAN received?)")

    @staticmethod
    def _archive(ctx: StageContext, archive: ArchiveIngest, dataset: DatasetName, source: Path | ReadOnce, kind: str,
                 metadata: dict) -> None:
        """Archive one file (read once: by the archive, or already by the caller); a rerun gets the served version."""
        path = source if isinstance(source, Path) else source.path
        known = set(archive.versions(dataset))
        version = archive.ingest(dataset, [(source, kind)], metadata)
        if version in known:
            ctx.log(f"{path.name} already archived as {dataset} version {version}")
            return
        (stored,) = archive.files(dataset, version, kind)
        ctx.log(f"archived {path.name} ({stored.size} bytes, sha256 {stored.sha256[:16]}...) "
                f"as {dataset} version {version}")


main = stage_main(Ingest)

if __name__ == "__main__":
    main()
