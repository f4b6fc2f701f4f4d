"""Deliver the simulated ACS/SBC and ACS/HRC references into a simulator CRDS cache.

The files go into the cache's ACS rmaps (CDBS names, matched on the parameters of the real
``hst_0349`` ACS rmaps: DETECTOR, CCDAMP, CCDGAIN, FILTER1/2, OBSTYPE), plus a new MLINTAB rmap with
the real one's header (SBC only, relevant under GLINCORR), in a new context. Flats are one file per
filter, as CDBS has them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from astropy.io import fits

from pipeline.science.refs import write_server_config
from pipeline.simulate import hrc, reffiles, sbc
from pipeline.simulate.crdscache import (
    CacheError,
    _empty_rmap,
    _insert,
    _match_row,
    _next_delivery_time,
    _next_serial,
    _readable,
    _rows,
    _selector,
    _write_context,
    _write_imap,
    _write_reference,
    crds_environment,
    latest_context,
    mappings_dir,
    read_marker,
    rmap_name,
)

SUFFIX = {**{k: v[0] for k, v in reffiles.REFTYPES.items()}, "mlintab": "lin", "cfltfile": "cfl", "spottab": "csp"}
USEAFTER = {"HRC": "Mar 01 2002 00:00:00", "SBC": "Mar 01 2002 00:00:00"}
SBC_FILTERS = ("F115LP", "F125LP", "F140LP", "F150LP", "F165LP", "F122M")
HRC_FILTERS = ("F555W", "F606W", "F330W", "F814W", "F250W")


def _flats(path: Path, detector: str, filters: Sequence[str]) -> list[fits.HDUList]:
    """One flat per filter (the same pixels): CDBS selects flats by FILTER1/FILTER2."""
    out = []
    for name in filters:
        h = fits.open(path)
        f1, f2 = (name, "N/A") if detector == "SBC" else hrc.FILTERS[name][:2]
        coronagraphic = str(h[0].header.get("OBSTYPE", "")) == "CORONAGRAPHIC"  # a spot flat keeps it
        h[0].header.update(FILTER1=f1, FILTER2=f2, OBSTYPE="CORONAGRAPHIC" if coronagraphic else "IMAGING")
        if detector == "HRC" and not coronagraphic:
            h[0].header["CCDAMP"] = "C"
        out.append(h)
    return out


def _files(scratch: Path, sbc_filters: Sequence[str], hrc_filters: Sequence[str]) -> list[tuple[str, fits.HDUList]]:
    """(reftype, HDUList) of every SBC and HRC reference."""
    s = sbc.write_references(scratch / "sbc")
    r = hrc.write_references(scratch / "hrc")
    files = [(k.lower(), fits.open(p)) for k, p in s.items() if k != "PFLTFILE"]
    files += [("pfltfile", h) for h in _flats(s["PFLTFILE"], "SBC", sbc_filters)]
    files += [(k.lower(), fits.open(p)) for k, p in r.items() if k != "PFLTFILE"]
    files += [("pfltfile", h) for h in _flats(r["PFLTFILE"], "HRC", hrc_filters)]
    coron = {k: scratch / "hrc" / v for k, v in hrc.CORON_NAMES.items()}  # hrc.write_references wrote them
    files += [("cfltfile", h) for h in _flats(coron["CFLTFILE"], "HRC", hrc_filters)]
    for h in _flats(r["PFLTFILE"], "HRC", hrc_filters):  # CDBS has HRC flats for coronagraphic data too
        h[0].header["OBSTYPE"] = "CORONAGRAPHIC"
        files.append(("pfltfile", h))
    files += [("spottab", fits.open(coron["SPOTTAB"]))]
    for reftype, h in files:
        p = h[0].header
        p["USEAFTER"] = USEAFTER[str(p["DETECTOR"])]
        if reftype in ("biasfile", "darkfile", "satufile") and p["DETECTOR"] == "HRC":
            p.update(CCDAMP="C", CCDGAIN=2.0 if reftype == "biasfile" else -999.0)
        if reftype == "biasfile":
            p.update(APERTURE="NONE", CCDCHIP=1)
    return files


def _useafter_after(rmapping: Any, hdul: fits.HDUList, name: str) -> None:
    """A file joining an existing match row gets a USEAFTER one day after the row's newest."""
    row = _match_row(rmapping, hdul, name)
    existing = _rows(rmapping)
    if row in existing:
        newest = max(datetime.fromisoformat(date) for date, _ in existing[row])
        hdul[0].header["USEAFTER"] = reffiles.useafter_text(newest + timedelta(days=1))


def bump_mode_reference(crds_root: Path | str, reftype: str, detector: str) -> str:
    """Deliver a new ``reftype`` for SBC or HRC (a redelivery: new name, later USEAFTER) and a new
    context; return the context's name. The cache must already hold the SBC/HRC references."""
    from crds.core import rmap

    root = Path(crds_root).expanduser().resolve()
    detector, reftype = detector.upper(), reftype.lower()
    read_marker(root)
    old_context = latest_context(root)
    imaps = _selector(root, old_context)
    rmaps = _selector(root, imaps["ACS"])
    if rmaps.get(reftype, "N/A") == "N/A":
        raise ValueError(f"this cache has no ACS {reftype} rules: deliver the SBC/HRC references first")
    old_path = mappings_dir(root) / rmaps[reftype]
    old = rmap.ReferenceMapping.from_file(str(old_path))
    with tempfile.TemporaryDirectory(prefix="owl-acsrefs-") as scratch, crds_environment(root):
        files = [h for t, h in _files(Path(scratch), SBC_FILTERS[:1], HRC_FILTERS[:1])
                 if t == reftype and str(h[0].header["DETECTOR"]) == detector]
        if not files:
            raise ValueError(f"no {reftype} reference for {detector} (SBC: bpixtab, mlintab, darkfile, pfltfile, "
                             "imphttab; HRC adds ccdtab, oscntab, biasfile, satufile, crrejtab)")
        paths = []
        for hdul in files:
            name = reffiles.cdbs_name(_next_delivery_time(root), "j", SUFFIX[reftype])
            hdul[0].header["FILENAME"] = name
            hdul[0].header["HISTORY"] = f"redelivery replacing {old_context}'s {reftype} for {detector}"
            _useafter_after(old, hdul, name)
            paths.append(_write_reference(root, hdul, name))
            hdul.close()
        new = mappings_dir(root) / rmap_name("acs", reftype, _next_serial(root, f"hst_acs_{reftype}_[0-9]*.rmap"))
        _insert(old_path, new, paths)
        rmaps[reftype] = new.name
        imaps["ACS"] = _write_imap(root, "acs", _next_serial(root, "hst_acs_[0-9]*.imap"), rmaps, imaps["ACS"])
        context = _write_context(root, _next_serial(root, "hst_[0-9]*.pmap"), imaps, old_context)
    _readable(write_server_config(root, context, last_synced=f"delivery of {detector} {reftype} by owlpipe simulate"))
    return context


def deliver_sbc_hrc(crds_root: Path | str, *, sbc_filters: Sequence[str] = SBC_FILTERS,
                    hrc_filters: Sequence[str] = HRC_FILTERS) -> str:
    """Add the SBC and HRC references to a simulator cache; return the new context's name."""
    root = Path(crds_root).expanduser().resolve()
    marker = read_marker(root)
    if "acs" not in marker["instruments"]:
        raise CacheError(f"{root}: this cache has no ACS references to add SBC and HRC to")
    old_context = latest_context(root)
    imaps = _selector(root, old_context)
    rmaps = _selector(root, imaps["ACS"])
    by_type: dict[str, list[Path]] = {}
    with tempfile.TemporaryDirectory(prefix="owl-acsrefs-") as scratch, crds_environment(root):
        for reftype, hdul in _files(Path(scratch), sbc_filters, hrc_filters):
            name = reffiles.cdbs_name(_next_delivery_time(root), "j", SUFFIX[reftype])
            hdul[0].header["FILENAME"] = name
            by_type.setdefault(reftype, []).append(_write_reference(root, hdul, name))
            hdul.close()
        for reftype, paths in sorted(by_type.items()):
            new = mappings_dir(root) / rmap_name("acs", reftype, _next_serial(root, f"hst_acs_{reftype}_[0-9]*.rmap"))
            old_name = rmaps.get(reftype, "N/A")
            old = mappings_dir(root) / old_name if old_name != "N/A" else new
            if old == new:
                new.write_text(_empty_rmap("acs", reftype, int(new.stem[-4:])))
                _readable(new)
            _insert(old, new, paths)
            rmaps[reftype] = new.name
        imaps["ACS"] = _write_imap(root, "acs", _next_serial(root, "hst_acs_[0-9]*.imap"), rmaps, imaps["ACS"])
        context = _write_context(root, _next_serial(root, "hst_[0-9]*.pmap"), imaps, old_context)
    _readable(write_server_config(root, context, last_synced="SBC and HRC references by owlpipe simulate"))
    return context
