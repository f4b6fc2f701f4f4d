"""AstroDrizzle, run the way the STScI pipeline runs it offline, with guards drizzlepac lacks.

``_flt`` inputs of an association (or singleton) become ``<name>_drz.fits``, ``_flc`` inputs
``<name>_drc.fits``. drizzlepac quietly removes inputs it dislikes (``EXPTIME`` = 0, ``NGOODPIX``
= 0, no ``PA_V3``) and still succeeds, and it edits its inputs in place. So:

* every input is checked first and refused with the file and keyword named (:func:`preflight`);
* drizzlepac runs on *copies* in a scratch directory of the work area, never on the calibrated
  files that INGEST_SCI archives, so a rerun starts from the same inputs and converges;
* after the run, the product's ``D###DATA`` keywords must name every input, or the run fails
  (:func:`dropped_inputs`) — a silent drop can never reach the archive;
* the product gets provenance keywords (inputs with their sha256, software versions, CRDS
  context) and only then is renamed into the work area: there is never a partial product.

AstroDrizzle's parameters come from the MDRIZTAB the first input's header names (RF's best
reference), row chosen as the STScI pipeline chooses it (:mod:`pipeline.science.mdriztab`); without
one, drizzlepac's defaults apply and the trailer says so. Either way the product's HISTORY names the
source and every parameter taken from it. AstroDrizzle runs ``in_memory``, as the STScI pipeline
runs it: the single-drizzled images, median and blotted images stay in memory instead of going to
disk and being read back, which changes no pixel of the product; and with the bit-identical
stand-ins of :mod:`pipeline.science.drizzle_exact` for two slow numpy pieces of its ``driz_cr`` step.

drizzlepac costs ~3 s to import, so it is imported inside :func:`run_astrodrizzle` only (and lean:
:func:`pipeline.science.drizzle_exact.lean_import`).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import time
import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from astropy.io import fits

from pipeline.core.errors import BadInput
from pipeline.core.fsutil import append_tail, fsync_dir, sha256_file
from pipeline.core.names import DatasetName
from pipeline.science import drizzle_exact, drizzle_fork, mdriztab
from pipeline.science.refs import is_na

#: Input suffix → drizzled product suffix.
PRODUCT_SUFFIX = {"flt": "drz", "flc": "drc"}
#: Instruments whose imaging drizzlepac handles.
DRIZZLED_INSTRUMENTS = {"WFC3", "ACS", "STIS", "WFPC2", "NICMOS"}
#: Keywords drizzlepac reads from each input (primary header / each SCI extension).
PRIMARY_KEYWORDS = ("INSTRUME", "DETECTOR", "EXPTIME", "EXPSTART", "EXPEND", "PA_V3")
SCI_KEYWORDS = ("CTYPE1", "CTYPE2", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CD1_1", "CD1_2", "CD2_1", "CD2_2",
                "NGOODPIX")
#: Per-amplifier gain and read noise, read by drizzlepac for CCD instruments.
AMP_KEYWORDS = {"WFC3": ("ATODGNA", "ATODGNB", "ATODGNC", "ATODGND", "READNSEA", "READNSEB", "READNSEC",
                         "READNSED"),
                "ACS": ("ATODGNA", "ATODGNB", "ATODGNC", "ATODGND", "READNSEA", "READNSEB", "READNSEC",
                        "READNSED")}
#: MAMA detectors: drizzlepac takes unit gain and no read noise, reading no amplifier keywords.
PHOTON_COUNTING = {"SBC", "FUV-MAMA", "NUV-MAMA"}
_DATA_KEY = re.compile(r"^D\d{3}DATA$")


class DrizzleFailed(BadInput):
    """AstroDrizzle raised, or its product does not account for every input (the input is named
    when known, so the stage wrapper quarantines it)."""


@dataclass(frozen=True)
class DrizzleInput:
    path: Path
    rootname: str
    instrument: str
    detector: str
    crds_context: str | None
    sha256: str


@dataclass(frozen=True)
class DrizzleProduct:
    path: Path
    suffix: str
    inputs: tuple[str, ...]
    seconds: float
    log: str
    #: The MDRIZTAB row used (None: drizzlepac's defaults) and table parameters MD overrode.
    mdriztab: mdriztab.Choice | None = None
    overridden: tuple[str, ...] = ()
    #: drizzlepac internals replaced by bit-identical faster code for this run (:mod:`drizzle_exact`).
    fast_paths: tuple[str, ...] = ()


def _keyword_problem(header: fits.Header, keyword: str) -> str | None:
    if keyword not in header:
        return "missing"
    value = header[keyword]
    if value is None or (isinstance(value, str) and not value.strip()):
        return "blank"
    return None


def preflight(path: Path) -> DrizzleInput:
    """Check one input as drizzlepac will read it; raise :class:`BadInput` naming file and keyword."""
    if not path.is_file():
        raise BadInput(f"{path.name}: drizzle input missing from {path.parent}")
    try:
        with fits.open(path, memmap=False) as hdul:
            primary = hdul[0].header
            for key in PRIMARY_KEYWORDS:
                if (problem := _keyword_problem(primary, key)) is not None:
                    raise BadInput(f"{path.name}: keyword {key} {problem} in the primary header "
                                   "(drizzlepac would drop or reject this input)", path=path, keyword=key)
            instrument = str(primary["INSTRUME"]).strip().upper()
            if instrument not in DRIZZLED_INSTRUMENTS:
                raise BadInput(f"{path.name}: INSTRUME {instrument!r} cannot be drizzled", path=path,
                               keyword="INSTRUME")
            photon_counting = str(primary["DETECTOR"]).strip().upper() in PHOTON_COUNTING
            for key in () if photon_counting else AMP_KEYWORDS.get(instrument, ()):
                if (problem := _keyword_problem(primary, key)) is not None:
                    raise BadInput(f"{path.name}: keyword {key} {problem} in the primary header", path=path,
                                   keyword=key)
            if not float(primary["EXPTIME"]) > 0:
                raise BadInput(f"{path.name}: EXPTIME = {primary['EXPTIME']} (drizzlepac silently drops "
                               "zero-exposure inputs)", path=path, keyword="EXPTIME")
            scis = [h for h in hdul[1:] if h.header.get("EXTNAME", "").strip().upper() == "SCI"]
            if not scis:
                raise BadInput(f"{path.name}: no SCI extension", path=path)
            good = 0
            for hdu in scis:
                where = f"[SCI,{hdu.header.get('EXTVER', 1)}]"
                for key in SCI_KEYWORDS:
                    if (problem := _keyword_problem(hdu.header, key)) is not None:
                        raise BadInput(f"{path.name}{where}: keyword {key} {problem}", path=path, keyword=key)
                good += int(hdu.header["NGOODPIX"])
                if hdu.data is None or hdu.data.ndim != 2:
                    raise BadInput(f"{path.name}{where}: no 2-D image data", path=path)
            if good <= 0:
                raise BadInput(f"{path.name}: NGOODPIX = 0 in every SCI extension (no valid pixels; "
                               "drizzlepac silently drops such inputs)", path=path, keyword="NGOODPIX")
            for hdu in hdul[1:]:
                _ = hdu.data  # read every extension: truncation or corruption shows here
            detector = str(primary["DETECTOR"]).strip().upper()
            context = str(primary.get("CRDS_CTX", "")).strip() or None
            rootname = str(primary.get("ROOTNAME", path.name.split("_")[0])).strip().lower()
    except BadInput:
        raise
    except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise BadInput(f"{path.name}: unreadable or corrupt FITS ({type(exc).__name__}: {exc})", path=path) from None
    return DrizzleInput(path, rootname, instrument, detector, context, sha256_file(path))


def drizzled_inputs(product: Path) -> set[str]:
    """Input file names recorded in a product's ``D###DATA`` keywords (``x_flt.fits[sci,1]`` → ``x_flt.fits``)."""
    header = fits.getheader(product, 0)
    names = set()
    for key, value in header.items():
        if _DATA_KEY.match(key):
            names.add(Path(str(value).split("[")[0].strip()).name)
    return names


def dropped_inputs(product: Path, inputs: list[Path], log: str) -> tuple[list[str], str]:
    """(inputs the product's ``D###DATA`` keywords do not name, drizzlepac's stated reasons)."""
    used = drizzled_inputs(product)
    dropped = [p.name for p in inputs if p.name not in used]
    reasons = [line.split("]", 1)[-1].strip() for line in log.splitlines() if "Removing" in line or "Warning" in line]
    return dropped, " / ".join(reasons[:4])


@contextlib.contextmanager
def _in_directory(path: Path) -> Iterator[None]:
    """drizzlepac writes intermediates into the current directory: run it inside the scratch area."""
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def import_astrodrizzle() -> types.ModuleType:
    """``drizzlepac.astrodrizzle``, lean (:func:`~pipeline.science.drizzle_exact.lean_import`), offline
    (``ASTROMETRY_STEP_CONTROL=OFF`` before drizzlepac reads it) and without its import warnings."""
    os.environ["ASTROMETRY_STEP_CONTROL"] = "OFF"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return drizzle_exact.lean_import("astrodrizzle")


def run_astrodrizzle(inputs: list[Path], output: str, rundir: Path, *, cores: int = 1,
                     parameters: dict[str, object] | None = None, fast_paths: bool = True,
                     processes: int = 1) -> tuple[Path, str, tuple[str, ...]]:
    """Run AstroDrizzle offline on ``inputs`` (already inside ``rundir``) with ``parameters`` (an
    MDRIZTAB row; none: drizzlepac's defaults); return (product, log text, the exact fast paths used;
    ``fast_paths=False``: none, drizzlepac exactly as installed). ``processes`` > 1 (with ``fast_paths``):
    the per-image steps in up to that many forked processes (:mod:`pipeline.science.drizzle_fork`).

    Offline means ``updatewcs=False`` and ``ASTROMETRY_STEP_CONTROL=OFF``: the WCS in the headers is
    used as calibrated, no astrometry database is contacted.
    """
    astrodrizzle = import_astrodrizzle()

    runfile = f"{output}_astrodrizzle.log"
    chatter = io.StringIO()
    try:
        with (_in_directory(rundir), contextlib.redirect_stdout(chatter), warnings.catch_warnings(),
              drizzle_exact.exact_fast_paths(fast_paths) as exact,
              drizzle_fork.per_image_processes(processes if fast_paths else 1, cores) as forked):
            warnings.simplefilter("ignore")
            astrodrizzle.AstroDrizzle(
                [p.name for p in inputs], **{"context": True, **(parameters or {})}, output=output, updatewcs=False,
                num_cores=cores, preserve=False, clean=True, build=True, runfile=runfile, in_memory=True)
    except (MemoryError, OSError):
        raise
    except Exception as exc:  # drizzlepac raises bare Exceptions and TypeErrors on bad data
        log = _read_log(rundir / runfile, chatter)
        last = [ln.strip() for ln in log.splitlines() if ln.strip()][-3:]
        raise DrizzleFailed(f"AstroDrizzle failed on {', '.join(p.name for p in inputs)}: "
                            f"{type(exc).__name__}: {exc}" + (f" (log: {' / '.join(last)})" if last else "")) from exc
    log = _read_log(rundir / runfile, chatter)
    suffix = PRODUCT_SUFFIX[inputs[0].name.rsplit("_", 1)[1].split(".")[0]]
    product = rundir / f"{output}_{suffix}.fits"
    if not product.is_file():
        raise DrizzleFailed(f"AstroDrizzle reported success but wrote no {product.name}")
    return product, log, exact + tuple(forked)


def _read_log(runfile: Path, chatter: io.StringIO) -> str:
    return runfile.read_text(errors="replace") if runfile.is_file() else chatter.getvalue()


def software_versions() -> dict[str, str]:
    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "unknown"

    return {"drizzlepac": version("drizzlepac"), "stwcs": version("stwcs"), "owlpipe": version("owlpipe")}


def add_provenance(product: Path, inputs: list[DrizzleInput], crds_context: str | None,
                   choice: mdriztab.Choice | None = None) -> Path:
    """Record inputs (name + sha256), software versions, CRDS context and the AstroDrizzle parameters'
    source (MDRIZTAB table, row and values, or drizzlepac's defaults) in the product's primary header.

    Returns the recorded product, a new file beside ``product``: the new primary header's blocks, then
    the rest of ``product`` as it is (:func:`append_tail`). (astropy's update mode writes a file whose
    header grows twice over: a 0.4 GB ``_drz`` to a temporary file, then back.)"""
    versions = software_versions()
    with fits.open(product) as hdul:  # the header only: the data are copied below as bytes
        h = hdul[0].header
        h["FILENAME"] = product.name
        h["NDRZIN"] = (len(inputs), "number of exposures drizzled into this product")
        for i, item in enumerate(inputs, 1):
            h[f"DRZIN{i:03d}"] = (item.path.name, "drizzle input")
            h[f"DRZSH{i:03d}"] = item.sha256  # sha256 of the input as drizzled (no room for a comment)
        h["DRIZ_VER"] = (f"drizzlepac {versions['drizzlepac']}", "AstroDrizzle software version")
        h["STWCSVER"] = (versions["stwcs"], "STWCS version (WCS as calibrated, not updated)")
        h["OWL_VER"] = (versions["owlpipe"], "owlpipe version that ran MD")
        if crds_context:
            h["CRDS_CTX"] = (crds_context, "CRDS context the inputs were calibrated with")
        h["PROCTIME"] = (round(time.time() / 86400.0 + 40587.0, 8), "drizzle processing time (MJD)")
        if choice is not None:
            h["MDRIZTAB"] = (choice.table, "AstroDrizzle parameter table used")
            h["MDZROW"] = (choice.row, "MDRIZTAB row used (1-based)")
            for line in choice.history():
                h.add_history(line)
        else:
            h.add_history(f"AstroDrizzle parameters: drizzlepac {versions['drizzlepac']} defaults (no MDRIZTAB)")
        h["DRIZCORR"] = "COMPLETE"
        header, rest = h.tostring().encode("ascii"), hdul.fileinfo(0)["datLoc"]
    recorded = product.with_name(f"{product.name}.recorded")
    with open(product, "rb") as src, open(recorded, "wb") as out:
        out.write(header)
        append_tail(out, src, rest)
    return recorded


def _without_old_dgeo(copy: Path, log: Callable[[str], None]) -> None:
    """An old-style DGEOFILE without NPOLFILE (pre-2009 archive headers, e.g. real ACS/HRC) makes
    drizzlepac ask on stdin whether to go on without it. With ``updatewcs=False`` the headers' WCS
    is used as it is and the DGEO file is never applied, so answer as an operator would ('c'): blank
    it in the scratch copy. The input itself is not touched."""
    with fits.open(copy, mode="update") as hdul:
        h = hdul[0].header
        if not is_na(h.get("DGEOFILE")) and "NPOLFILE" not in h:
            log(f"{copy.name}: old-style DGEOFILE {h['DGEOFILE']} without NPOLFILE: not applied (updatewcs=False)")
            h["DGEOFILE"] = "N/A"


def drizzle(
    inputs: list[Path],
    product_name: DatasetName,
    work: Path,
    *,
    cores: int = 1,
    cache: Path | None = None,
    log: Callable[[str], None] = lambda _text: None,
    fast_paths: bool = True,
    processes: int = 1,
) -> DrizzleProduct:
    """Drizzle ``inputs`` (all ``_flt`` or all ``_flc``) into ``work/<product_name>_<drz|drc>.fits`` with
    the MDRIZTAB row for them (``cache``: the CRDS cache the header's ``iref$`` names resolve to;
    ``processes``: CPUs for AstroDrizzle's per-image steps, :mod:`pipeline.science.drizzle_fork`)."""
    kinds = {p.name.rsplit("_", 1)[-1].split(".")[0] for p in inputs}
    if len(kinds) != 1 or not kinds <= PRODUCT_SUFFIX.keys():
        raise BadInput(f"{product_name}: drizzle inputs must all be _flt or all _flc, got "
                       f"{', '.join(p.name for p in inputs)}")
    suffix = PRODUCT_SUFFIX[kinds.pop()]
    checked = [preflight(p) for p in inputs]
    contexts = sorted({c.crds_context for c in checked if c.crds_context})
    if len(contexts) > 1:
        log(f"inputs were calibrated with different CRDS contexts: {', '.join(contexts)}")
    choice = mdriztab.choose(checked[0].path, len(checked), cache) if cache is not None else None
    parameters, overridden = mdriztab.split_operational(choice.parameters) if choice else ({}, [])
    started = time.monotonic()
    rundir = work / f".md_{product_name}_{suffix}"
    if rundir.exists():  # left by an interrupted run: scratch only, never inputs or products
        shutil.rmtree(rundir)
    rundir.mkdir(parents=True)
    try:
        # scratch for AstroDrizzle to edit, removed whole after the run or by the next one: a kernel-side
        # copy, neither fsynced nor renamed (copy_atomic's disk write doubled the copy's time)
        copies = [Path(shutil.copyfile(c.path, rundir / c.path.name)) for c in checked]
        for copy in copies:
            _without_old_dgeo(copy, log)
        produced, text, used = run_astrodrizzle(copies, product_name.name, rundir, cores=cores,
                                                parameters=parameters, fast_paths=fast_paths, processes=processes)
        dropped, why = dropped_inputs(produced, copies, text)
        if dropped:
            raise DrizzleFailed(f"{produced.name}: AstroDrizzle silently dropped {', '.join(dropped)} of "
                                f"{len(copies)} input(s){f' ({why})' if why else ''}; product discarded",
                                path=work / dropped[0])
        recorded = add_provenance(produced, checked, contexts[-1] if contexts else None, choice)
        target = work / produced.name
        os.replace(recorded, target)  # same file system: the product appears whole or not at all
        fsync_dir(work)
    finally:
        shutil.rmtree(rundir, ignore_errors=True)
    return DrizzleProduct(target, suffix, tuple(c.path.name for c in checked), time.monotonic() - started, text,
                          choice, tuple(overridden), used)


def association_inputs(work: Path, members: list[DatasetName]) -> dict[str, list[Path]]:
    """The ``_flt`` and ``_flc`` sets to drizzle: every member's ``_flt`` (required), and the ``_flc``
    set when any member has one (then all must)."""
    flt = [work / m.file("flt") for m in members]
    missing = [p.name for p in flt if not p.is_file()]
    if missing:
        raise BadInput(f"drizzle input(s) missing from {work}: {', '.join(missing)}")
    sets = {"flt": flt}
    flc = [work / m.file("flc") for m in members]
    present = [p for p in flc if p.is_file()]
    if present and len(present) != len(flc):
        absent = [p.name for p in flc if not p.is_file()]
        raise BadInput(f"CTE-corrected inputs incomplete in {work}: {', '.join(absent)} missing "
                       f"while {', '.join(p.name for p in present)} exist(s)")
    if present:
        sets["flc"] = flc
    return sets


def imaging_members(work: Path, members: list[DatasetName]) -> tuple[list[DatasetName], list[str]]:
    """(members to drizzle, reasons others are skipped): spectroscopic or ``DRIZCORR`` not PERFORM."""
    keep, skipped = [], []
    for m in members:
        flt = work / m.file("flt")
        if not flt.is_file():
            keep.append(m)  # association_inputs reports it as missing
            continue
        try:
            h = fits.getheader(flt, 0)
        except (OSError, ValueError) as exc:
            raise BadInput(f"{flt.name}: unreadable FITS header ({exc})", path=flt) from None
        obstype = str(h.get("OBSTYPE", "IMAGING")).strip().upper()
        drizcorr = str(h.get("DRIZCORR", "PERFORM")).strip().upper()
        if obstype != "IMAGING":
            skipped.append(f"{flt.name}: OBSTYPE {obstype}")
        elif drizcorr not in ("PERFORM", "COMPLETE"):
            skipped.append(f"{flt.name}: DRIZCORR {drizcorr}")
        else:
            keep.append(m)
    return keep, skipped
