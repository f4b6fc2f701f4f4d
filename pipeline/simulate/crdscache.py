"""A local CRDS cache holding the simulated references, and reference deliveries into it.

Layout (``CRDS_PATH``): ``mappings/hst/`` (checksummed ``.pmap/.imap/.rmap``), ``references/hst/``
(flat, as ``config/hst/ref_cache_subdir_mode`` says), ``config/hst/server_config`` (what crds needs
offline). rmaps are filled the way the CRDS server fills them: each reference file is inserted with
crds's own ``insert_reference``, which derives its match row from the file's header (substitutions
such as ``CCDAMP='ANY'`` included) and its UseAfter date from USEAFTER.

A delivery (:func:`bump_reference`) adds a new reference file and the next serial of its rmap, the
instrument context and the pipeline context (``hst_0002.pmap``...), leaves every older mapping as it
was, and makes the new context operational.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.core.errors import ConfigError
from pipeline.core.fsutil import atomic_path, atomic_write
from pipeline.science.refs import server_config_path, write_server_config
from pipeline.simulate import mdriztab, reffiles
from pipeline.simulate.detector import DETECTOR_SEED, Detector
from pipeline.simulate.geometry import camera_for, readout_for
from pipeline.simulate.rmapspecs import RMAP_HEADERS

OBSERVATORY = "hst"
MARKER = "owl_simulator.json"
_SERIAL = re.compile(r"_(\d{4})\.(pmap|imap|rmap)$")


class CacheError(ConfigError):
    """The cache cannot take this request (already built, missing, or built for other data)."""


def mappings_dir(root: Path) -> Path:
    return root / "mappings" / OBSERVATORY


def references_dir(root: Path) -> Path:
    return root / "references" / OBSERVATORY


def config_dir(root: Path) -> Path:
    return root / "config" / OBSERVATORY


@contextlib.contextmanager
def crds_environment(root: Path) -> Iterator[None]:
    """Point crds at ``root`` for the duration (crds memoises per name, so flush its caches)."""
    from crds.core import config, utils

    saved = {k: os.environ.get(k) for k in ("CRDS_PATH", "CRDS_MODE")}
    os.environ["CRDS_PATH"], os.environ["CRDS_MODE"] = str(root), "local"
    config.CRDS_REF_SUBDIR_MODE = "None"
    utils.clear_function_caches()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        config.CRDS_REF_SUBDIR_MODE = "None"
        utils.clear_function_caches()


def _readable(path: Path) -> Path:
    """Cache files are shared read-only with every stage process (mkstemp creates them 0600)."""
    os.chmod(path, 0o644)
    return path


def _format_mapping(header: dict[str, Any], selector_text: str) -> str:
    lines = ["header = {"]
    lines += [f"    {key!r} : {value!r}," for key, value in sorted(header.items())]
    lines += ["}", "", f"selector = {selector_text}", ""]
    return "\n".join(lines)


def _write_mapping(path: Path, text: str) -> None:
    """Write mapping text, then let crds rewrite it with its sha1sum (atomically)."""
    from crds.core import rmap

    with atomic_path(path) as tmp:
        tmp.write_text(text)
        mapping = rmap.Mapping.from_file(str(tmp), ignore_checksum=True)
        mapping.write(str(tmp))
        _readable(tmp)


def _dict_selector(entries: dict[str, str]) -> str:
    body = "".join(f"    {k!r} : {v!r},\n" for k, v in sorted(entries.items()))
    return "{\n" + body + "}"


def rmap_name(instrument: str, reftype: str, serial: int) -> str:
    return f"hst_{instrument}_{reftype}_{serial:04d}.rmap"


def _empty_rmap(instrument: str, reftype: str, serial: int) -> str:
    header = {"derived_from": "owlpipe synthetic observatory", "filekind": reftype.upper(),
              "instrument": instrument.upper(), "mapping": "REFERENCE", "name": rmap_name(instrument, reftype, serial),
              "observatory": "HST", "sha1sum": "0", **RMAP_HEADERS[instrument][reftype]}
    return _format_mapping(header, "Match({\n})")


def _write_context(root: Path, serial: int, imaps: dict[str, str], derived_from: str) -> str:
    name = f"hst_{serial:04d}.pmap"
    header = {"derived_from": derived_from, "mapping": "PIPELINE", "name": name, "observatory": "HST",
              "parkey": ("INSTRUME",), "sha1sum": "0"}
    _write_mapping(mappings_dir(root) / name, _format_mapping(header, _dict_selector(imaps)))
    return name


def _write_imap(root: Path, instrument: str, serial: int, rmaps: dict[str, str], derived_from: str) -> str:
    name = f"hst_{instrument}_{serial:04d}.imap"
    header = {"derived_from": derived_from, "instrument": instrument.upper(), "mapping": "INSTRUMENT",
              "name": name, "observatory": "HST", "parkey": ("REFTYPE",), "sha1sum": "0"}
    _write_mapping(mappings_dir(root) / name, _format_mapping(header, _dict_selector(rmaps)))
    return name


def _insert(old_rmap: Path, new_rmap: Path, references: Sequence[Path]) -> None:
    """crds's insert_reference for each file, written as ``new_rmap`` (derived from ``old_rmap``)."""
    from crds.core import rmap

    mapping = rmap.ReferenceMapping.from_file(str(old_rmap), ignore_checksum=True)
    for ref in references:
        mapping = mapping.insert_reference(str(ref))
    if old_rmap != new_rmap:
        mapping.header["derived_from"] = old_rmap.name
    mapping.header["name"] = new_rmap.name
    with atomic_path(new_rmap) as tmp:
        mapping.write(str(tmp))
        _readable(tmp)


def _write_reference(root: Path, hdul: Any, name: str) -> Path:
    path = references_dir(root) / name
    if path.exists():
        raise CacheError(f"reference {name} already exists in {references_dir(root)}: CDBS names are never reused")
    with atomic_path(path) as tmp:
        hdul.writeto(tmp, overwrite=True)
        _readable(tmp)
    return path


def _next_delivery_time(root: Path) -> datetime:
    """Delivery clock: one minute per reference already in the cache (unique, reproducible names)."""
    count = sum(1 for p in references_dir(root).glob("*.fits"))
    return reffiles.DELIVERY_BASE + timedelta(minutes=count)


def _new_name(root: Path, det: Detector, reftype: str) -> str:
    return reffiles.cdbs_name(_next_delivery_time(root), det.camera.letter, reffiles.REFTYPES[reftype][0])


def read_marker(root: Path) -> dict[str, Any]:
    path = config_dir(root) / MARKER
    if not path.is_file():
        raise CacheError(f"{root} is not a simulator CRDS cache (no config/hst/{MARKER}): "
                         "build one with 'owl simulate refs'")
    return json.loads(path.read_text())


def refuse_built(root: Path) -> None:
    """A cache is built once; later references arrive as deliveries (new contexts), never a rebuild."""
    if any(mappings_dir(root).glob("hst*.pmap")):
        raise CacheError(f"{root} already holds a CRDS context; deliver new references with a bump instead")


def build_reference_cache(crds_root: Path | str, instruments: Sequence[str] = ("wfc3", "acs"),
                          seed: int = DETECTOR_SEED, size: str = "subarray") -> str:
    """Write the simulated references and context ``hst_0001.pmap`` into a new cache; return the context.

    ``size`` says which data the cache calibrates: 'full' (full-frame images, also valid for the
    subarray) or 'subarray' (references cut to the simulator's subarrays, for fast tests), or for
    ACS a supported WFC subarray aperture ('WFC2C-1K': references cut to that readout).
    """
    root = Path(crds_root).expanduser().resolve()
    instruments = sorted({i.lower() for i in instruments})
    for inst in instruments:
        readout_for(inst, size)  # ValueError for an unknown instrument or size
    refuse_built(root)
    for d in (mappings_dir(root), references_dir(root), config_dir(root)):
        d.mkdir(parents=True, exist_ok=True)
    with atomic_write(config_dir(root) / "ref_cache_subdir_mode", "w") as fh:
        fh.write("flat\n")
    _readable(config_dir(root) / "ref_cache_subdir_mode")
    imaps = {}
    with crds_environment(root):
        for inst in instruments:
            det = Detector(inst, seed)
            by_type: dict[str, list[Path]] = {}
            for spec in reffiles.initial_specs(det, size):
                name = _new_name(root, det, spec.reftype)
                hdul = reffiles.make_reference(det, spec, name, reffiles.INITIAL_USEAFTER)
                by_type.setdefault(spec.reftype, []).append(_write_reference(root, hdul, name))
            for detector in mdriztab.DETECTORS[det.camera.instrument]:  # every detector, as the real rmap
                name = _new_name(root, det, "mdriztab")
                hdul = mdriztab.mdriz_table(det.camera.instrument, detector, name)
                by_type.setdefault("mdriztab", []).append(_write_reference(root, hdul, name))
            rmaps = {}
            for reftype, paths in by_type.items():
                path = mappings_dir(root) / rmap_name(inst, reftype, 1)
                path.write_text(_empty_rmap(inst, reftype, 1))
                _insert(path, path, paths)
                rmaps[reftype] = path.name
            rmaps.update({t: "N/A" for t in reffiles.NOT_APPLICABLE})
            imaps[camera_for(inst).instrument] = _write_imap(root, inst, 1, rmaps, "owlpipe synthetic observatory")
        context = _write_context(root, 1, imaps, "owlpipe synthetic observatory")
    with atomic_write(config_dir(root) / MARKER, "w") as fh:
        json.dump({"size": size, "detector_seed": seed, "instruments": instruments}, fh, indent=1)
    _readable(config_dir(root) / MARKER)
    _readable(write_server_config(root, context, last_synced="built by owlpipe simulate"))
    return context


# ------------------------------------------------------------------------------------------ delivery


def latest_context(root: Path) -> str:
    pmaps = sorted(mappings_dir(root).glob("hst_[0-9][0-9][0-9][0-9].pmap"))
    if not pmaps:
        raise CacheError(f"{root} holds no hst_NNNN.pmap context")
    return pmaps[-1].name


def _next_serial(root: Path, family_glob: str) -> int:
    serials = [int(m.group(1)) for p in mappings_dir(root).glob(family_glob) if (m := _SERIAL.search(p.name))]
    return max(serials, default=0) + 1


def _selector(root: Path, name: str) -> dict[str, str]:
    """The selector of a pipeline or instrument mapping (a plain name -> mapping dict)."""
    from crds.core import rmap

    return dict(rmap.Mapping.from_file(str(mappings_dir(root) / name)).selector)


def _rows(rmapping: Any) -> dict[tuple, list[tuple[str, str]]]:
    """Match tuple -> [(USEAFTER, reference), ...] of an rmap, from crds's own flat view."""
    rows: dict[tuple, list[tuple[str, str]]] = {}
    for *match, useafter, reference in rmapping.todict()["selections"]:
        rows.setdefault(tuple(match), []).append((useafter, reference))
    return rows


def _match_row(rmapping: Any, hdul: Any, name: str) -> tuple:
    """The match tuple crds would file ``hdul`` under (probed on a scratch copy of the file)."""
    with tempfile.TemporaryDirectory(prefix="owl-refprobe-") as scratch:
        probe = Path(scratch) / name
        hdul.writeto(probe)
        rows = _rows(rmapping.insert_reference(str(probe)))
    return next(match for match, entries in rows.items() if any(ref == name for _, ref in entries))


def bump_reference(crds_root: Path | str, reftype: str, detector: str | None = None,
                   ccdamp: str | None = None) -> str:
    """Deliver a new ``reftype`` reference and a new context; return the new context name.

    ``detector`` (UVIS or WFC) picks the instrument, default every instrument in the cache.
    ``ccdamp`` restricts the delivery to one amplifier configuration: the bias of that readout, or
    an image labelled with that CCDAMP, which CRDS files under a match row of its own. A file that
    joins an existing row gets a USEAFTER one day after the row's newest; a file that opens a new
    row starts at the cache's first USEAFTER, so it applies to every dataset of that configuration.
    """
    root = Path(crds_root).expanduser().resolve()
    marker = read_marker(root)
    reftype = reftype.lower()
    if reftype not in reffiles.BUILDERS:  # MDRIZTAB is delivered with the cache, never redelivered
        raise ValueError(f"cannot deliver {reftype!r}: deliverable types are {', '.join(reffiles.BUILDERS)}")
    if ccdamp is not None and reftype in (*reffiles.TABLE_TYPES, "pctetab"):
        raise ValueError(f"--ccdamp applies to image references, not to the {reftype} table")
    instruments = [i for i in marker["instruments"] if detector is None or camera_for(i).detector == detector.upper()]
    if not instruments:
        raise ValueError(f"no instrument with detector {detector!r} in this cache "
                         f"(it has {', '.join(marker['instruments'])})")
    if detector is None:  # every instrument that has rules for the type (UVIS alone has CTE ones here)
        instruments = [i for i in instruments if _has_rules(i, reftype)] or instruments
    old_context = latest_context(root)
    imaps = _selector(root, old_context)
    with crds_environment(root):
        for inst in instruments:
            key = camera_for(inst).instrument
            imaps[key] = _deliver(root, inst, reftype, ccdamp, imaps[key], marker)
        context = _write_context(root, _next_serial(root, "hst_[0-9]*.pmap"), imaps, old_context)
    _readable(write_server_config(root, context, last_synced=f"delivery of {reftype} by owlpipe simulate"))
    return context


def _has_rules(instrument: str, reftype: str) -> bool:
    """Whether caches built here hold ``reftype`` rules for ``instrument``."""
    return reftype in RMAP_HEADERS.get(instrument, {})


def _deliver(root: Path, inst: str, reftype: str, ccdamp: str | None, old_imap: str, marker: dict[str, Any]) -> str:
    """Write the new reference(s), rmap and imap for one instrument; return the new imap name."""
    from crds.core import rmap

    det = Detector(inst, marker["detector_seed"])
    rmaps = _selector(root, old_imap)
    old_rmap_name = rmaps.get(reftype, "N/A")
    if old_rmap_name == "N/A":
        raise CacheError(f"{old_imap} has no {reftype} rules to deliver into")
    old_rmap_path = mappings_dir(root) / old_rmap_name
    old_rmap = rmap.ReferenceMapping.from_file(str(old_rmap_path))
    existing = _rows(old_rmap)
    specs = [s for s in reffiles.initial_specs(det, marker["size"]) if s.reftype == reftype]
    if ccdamp is not None and reftype == "biasfile":
        specs = [s for s in specs if s.readout is not None and s.readout.ccdamp == ccdamp]
    elif ccdamp is not None:
        specs = [replace(s, ccdamp=ccdamp) for s in specs]
    if not specs:
        raise ValueError(f"{inst}: no {reftype} for CCDAMP {ccdamp} in a {marker['size']} cache")
    generation = len(old_rmap.reference_names()) // len(specs)
    new_paths = []
    for spec in specs:
        name = _new_name(root, det, reftype)
        hdul = reffiles.make_reference(det, replace(spec, variant=generation), name, reffiles.INITIAL_USEAFTER)
        row = _match_row(old_rmap, hdul, name)
        if row in existing:  # a newer file for a known configuration
            newest = max(datetime.fromisoformat(date) for date, _ in existing[row])
            hdul[0].header["USEAFTER"] = reffiles.useafter_text(newest + timedelta(days=1))
        new_paths.append(_write_reference(root, hdul, name))
    new_rmap = mappings_dir(root) / rmap_name(inst, reftype, _next_serial(root, f"hst_{inst}_{reftype}_[0-9]*.rmap"))
    _insert(old_rmap_path, new_rmap, new_paths)
    rmaps[reftype] = new_rmap.name
    return _write_imap(root, inst, _next_serial(root, f"hst_{inst}_[0-9]*.imap"), rmaps, old_imap)


def cache_summary(root: Path | str) -> dict[str, Any]:
    """Context, size and reference count of a cache (for ``owl simulate refs --json``)."""
    root = Path(root).expanduser().resolve()
    marker = read_marker(root)
    return {"crds_path": str(root), "context": latest_context(root), "size": marker["size"],
            "detector_seed": marker["detector_seed"], "instruments": marker["instruments"],
            "references": sorted(p.name for p in references_dir(root).glob("*.fits")),
            "server_config": str(server_config_path(root))}


