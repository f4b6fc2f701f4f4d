"""The standing engine comparison: the built-in engine and hstcal on the same inputs, product by product.

A site that has ``calwf3.e``/``calacs.e`` proves the built-in engine on its own data before it
switches to it: both engines calibrate the same raw exposure or association (same reference files,
same environment) into separate directories, and every product extension is compared pixel by
pixel. SCI/ERR give the maximum relative difference ``|a-b| / max(|a|,|b|)`` and the count of
differing pixels; DQ gives the count of differing pixels and the OR of the bits that differ.

The headers are compared too (primary and each SCI/ERR/DQ): every keyword either product has, except
those that say when, how and by what the file was written (:data:`NOT_COMPARED`). hstio prints a
float keyword with 8 significant digits (``%#14.7E``) and a double with 13, so a number is compared
at the precision of hstcal's card; a keyword one product lacks, or a different string, always fails.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.core.asntable import read_asn_table
from pipeline.core.errors import BadInput
from pipeline.science.calib.api import LogSink, calibrate

#: Default tolerance on the maximum relative difference of SCI/ERR (DQ must agree bit for bit).
DEFAULT_TOLERANCE = 0.0
ENGINES = ("builtin", "hstcal")
#: Keywords about the file rather than the calibration: its layout (the pixels are compared as
#: arrays), when and by which software it was written (``CAL_ENG``/``CAL_VER`` name the engine;
#: ``OPUS_VER``/``CSYS_VER`` are owlpipe's stamp, absent from a product calwf3.e wrote on its own).
NOT_COMPARED = frozenset({"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "PCOUNT", "GCOUNT",
                          "EXTEND", "DATE", "ORIGIN", "IRAF-TLM", "PROCTIME", "CAL_ENG", "CAL_VER", "OPUS_VER",
                          "CSYS_VER", "CHECKSUM", "DATASUM", "HISTORY", "COMMENT", ""})
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[ED][+-]?\d+)?")


@dataclass(frozen=True)
class KeywordDiff:
    """One header keyword that differs: its values (None: absent) and relative difference (1 when
    not both numbers)."""

    keyword: str
    builtin: object
    hstcal: object
    rel: float = 1.0

    def line(self) -> str:
        return f"{self.keyword} {self.builtin!r} vs {self.hstcal!r}"


@dataclass(frozen=True)
class ExtensionDiff:
    """How one extension of one product differs between the engines."""

    product: str
    extension: str
    pixels: int
    differing: int
    max_rel: float = 0.0
    dq_bits: int = 0
    problem: str = ""  # a structural difference (missing extension, shape), which always fails
    keywords: tuple[KeywordDiff, ...] = ()

    def within(self, tolerance: float) -> bool:
        if self.problem or self.dq_bits or any(k.rel > tolerance for k in self.keywords):
            return False
        return self.max_rel <= tolerance

    def line(self) -> str:
        if self.problem:
            return f"{self.product} {self.extension}: {self.problem}"
        header = f"; keywords differ: {', '.join(k.line() for k in self.keywords)}" if self.keywords else ""
        if self.extension == "PRIMARY":
            return f"{self.product} PRIMARY header" + (header or ": keywords agree")
        what = f"dq bits {self.dq_bits:#06x}" if self.extension.startswith("DQ") else f"max rel {self.max_rel:.3g}"
        return f"{self.product} {self.extension:<6} {self.differing:>9} of {self.pixels} pixels differ, {what}{header}"


@dataclass
class Comparison:
    """The result for one input (a raw exposure or an association)."""

    input: str
    diffs: list[ExtensionDiff] = field(default_factory=list)

    def ok(self, tolerance: float) -> bool:
        return bool(self.diffs) and all(d.within(tolerance) for d in self.diffs)

    def as_dict(self, tolerance: float) -> dict[str, object]:
        return {"input": self.input, "ok": self.ok(tolerance), "extensions": [asdict(d) for d in self.diffs]}


def relative_difference(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    """(pixels that differ, max |a-b|/max(|a|,|b|)); NaN equals NaN, and a NaN against a number counts as 1."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    both_nan = np.isnan(a64) & np.isnan(b64)
    differ = (a64 != b64) & ~both_nan
    n = int(differ.sum())
    if n == 0:
        return 0, 0.0
    da, db = a64[differ], b64[differ]
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.abs(da - db) / np.maximum(np.abs(da), np.abs(db))
    rel = np.where(np.isfinite(rel), rel, 1.0)
    return n, float(rel.max())


def _extensions(hdul: fits.HDUList) -> dict[str, fits.ImageHDU]:
    out = {}
    for hdu in hdul[1:]:
        name = str(hdu.header.get("EXTNAME", "")).strip().upper()
        if name in ("SCI", "ERR", "DQ"):
            out[f"{name},{int(hdu.header.get('EXTVER', 1))}"] = hdu
    return out


def _pixels(hdu: fits.ImageHDU) -> np.ndarray | None:
    """The extension's pixels, a constant (NAXIS=0) extension expanded from NPIX1/NPIX2/PIXVALUE."""
    if hdu.data is not None:
        return np.asarray(hdu.data)
    h = hdu.header
    if "NPIX1" in h and "NPIX2" in h:
        return np.full((int(h["NPIX2"]), int(h["NPIX1"])), h.get("PIXVALUE", 0))
    return None


def _significant_digits(card: fits.Card) -> int | None:
    """How many significant digits the card's number is written with (None: not a number)."""
    text = card.image[10:].split("/", 1)[0].strip()
    if not _NUMBER.fullmatch(text):
        return None
    mantissa = re.split("[ED]", text.lstrip("+-"))[0].replace(".", "").lstrip("0")
    return max(len(mantissa), 1)


def _rounded(value: float, digits: int) -> float:
    return float(f"{value:.{digits - 1}e}") if math.isfinite(value) else value


def keyword_differences(builtin: fits.Header, hstcal: fits.Header) -> tuple[KeywordDiff, ...]:
    """Every compared keyword whose value differs (numbers at the precision of hstcal's card)."""
    out = []
    for key in sorted((set(builtin) | set(hstcal)) - NOT_COMPARED):
        a, b = builtin.get(key), hstcal.get(key)
        if key not in builtin or key not in hstcal:
            out.append(KeywordDiff(key, a if key in builtin else None, b if key in hstcal else None))
            continue
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
        if not numbers:
            if (a.strip() if isinstance(a, str) else a) != (b.strip() if isinstance(b, str) else b):
                out.append(KeywordDiff(key, a, b))
            continue
        digits = _significant_digits(hstcal.cards[key])
        x, y = float(a), float(b)  # type: ignore[arg-type]
        if digits is not None and isinstance(b, float):
            x, y = _rounded(x, digits), _rounded(y, digits)
        if x == y or (math.isnan(x) and math.isnan(y)):
            continue
        scale = max(abs(x), abs(y))
        rel = abs(x - y) / scale if math.isfinite(scale) and scale > 0 else 1.0
        out.append(KeywordDiff(key, a, b, rel if math.isfinite(rel) else 1.0))
    return tuple(out)


def compare_products(builtin: Path, hstcal: Path) -> list[ExtensionDiff]:
    """Compare two products of the same name: the primary header, then extension by extension (SCI,
    ERR, DQ of every imset: pixels and header)."""
    name = builtin.name
    with fits.open(builtin) as ha, fits.open(hstcal) as hb:
        ea, eb = _extensions(ha), _extensions(hb)
        diffs = [ExtensionDiff(name, "PRIMARY", 0, 0, keywords=keyword_differences(ha[0].header, hb[0].header))]
        for ext in sorted(set(ea) | set(eb), key=lambda e: (int(e.split(",")[1]), e)):
            if ext not in ea or ext not in eb:
                only = "hstcal" if ext in eb else "builtin"
                diffs.append(ExtensionDiff(name, ext, 0, 0, problem=f"only in the {only} product"))
                continue
            a, b = _pixels(ea[ext]), _pixels(eb[ext])
            if a is None or b is None or a.shape != b.shape:
                diffs.append(ExtensionDiff(name, ext, 0, 0, problem=f"shape builtin {None if a is None else a.shape}"
                                                                    f" vs hstcal {None if b is None else b.shape}"))
                continue
            keywords = keyword_differences(ea[ext].header, eb[ext].header)
            if ext.startswith("DQ"):
                xor = a.astype(np.uint16) ^ b.astype(np.uint16)
                diffs.append(ExtensionDiff(name, ext, a.size, int(np.count_nonzero(xor)),
                                           dq_bits=int(np.bitwise_or.reduce(xor, axis=None)), keywords=keywords))
            else:
                n, rel = relative_difference(a, b)
                diffs.append(ExtensionDiff(name, ext, a.size, n, max_rel=rel, keywords=keywords))
    return diffs


def compare_input(path: Path, workdir: Path, *, site: object | None = None,
                  environ: Mapping[str, str] | None = None, log: LogSink | None = None) -> Comparison:
    """Calibrate ``path`` with both engines under ``workdir/<engine>/`` and compare what they made."""
    env = dict(os.environ if environ is None else environ)
    made: dict[str, dict[str, Path]] = {}
    for engine in ENGINES:
        outdir = workdir / engine
        outdir.mkdir(parents=True, exist_ok=True)
        # each engine's log beside (not in) its directory: hstcal writes <root>.trl there itself
        made[engine] = {p.name: p for p in calibrate([path], outdir, engine=engine, site=site, environ=env,
                                                      trailer=workdir / f"{engine}.trl")
                        if p.suffix == ".fits"}
        if log:
            log("info", f"{path.name}: {engine} made {', '.join(sorted(made[engine])) or 'nothing'}")
    result = Comparison(path.name)
    for name in sorted(set(made["builtin"]) | set(made["hstcal"])):
        if name not in made["builtin"] or name not in made["hstcal"]:
            only = "hstcal" if name in made["hstcal"] else "builtin"
            result.diffs.append(ExtensionDiff(name, "-", 0, 0, problem=f"made by {only} only"))
            continue
        result.diffs.extend(compare_products(made["builtin"][name], made["hstcal"][name]))
    return result


def inputs_in(directory: Path) -> list[Path]:
    """The calibration inputs of a folder of raws: every association, and every raw in none."""
    if not directory.is_dir():
        raise BadInput(f"{directory} is not a directory", path=directory)
    asns = sorted(directory.glob("*_asn.fits"))
    members = {f"{m}_raw.fits" for a in asns for m in read_asn_table(a).members}
    raws = [p for p in sorted(directory.glob("*_raw.fits")) if p.name not in members]
    if not asns and not raws:
        raise BadInput(f"{directory}: no *_raw.fits or *_asn.fits to compare", path=directory)
    return [*asns, *raws]


def compare_all(inputs: Sequence[Path], workdir: Path, **kw: object) -> list[Comparison]:
    """:func:`compare_input` for each input, each in its own work directory."""
    return [compare_input(p, workdir / p.name.split("_")[0], **kw) for p in inputs]  # type: ignore[arg-type]
