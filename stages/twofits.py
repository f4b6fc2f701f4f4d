"""owl-2fits: decode pods into ``_raw.fits``, ``_spt.fits`` and ``_asn.fits`` (OSF column 2F).

Pods are read from the receipt area, or from the archive once receipt has been cleaned (the
reprocessing path). The association's type comes from its DAN record; it decides the member types
in the association table and whether cosmic-ray rejection is switched on. All files are written
atomically into the association's (or singleton's) work directory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.core.errors import BadInput, ConfigError
from pipeline.core.fsutil import atomic_write_fits
from pipeline.core.names import DatasetName
from pipeline.core.stage import Stage, StageContext, stage_main

if TYPE_CHECKING:
    from collections.abc import Callable

    from astropy.io import fits

    from pipeline.archive.ingest import ArchiveIngest
    from pipeline.science.telemetry.dan import AssociationEntry


class TwoFits(Stage):
    name = "2fits"
    column = "2F"
    scope = "association"
    summary = "Decode pod packets into _raw.fits, _spt.fits and _asn.fits with full headers and switches"
    modules = ("pipeline.core.asntable", "pipeline.science.telemetry.decode", "pipeline.science.telemetry.rawfits")

    def run(self, ctx: StageContext) -> None:
        from pipeline.core.asntable import ASN_KINDS, build_asn_table  # numpy, astropy: after the OSF claim
        from pipeline.science.telemetry.sources import archive_opener, find_association

        archive = archive_opener(ctx.site)  # opened only if receipt lacks a pod or the association record
        asn = find_association(ctx.site, archive, ctx.dataset) if ctx.dataset.is_association else None
        if asn is not None:
            if asn.type not in ASN_KINDS:
                raise BadInput(f"{ctx.dataset}: association type {asn.type!r} from its DAN is not one of "
                               f"{', '.join(ASN_KINDS)}")
            if sorted(asn.members) != sorted(ctx.members):
                raise BadInput(f"{ctx.dataset}: OSF members {sorted(ctx.members)} differ from the DAN's "
                               f"{sorted(asn.members)}")
        primaries = [self._convert(ctx, archive, member, asn) for member in ctx.member_names()]
        if asn is not None:
            table = build_asn_table(asn.name, list(asn.members), asn.type, header=primaries[0])
            out = atomic_write_fits(table, ctx.work / ctx.dataset.file("asn"))
            ctx.log(f"wrote {out.name}: {asn.type} association of {len(asn.members)} members")

    @staticmethod
    def _convert(ctx: StageContext, archive: Callable[[], ArchiveIngest], member: DatasetName,
                 asn: AssociationEntry | None) -> fits.Header:
        """Write one member's _raw and _spt; return the raw primary header."""
        from pipeline.core.asntable import ASN_KINDS
        from pipeline.science.telemetry.decode import decode_pod
        from pipeline.science.telemetry.rawfits import calibration_switches, check_identity, raw_hdulist, spt_hdulist
        from pipeline.science.telemetry.sources import find_pod

        source = find_pod(ctx.site, archive, member)
        try:  # bytes receipt or INGEST checked whole (same SHA-256) skip a second pass over the packet CRCs
            decoded = decode_pod(source.path, f"{member}.pod", trusted_sha256=source.sha256)
        except BadInput as exc:
            if source.archived:  # report it, but never move an archive blob
                raise BadInput(f"archived {exc.message}") from None
            raise
        check_identity(decoded, member.name, member.instrument)
        defaults = ctx.site.instruments.get(member.instrument)
        if defaults is None:
            raise ConfigError(f"no config/instruments/{member.instrument}.toml for {member}")
        detector = str(decoded.primary.get("DETECTOR", "")).strip().upper()
        switches = calibration_switches(defaults, member.instrument, detector, asn.type if asn else None)
        asn_keys = ({"ASN_ID": asn.name.upper(), "ASN_TAB": ctx.dataset.file("asn"),
                     "ASN_MTYP": ASN_KINDS[asn.type][0]} if asn else {"ASN_ID": "NONE", "ASN_TAB": "NONE"})
        raw_name, spt_name = member.file("raw"), member.file("spt")
        raw = raw_hdulist(decoded, filename=raw_name, switches=switches,
                          header_defaults=defaults.get("header", {}), asn_keywords=asn_keys)
        atomic_write_fits(raw, ctx.work / raw_name)
        atomic_write_fits(spt_hdulist(decoded, filename=spt_name), ctx.work / spt_name)
        shapes = ", ".join(f"{d.pixels.shape[1]}x{d.pixels.shape[0]}" for d in decoded.chips.values())
        ctx.log(f"wrote {raw_name} ({detector}, {len(decoded.chips)} chip(s): {shapes}) and {spt_name} "
                f"from {'archived' if source.archived else 'received'} pod {source.path.name}")
        return raw[0].header


main = stage_main(TwoFits)

if __name__ == "__main__":
    main()
