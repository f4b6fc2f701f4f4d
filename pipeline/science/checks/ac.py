"""After-calibration checks: did calibration finish, and do its products look like calibrated data?

Run on each product (``_flt``/``_flc``/``_crj``, ``_drz``/``_drc``, COS ``_x1d``/``_x1dsum``) before it
is archived: a product that left a step at PERFORM, lost an extension, carries NaNs or is mostly
flagged would otherwise reach the archive and the astronomer.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.core.errors import BadInput
from pipeline.science.checks.rules import Failure, Rule, run_rules

#: Calibrated science array per chip (columns, rows), unbinned, for full-frame data.
TRIMMED_FULL_FRAME: dict[tuple[str, str], tuple[int, int, int]] = {
    ("WFC3", "UVIS"): (4096, 2051, 2),
    ("ACS", "WFC"): (4096, 2048, 2),
    ("ACS", "HRC"): (1024, 1024, 1),
}
IMAGING_CCD = set(TRIMMED_FULL_FRAME)

#: Switches a product is not responsible for: they finish in another product (``_crj``, ``_drz``,
#: ``_flc``), so in this one they may legitimately still read PERFORM.
NOT_DONE_HERE: dict[str, frozenset[str]] = {
    "flt": frozenset({"CRCORR", "RPTCORR", "DRIZCORR", "PCTECORR"}),
    "flc": frozenset({"CRCORR", "RPTCORR", "DRIZCORR"}),
    "crj": frozenset({"DRIZCORR", "PCTECORR"}),
    "crc": frozenset({"DRIZCORR"}),
    "sfl": frozenset({"DRIZCORR"}),  # ACS/SBC REPEAT sum (ACSSUM)
    "ima": frozenset({"DRIZCORR"}),   # WFC3/IR intermediate: every read calibrated, not drizzled
    # a drizzled product's primary header is its first input's: a CR-SPLIT/REPEAT member keeps
    # CRCORR/RPTCORR at PERFORM (calwf3 and calacs finish them in the _crj only)
    "drz": frozenset({"PCTECORR", "CRCORR", "RPTCORR"}),
    "drc": frozenset({"CRCORR", "RPTCORR"}),
    "x1d": frozenset(),
    "x1dsum": frozenset(),
}
IMSET = ("SCI", "ERR", "DQ")
DRIZZLED = ("SCI", "WHT", "CTX")
#: Values calwf3 writes when a photometry table lookup fails (ccd-calibration.md §7.9).
PHOT_FAILED = -9999.0
#: calwf3's default when SDQFLAGS is absent: every DQ bit counts as serious (§6).
DEFAULT_SDQFLAGS = 65535


def _text(value: object) -> str:
    return str(value).strip() if value is not None else ""


@dataclass
class Product:
    """A calibrated file (headers eagerly, pixels on demand) and what calibration should have made."""

    path: Path
    suffix: str
    primary: fits.Header
    extensions: list[fits.Header]
    #: primary header of the raw it came from, when at hand (which switches were PERFORM)
    raw: fits.Header | None
    max_flagged_fraction: float
    #: imsets the raw had (chips); None = infer
    raw_imsets: int | None = None
    raw_shape: tuple[int, int] | None = None

    @classmethod
    def open(cls, path: Path, *, raw: Path | None = None, max_flagged_fraction: float = 0.25) -> Product:
        suffix = path.name.split("_", 1)[1].split(".", 1)[0] if "_" in path.name else ""
        try:
            with fits.open(path, memmap=True) as hdul:
                primary = hdul[0].header.copy()
                extensions = [h.header.copy() for h in hdul[1:]]
        except OSError as exc:
            raise BadInput(f"{path.name}: not a readable FITS file: {exc}", path=path) from None
        raw_primary = None
        imsets = shape = None
        if raw is not None and raw.is_file():
            with fits.open(raw, memmap=True, do_not_scale_image_data=True) as hdul:
                raw_primary = hdul[0].header.copy()
                sci = [h.header for h in hdul[1:] if _text(h.header.get("EXTNAME")).upper() == "SCI"]
                imsets = len(sci)
                if sci and sci[0].get("NAXIS") == 2:
                    shape = (int(sci[0]["NAXIS1"]), int(sci[0]["NAXIS2"]))
        return cls(path, suffix, primary, extensions, raw_primary, max_flagged_fraction, imsets, shape)

    @property
    def mode(self) -> tuple[str, str]:
        return (_text(self.primary.get("INSTRUME")).upper(), _text(self.primary.get("DETECTOR")).upper())

    def switch(self, name: str) -> str:
        return _text(self.primary.get(name, "OMIT")).upper()

    def named(self, extname: str) -> list[tuple[int, fits.Header]]:
        """(HDU index, header) of every extension with this EXTNAME."""
        return [(i, h) for i, h in enumerate(self.extensions, start=1)
                if _text(h.get("EXTNAME")).upper() == extname]

    @property
    def is_imaging_ccd(self) -> bool:
        return self.mode in IMAGING_CCD and self.suffix in ("flt", "flc", "crj", "crc")

    @property
    def is_drizzled(self) -> bool:
        return self.suffix in ("drz", "drc")

    def data(self, index: int) -> np.ndarray:
        """One extension's pixels, memory-mapped (copy-on-write: the file never changes): each check reads
        them once and no copy is made (a copy of a full-frame array cost more than the check itself)."""
        with fits.open(self.path, memmap=True) as hdul:
            return hdul[index].data  # the map outlives the file handle while the array is referenced


def check_switches(p: Product) -> Iterator[tuple[str, str]]:
    skip = NOT_DONE_HERE.get(p.suffix, frozenset())
    for key, value in p.primary.items():
        if not key.endswith("CORR") or key in skip:
            continue
        state = _text(value).upper()
        was = _text(p.raw.get(key)).upper() if p.raw is not None else ""
        if state == "PERFORM":
            yield key, "still PERFORM: the step did not run"
        elif was == "PERFORM" and state != "COMPLETE":
            yield key, f"was PERFORM in the raw, now {state or 'blank'} instead of COMPLETE"


def _expected_geometry(p: Product) -> tuple[int, tuple[int, int]] | None:
    """(imsets, (columns, rows)) for full-frame data; None when only bounds are known (subarrays)."""
    full = TRIMMED_FULL_FRAME.get(p.mode)
    if full is None or p.primary.get("SUBARRAY") is not False:
        return None
    bx, by = int(p.primary.get("BINAXIS1", 1)), int(p.primary.get("BINAXIS2", 1))
    return full[2], (full[0] // bx, full[1] // by)


def check_extensions(p: Product) -> Iterator[tuple[str, str]]:
    nextend = p.primary.get("NEXTEND")
    if isinstance(nextend, int) and nextend != len(p.extensions):
        yield "NEXTEND", f"says {nextend} but the file has {len(p.extensions)} extension(s)"
    if p.is_drizzled:
        for name in DRIZZLED:
            if not p.named(name):
                yield name, "extension missing from the drizzled product"
        return
    if not p.is_imaging_ccd:
        if not p.extensions:
            yield "-", "no extensions: the product holds no data"
        return
    geometry = _expected_geometry(p)
    # chips: as many as the raw had, else as a full frame has, else as many as there are SCI arrays
    want = p.raw_imsets or (geometry[0] if geometry else len(p.named("SCI")))
    for name in IMSET:
        have = sorted(int(h.get("EXTVER", 1)) for _, h in p.named(name))
        if have != list(range(1, want + 1)):
            yield name, f"EXTVERs {have or 'none'}, expected 1..{want} (one {name} per chip)"


def check_shapes(p: Product) -> Iterator[tuple[str, str]]:
    if p.is_drizzled:
        shapes = {n: {(h.get("NAXIS1"), h.get("NAXIS2")) for _, h in p.named(n)} for n in ("SCI", "WHT")}
        if shapes["SCI"] and shapes["WHT"] and shapes["SCI"] != shapes["WHT"]:
            yield "WHT", f"shape {shapes['WHT']} differs from SCI {shapes['SCI']}"
        return
    if not p.is_imaging_ccd:
        return
    geometry = _expected_geometry(p)
    full = TRIMMED_FULL_FRAME[p.mode]
    for _, sci in p.named("SCI"):
        ver = sci.get("EXTVER", 1)
        shape = (sci.get("NAXIS1"), sci.get("NAXIS2")) if sci.get("NAXIS") == 2 else None
        if shape is None:
            yield f"SCI,{ver}", "has no 2-D pixel data"
            continue
        if sci.get("BITPIX") != -32:
            yield f"SCI,{ver}", f"BITPIX={sci.get('BITPIX')}, expected -32 (float32)"
        if geometry and shape != geometry[1]:
            want = geometry[1]
            yield f"SCI,{ver}", f"{shape[0]}x{shape[1]}, expected {want[0]}x{want[1]} (trimmed full frame)"
        elif not geometry and (shape[0] > full[0] or shape[1] > full[1]):
            yield f"SCI,{ver}", f"{shape[0]}x{shape[1]} is larger than a trimmed chip ({full[0]}x{full[1]})"
        elif p.raw_shape and (shape[0] > p.raw_shape[0] or shape[1] > p.raw_shape[1]):
            yield f"SCI,{ver}", f"{shape[0]}x{shape[1]} is larger than the raw {p.raw_shape[0]}x{p.raw_shape[1]}"
        for name, bitpix in (("ERR", (-32,)), ("DQ", (16,))):
            for _, h in p.named(name):
                if h.get("EXTVER", 1) != ver:
                    continue
                other = (h.get("NAXIS1"), h.get("NAXIS2")) if h.get("NAXIS") == 2 else None
                if other != shape:
                    yield f"{name},{ver}", f"shape {other} differs from SCI {shape}"
                if h.get("BITPIX") not in bitpix:
                    yield f"{name},{ver}", f"BITPIX={h.get('BITPIX')}, expected {bitpix[0]}"


def _expected_bunit(p: Product) -> str | None:
    instrument, _detector = p.mode
    if instrument == "WFC3":
        return "ELECTRONS" if p.switch("FLATCORR") == "COMPLETE" else "COUNTS"
    if instrument == "ACS":  # ACSCCD converts to electrons as soon as it runs
        ran = any(p.switch(s) == "COMPLETE" for s in ("DQICORR", "BIASCORR", "BLEVCORR"))
        return "ELECTRONS" if ran else "COUNTS"
    return None


def check_bunit(p: Product) -> Iterator[tuple[str, str]]:
    if p.is_drizzled:
        for _, h in p.named("SCI"):
            if not _text(h.get("BUNIT")):
                yield "SCI.BUNIT", "missing"
        return
    if not p.is_imaging_ccd:
        return
    want = _expected_bunit(p)
    for name in ("SCI", "ERR"):
        for _, h in p.named(name):
            have = _text(h.get("BUNIT")).upper()
            if want and have != want:
                yield f"{name},{h.get('EXTVER', 1)}.BUNIT", f"{have or 'missing'!r}, expected {want!r}"


def check_finite(p: Product) -> Iterator[tuple[str, str]]:
    if not p.is_imaging_ccd:
        return
    for name in ("SCI", "ERR"):
        for index, h in p.named(name):
            if h.get("NAXIS") != 2:
                continue
            data = p.data(index)
            bad = data.size - int(np.count_nonzero(np.isfinite(data)))
            if bad:
                yield f"{name},{h.get('EXTVER', 1)}", f"{bad} NaN/Inf pixel(s)"


def check_flagged_fraction(p: Product) -> Iterator[tuple[str, str]]:
    if not p.is_imaging_ccd:
        return
    for index, h in p.named("DQ"):
        if h.get("NAXIS") != 2:
            continue
        ver = h.get("EXTVER", 1)
        sci = dict(p.named("SCI"))
        sdq = next((s.get("SDQFLAGS") for s in sci.values() if s.get("EXTVER", 1) == ver), None)
        sdq = int(sdq if isinstance(sdq, int) else p.primary.get("SDQFLAGS", DEFAULT_SDQFLAGS))
        dq = p.data(index)
        if dq.dtype.kind not in "iu" or not np.iinfo(dq.dtype).min <= sdq <= np.iinfo(dq.dtype).max:
            dq = dq.astype(np.int64)  # a mask wider than the stored integers (or scaled data): widen once
        fraction = np.count_nonzero(dq & sdq) / dq.size if dq.size else 0.0
        if fraction > p.max_flagged_fraction:
            yield f"DQ,{ver}", (f"{fraction:.1%} of pixels carry a serious flag (SDQFLAGS={sdq}), "
                                f"above the ceiling checks.max_flagged_fraction={p.max_flagged_fraction:.1%}")


def _number(header: fits.Header, key: str) -> float | None:
    value = header.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _check_phot(header: fits.Header, where: str, keys: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    positive = ("PHOTFLAM", "PHOTPLAM", "PHTFLAM1", "PHTFLAM2", "PHOTFNU")
    for key in keys:
        value = _number(header, key)
        if value is None:
            yield f"{where}{key}", "missing or not a number"
        elif not math.isfinite(value) or value == PHOT_FAILED:
            yield f"{where}{key}", f"{value}: the photometry table lookup failed"
        elif key in positive and value <= 0:
            yield f"{where}{key}", f"{value} is not positive"


def check_photometry(p: Product) -> Iterator[tuple[str, str]]:
    if not p.is_imaging_ccd or p.switch("PHOTCORR") != "COMPLETE":
        return
    uvis = p.mode == ("WFC3", "UVIS")
    for _, sci in p.named("SCI"):
        where = f"SCI,{sci.get('EXTVER', 1)}."
        if not _text(sci.get("PHOTMODE")):
            yield f"{where}PHOTMODE", "missing or blank"
        keys = ["PHOTFLAM", "PHOTZPT", "PHOTPLAM", "PHOTBW"]
        if uvis:
            keys += ["PHTFLAM2", "PHOTFNU"] + (["PHTFLAM1"] if sci.get("CCDCHIP") == 1 else [])
        yield from _check_phot(sci, where, tuple(keys))
    if uvis:
        yield from _check_phot(p.primary, "", ("PHOTFLAM", "PHOTZPT", "PHTFLAM1", "PHTFLAM2"))
        if p.switch("FLUXCORR") == "COMPLETE" and _number(p.primary, "PHTRATIO") is None:
            yield "PHTRATIO", "FLUXCORR is COMPLETE but PHTRATIO is missing"


def check_processing_record(p: Product) -> Iterator[tuple[str, str]]:
    if p.is_drizzled:  # drizzled headers are written by AstroDrizzle from its inputs; checked there
        return
    for key in ("CAL_VER", "CRDS_CTX"):
        if not _text(p.primary.get(key)):
            yield key, "missing or blank: the header must record the software and the CRDS context used"


RULES: tuple[Rule[Product], ...] = (
    Rule("switches-complete", "every switch the product is responsible for went PERFORM -> COMPLETE",
         check_switches),
    Rule("extensions", "the expected extensions are present (SCI/ERR/DQ per chip; SCI/WHT/CTX drizzled)",
         check_extensions),
    Rule("shapes", "arrays have the trimmed detector shape, agree with each other and are float32/int16",
         check_shapes),
    Rule("bunit", "SCI and ERR are in the units calibration leaves them in", check_bunit),
    Rule("finite", "no NaN or Inf in SCI or ERR", check_finite),
    Rule("flagged-fraction", "the fraction of seriously flagged pixels is below the site ceiling",
         check_flagged_fraction),
    Rule("photometry", "PHOTCORR wrote usable PHOTMODE/PHOTFLAM/PHOTZPT/PHOTPLAM/PHOTBW (and UVIS extras)",
         check_photometry),
    Rule("processing-record", "CAL_VER and CRDS_CTX record how the product was made", check_processing_record),
)


def check_product(path: Path, *, raw: Path | None = None, max_flagged_fraction: float = 0.25) -> list[Failure]:
    """All after-calibration failures of one product (empty when it passes)."""
    product = Product.open(path, raw=raw, max_flagged_fraction=max_flagged_fraction)
    return run_rules(RULES, product, path)
