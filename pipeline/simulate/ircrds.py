"""Deliver the simulated WFC3/IR references into a simulator CRDS cache, as a new context.

The IR files (CCDTAB/OSCNTAB/BPIXTAB/CRREJTAB/IMPHTTAB rows for DETECTOR=IR, an NLINFILE, a
DARKFILE per sample sequence and subarray type, a PFLTFILE per filter) get CDBS names and the
selection keywords of the real 2015 WFC3 IR rules (``hst_wfc3_darkfile``: DETECTOR, CCDAMP,
CCDGAIN, SAMP_SEQ, SUBTYPE; ``hst_wfc3_pfltfile``: DETECTOR, CCDAMP, FILTER; ``hst_wfc3_nlinfile``:
DETECTOR, relevant for IR only; ``hst_wfc3_idctab``: DETECTOR, always relevant, so an IDCTAB for UVIS
is delivered with the IR one), and crds inserts them into the WFC3 rmaps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path

from astropy.io import fits

from pipeline.science.refs import write_server_config
from pipeline.simulate import crdscache as cc
from pipeline.simulate import idctab, irrefs
from pipeline.simulate.irmodel import CCDGAIN, FULL_SUBTYPE, IR_FILTERS, SEQUENCES, SUBARRAYS, detector_maps
from pipeline.simulate.reffiles import INITIAL_USEAFTER, cdbs_name, useafter_text

SUFFIX = {"ccdtab": "ccd", "oscntab": "osc", "bpixtab": "bpx", "crrejtab": "crr", "imphttab": "imp",
          "nlinfile": "lin", "darkfile": "drk", "pfltfile": "pfl", "idctab": "idc"}


def _builds(modes: Iterable[tuple[str, str]], filters: Iterable[str],
            only: str | None = None) -> Iterator[tuple[str, fits.HDUList]]:
    """(reftype, HDUList) of the IR references, or of the ``only`` type: a redelivery of one table
    need not compute every dark."""
    maps = detector_maps()
    builders: list[tuple[str, Callable[[], fits.HDUList]]] = [
        ("ccdtab", irrefs.ccd_table), ("oscntab", irrefs.overscan_table),
        ("bpixtab", partial(irrefs.badpix_table, maps)), ("crrejtab", irrefs.crrej_table),
        ("imphttab", irrefs.photometry_table), ("nlinfile", partial(irrefs.nlin_file, maps))]
    builders += [("darkfile", partial(irrefs.dark_file, maps, seq, sub)) for seq, sub in modes]
    builders += [("pfltfile", partial(irrefs.flat_file, maps, f)) for f in filters]
    # the real rule (hst_wfc3_idctab_0252) is always relevant and matches DETECTOR: UVIS needs its row too
    builders += [("idctab", partial(idctab.idc_table, det)) for det in ("IR", "UVIS")]
    return ((kind, build()) for kind, build in builders if only in (None, kind))


def _label(hdul: fits.HDUList, name: str) -> None:
    h = hdul[0].header
    h["FILENAME"] = name
    h["TELESCOP"] = "HST"
    h["USEAFTER"] = useafter_text(INITIAL_USEAFTER)
    h["ORIGIN"] = "owlpipe simulate"
    h.setdefault("CCDAMP", "ABCD")
    h.setdefault("CCDGAIN", CCDGAIN)
    h.setdefault("SUBTYPE", FULL_SUBTYPE)
    h["NEXTEND"] = len(hdul) - 1


def all_modes() -> list[tuple[str, str]]:
    return [(seq, sub) for seq in SEQUENCES for sub in (FULL_SUBTYPE, *(s for s, _ in SUBARRAYS.values()))]


def deliver_ir_references(crds_root: Path | str, *, modes: Iterable[tuple[str, str]] | None = None,
                          filters: Iterable[str] = tuple(IR_FILTERS)) -> str:
    """Write the IR references and new WFC3 rmaps/imap/context; return the new context name."""
    root = Path(crds_root).expanduser().resolve()
    marker = cc.read_marker(root)
    if "wfc3" not in marker["instruments"]:
        raise cc.CacheError(f"{root} has no WFC3 rules to add IR references to")
    old_context = cc.latest_context(root)
    imaps = cc._selector(root, old_context)
    old_imap = imaps["WFC3"]
    rmaps = cc._selector(root, old_imap)
    by_type: dict[str, list[Path]] = {}
    with cc.crds_environment(root):
        for reftype, hdul in _builds(all_modes() if modes is None else modes, filters):
            name = cdbs_name(cc._next_delivery_time(root), "i", SUFFIX[reftype])
            _label(hdul, name)
            by_type.setdefault(reftype, []).append(cc._write_reference(root, hdul, name))
        for reftype, paths in by_type.items():
            serial = cc._next_serial(root, f"hst_wfc3_{reftype}_[0-9]*.rmap")
            new = cc.mappings_dir(root) / cc.rmap_name("wfc3", reftype, serial)
            old_name = rmaps.get(reftype, "N/A")
            if old_name == "N/A":
                new.write_text(cc._empty_rmap("wfc3", reftype, serial))
                old = new
            else:
                old = cc.mappings_dir(root) / old_name
            cc._insert(old, new, paths)
            rmaps[reftype] = new.name
        imaps["WFC3"] = cc._write_imap(root, "wfc3", cc._next_serial(root, "hst_wfc3_[0-9]*.imap"), rmaps, old_imap)
        context = cc._write_context(root, cc._next_serial(root, "hst_[0-9]*.pmap"), imaps, old_context)
    cc._readable(write_server_config(root, context, last_synced="delivery of WFC3/IR references by owlpipe"))
    return context


def _delivered(root: Path, rmap_name_: str) -> list[fits.Header]:
    """Primary headers of the references an rmap names (their modes and filters)."""
    from crds.core import rmap

    names = rmap.ReferenceMapping.from_file(str(cc.mappings_dir(root) / rmap_name_)).reference_names()
    return [fits.getheader(cc.references_dir(root) / n) for n in names if (cc.references_dir(root) / n).is_file()]


def bump_ir_reference(crds_root: Path | str, reftype: str) -> str:
    """Redeliver an IR ``reftype`` (new CDBS name, USEAFTER a day after the one it supersedes) for every
    mode (darks: SAMP_SEQ x SUBTYPE) or filter (flats) the cache holds; return the new context."""
    from crds.core import rmap

    from pipeline.simulate.acscrds import _useafter_after

    root = Path(crds_root).expanduser().resolve()
    reftype = reftype.lower()
    if reftype not in SUFFIX:
        raise ValueError(f"cannot deliver IR {reftype!r}: known IR types are {', '.join(SUFFIX)}")
    old_context = cc.latest_context(root)
    imaps = cc._selector(root, old_context)
    rmaps = cc._selector(root, imaps["WFC3"])
    if rmaps.get(reftype, "N/A") == "N/A" or not any(cc.mappings_dir(root).glob("hst_wfc3_nlinfile_*.rmap")):
        raise ValueError("this cache has no WFC3/IR references: simulate an IR downlink into the site first")
    old_path = cc.mappings_dir(root) / rmaps[reftype]
    ir = [h for h in _delivered(root, rmaps[reftype]) if str(h.get("DETECTOR", "")).strip() == "IR"]
    modes = sorted({(str(h["SAMP_SEQ"]), str(h["SUBTYPE"])) for h in ir if "SAMP_SEQ" in h})
    filters = sorted({str(h["FILTER"]) for h in ir if "FILTER" in h})
    old = rmap.ReferenceMapping.from_file(str(old_path))
    with cc.crds_environment(root):
        paths = []
        for _, hdul in _builds(modes, filters, only=reftype):
            name = cdbs_name(cc._next_delivery_time(root), "i", SUFFIX[reftype])
            _label(hdul, name)
            hdul[0].header["HISTORY"] = f"redelivery replacing {old_context}'s IR {reftype}"
            _useafter_after(old, hdul, name)
            paths.append(cc._write_reference(root, hdul, name))
        serial = cc._next_serial(root, f"hst_wfc3_{reftype}_[0-9]*.rmap")
        new = cc.mappings_dir(root) / cc.rmap_name("wfc3", reftype, serial)
        cc._insert(old_path, new, paths)
        rmaps[reftype] = new.name
        imap_serial = cc._next_serial(root, "hst_wfc3_[0-9]*.imap")
        imaps["WFC3"] = cc._write_imap(root, "wfc3", imap_serial, rmaps, imaps["WFC3"])
        context = cc._write_context(root, cc._next_serial(root, "hst_[0-9]*.pmap"), imaps, old_context)
    cc._readable(write_server_config(root, context, last_synced=f"delivery of IR {reftype} by owlpipe simulate"))
    return context
