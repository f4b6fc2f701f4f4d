"""Preview pictures of products: JPEGs of images, PNG plots of spectra.

Images (``_raw``, ``_flt``/``_flc``, ``_crj``/``_crc``, ``_drz``/``_drc``) get a JPEG
``<root>_<suffix>.jpg`` and a thumbnail ``<root>_<suffix>_thumb.jpg`` no larger than 128 pixels.
The JPEG is full size up to ``PREVIEW_MAX`` pixels on its longer side; a bigger picture (a full
frame: 4096 x 4102 for WFC3/UVIS) shows every f-th pixel of every f-th row for the smallest whole f
that fits. Those pixels are read from the memory-mapped file and nothing else (a decimated read, no
resampling), which keeps PVW near a second per full-frame association; the stretch is computed from
the pixels shown, as it always was from a strided sample.
Pixels are shown with an asinh stretch between robust limits (sky minus a few noise sigmas, a high
percentile), so faint sky and bright stars both stay visible. Bad pixels (serious DQ flags, zero
drizzle weight, NaN) are masked and drawn black. A file with several chips is laid out as the chips
sit on the sky: their WCSs (TAN with SIP, :mod:`pipeline.science.tansip`; the NPOL/D2IM corrections of
under a pixel are not applied) place each chip relative to the first (no resampling), with the gap
between them left black; north is wherever the detector puts it, as in STScI's previews.

Spectra (``_x1d``, ``_x1dsum``, ``_sx1``) get one flux-versus-wavelength PNG per segment or order,
``<root>_<suffix>_<segment>.png``, with axes labelled in the table's own units.

Pillow and matplotlib are imported only when a picture is drawn.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.core.errors import BadInput
from pipeline.core.fsutil import atomic_write
from pipeline.core.names import BadName, split_file_name
from pipeline.science.countstretch import counts_stretch, is_sparse
from pipeline.science.tansip import TanSip

THUMB_SIZE = 128
#: DQ bits that make a pixel unfit to show when the header names none (WFC3/ACS SDQFLAGS default).
DEFAULT_SDQFLAGS = 31743
#: Robust limits: black at sky - LOW_SIGMAS * sigma, white at this percentile of good pixels.
LOW_SIGMAS = 2.0
HIGH_PERCENTILE = 99.8
#: asinh softening as a fraction of the displayed range: smaller shows fainter detail.
ASINH_SOFTENING = 0.02
#: Pixels sampled to estimate limits (a strided sample keeps large frames fast). The three order
#: statistics on a million values took ~28 ms per image, ~0.15 s of a full-frame association's
#: PVW node; a quarter of that moves the limits by about a hundredth of the sky's sigma (the
#: 99.8th percentile still rests on at least 500 pixels).
LIMIT_SAMPLE = 250_000
#: Longest side of the full-size preview; a larger picture is decimated by the smallest whole factor that fits.
PREVIEW_MAX = 1280
JPEG_QUALITY = 90

IMAGE_SUFFIXES = ("raw", "flt", "flc", "crj", "crc", "drz", "drc")
SPECTRUM_SUFFIXES = ("x1d", "x1dsum", "sx1")


@dataclass
class Chip:
    """One science array: where it sits on the canvas (full-resolution pixels, y up) and what is shown.

    ``data`` and ``bad`` hold every f-th pixel once :func:`read_decimated` has run (f = 1: all).
    """

    header: fits.Header
    shape: tuple[int, int]
    hdus: tuple[fits.ImageHDU, fits.ImageHDU | None, fits.ImageHDU | None]  # SCI, DQ, WHT
    mask_bits: int = DEFAULT_SDQFLAGS
    x0: int = 0
    y0: int = 0
    data: np.ndarray | None = None
    bad: np.ndarray | None = None


# -- image previews ------------------------------------------------------------------------------------
def _is_extension(hdu, name: str) -> bool:
    return str(hdu.header.get("EXTNAME", "")).strip().upper() == name


def _image_shape(hdu) -> tuple[int, int] | None:
    """(ny, nx) of a 2-D image HDU from its header (no data read), else None."""
    h = hdu.header
    if int(h.get("NAXIS", 0) or 0) != 2:
        return None
    shape = int(h.get("NAXIS2", 0) or 0), int(h.get("NAXIS1", 0) or 0)
    return shape if min(shape) > 0 else None


def _chips(hdul: fits.HDUList, path: Path) -> list[Chip]:
    """Science arrays with their DQ (masked by SDQFLAGS) and WHT (masked where <= 0) extensions."""
    by_ver: dict[tuple[str, int], fits.ImageHDU] = {}
    for hdu in hdul[1:]:
        name = str(hdu.header.get("EXTNAME", "")).strip().upper()
        by_ver[(name, int(hdu.header.get("EXTVER", 1)))] = hdu
    scis = [h for h in hdul[1:] if _is_extension(h, "SCI") and _image_shape(h) is not None]
    if not scis and _image_shape(hdul[0]) is not None:
        scis = [hdul[0]]
    if not scis:
        raise BadInput(f"{path.name}: no 2-D science image to preview", path=path)
    flags = int(hdul[0].header.get("SDQFLAGS", 0) or 0)
    chips = []
    for sci in scis:
        shape = _image_shape(sci)
        ver = int(sci.header.get("EXTVER", 1))
        dq, wht = (by_ver.get((kind, ver)) for kind in ("DQ", "WHT"))
        chips.append(Chip(sci.header, shape, (sci, *(h if h is not None and _image_shape(h) == shape else None
                                                       for h in (dq, wht))),
                          int(sci.header.get("SDQFLAGS", flags) or DEFAULT_SDQFLAGS)))
    return chips


def _stored(hdu, step: int) -> np.ndarray:
    """Every ``step``-th pixel of every ``step``-th row, scaled by BSCALE/BZERO, as float64.

    The file is opened memory-mapped and unscaled, so only the pages holding those rows are read;
    integer BLANK pixels become NaN.
    """
    raw = hdu.data[::step, ::step]
    values = np.asarray(raw, dtype=np.float64)
    scale, zero = float(hdu.header.get("BSCALE", 1.0)), float(hdu.header.get("BZERO", 0.0))
    if scale != 1.0 or zero != 0.0:
        values = values * scale + zero
    blank = hdu.header.get("BLANK")
    if blank is not None and raw.dtype.kind in "iu":
        values[raw == blank] = np.nan
    return values


def read_decimated(chip: Chip, step: int) -> None:
    """Fill ``chip.data`` and ``chip.bad`` with every ``step``-th pixel (see :func:`_stored`)."""
    sci, dq, wht = chip.hdus
    chip.data = _stored(sci, step).astype(np.float32)
    chip.bad = ~np.isfinite(chip.data)
    if dq is not None:
        chip.bad |= (_stored(dq, step).astype(np.int64) & chip.mask_bits) != 0
    if wht is not None:
        chip.bad |= ~(_stored(wht, step) > 0)


def layout(chips: list[Chip]) -> tuple[int, int]:
    """Place chips as on the sky (relative to the first chip's pixel grid); return the canvas (ny, nx).

    Without usable WCSs the chips are stacked bottom-up in file order (extension 1 is the lower
    chip for WFC3/UVIS and ACS/WFC).
    """
    placed = False
    if len(chips) > 1:
        ref = TanSip.from_header(chips[0].header)
        if ref is not None:
            origins = []
            for chip in chips:
                w = TanSip.from_header(chip.header)
                if w is None:
                    break
                ny, nx = chip.shape
                ra, dec = w.pix2world(np.array([(nx - 1) / 2]), np.array([(ny - 1) / 2]))
                cx, cy = ref.world2pix(ra, dec)
                origins.append((cx[0] - (nx - 1) / 2, cy[0] - (ny - 1) / 2))
            span = max(max(c.shape) for c in chips) * 4
            if len(origins) == len(chips) and all(math.isfinite(x) and math.isfinite(y) and abs(x) < span
                                                  and abs(y) < span for x, y in origins):
                for chip, (x, y) in zip(chips, origins, strict=True):
                    chip.x0, chip.y0 = round(x), round(y)
                placed = True
    if not placed:
        y = 0
        for chip in chips:
            chip.x0, chip.y0 = 0, y
            y += chip.shape[0]
    xmin, ymin = min(c.x0 for c in chips), min(c.y0 for c in chips)
    for c in chips:
        c.x0 -= xmin
        c.y0 -= ymin
    return (max(c.y0 + c.shape[0] for c in chips), max(c.x0 + c.shape[1] for c in chips))


def robust_limits(values: np.ndarray) -> tuple[float, float]:
    """(black, white): sky minus ``LOW_SIGMAS`` robust sigmas, and the ``HIGH_PERCENTILE`` point."""
    step = max(1, values.size // LIMIT_SAMPLE)
    sample = values[::step]
    sky = float(np.median(sample))
    sigma = 1.4826 * float(np.median(np.abs(sample - sky)))
    lo = sky - LOW_SIGMAS * sigma
    hi = float(np.percentile(sample, HIGH_PERCENTILE))
    if not hi > lo:
        lo, hi = float(sample.min()), float(sample.max())
    if not hi > lo:
        hi = lo + 1.0
    return lo, hi


def asinh_stretch(data: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map [lo, hi] to [0, 1] with an asinh curve (linear near black, logarithmic for the bright)."""
    soft = ASINH_SOFTENING
    scaled = np.clip((data - lo) / (hi - lo), 0.0, 1.0)
    return np.arcsinh(scaled / soft) / math.asinh(1.0 / soft)


def render_image(path: Path) -> np.ndarray:
    """The preview raster of an image product: uint8, row 0 at the top (north-ish up, y up).

    At most ``PREVIEW_MAX`` pixels on a side: see the module docstring for the decimated read.
    """
    try:
        with fits.open(path, memmap=True, do_not_scale_image_data=True) as hdul:  # scaled by _stored
            chips = _chips(hdul, path)
            full_ny, full_nx = layout(chips)
            step = -(-max(full_ny, full_nx) // PREVIEW_MAX)
            ny, nx = -(-full_ny // step), -(-full_nx // step)
            canvas = np.zeros((ny, nx), np.float32)
            good = np.zeros((ny, nx), bool)
            for c in chips:
                read_decimated(c, step)
                y0, x0 = c.y0 // step, c.x0 // step
                h, w = min(c.data.shape[0], ny - y0), min(c.data.shape[1], nx - x0)
                canvas[y0:y0 + h, x0:x0 + w] = c.data[:h, :w]
                good[y0:y0 + h, x0:x0 + w] = ~c.bad[:h, :w]
    except BadInput:
        raise
    except (OSError, ValueError, TypeError) as exc:
        raise BadInput(f"{path.name}: unreadable FITS image ({type(exc).__name__}: {exc})", path=path) from None
    values = canvas[good]
    if values.size == 0:
        raise BadInput(f"{path.name}: no finite, unflagged pixel in {len(chips)} science array(s): "
                       "nothing to preview", path=path)
    out = np.zeros((ny, nx), np.uint8)
    if is_sparse(values):  # photon counting (SBC): smoothed counts on a log scale
        out[good] = np.round(counts_stretch(canvas, good)[good] * 255).astype(np.uint8)
        return out[::-1]
    lo, hi = robust_limits(values)
    out[good] = np.round(asinh_stretch(values, lo, hi) * 255).astype(np.uint8)
    return out[::-1]


def _save_jpeg(image, path: Path) -> Path:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    with atomic_write(path) as fh:
        fh.write(buf.getvalue())
    return path


def image_preview(path: Path, out_dir: Path) -> list[Path]:
    """Write ``<root>_<suffix>.jpg`` and ``<root>_<suffix>_thumb.jpg``; return both paths."""
    from PIL import Image

    stem = _stem(path)
    raster = render_image(path)
    full = Image.fromarray(raster, mode="L")
    thumb = full.copy()
    thumb.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.LANCZOS)
    return [_save_jpeg(full, out_dir / f"{stem}.jpg"), _save_jpeg(thumb, out_dir / f"{stem}_thumb.jpg")]


# -- spectrum previews ------------------------------------------------------------------------------
def _unit_label(unit: str | None) -> str:
    """FITS unit strings as axis text: ``erg /s /cm**2 /angstrom`` → ``erg s⁻¹ cm⁻² Å⁻¹``."""
    if not unit:
        return "no unit given"
    import warnings

    from astropy import units as u

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", u.UnitsWarning)  # STScI writes 'erg /s /cm**2 /angstrom'
            text = u.Unit(unit).to_string("unicode")
    except ValueError:
        return unit
    return text.replace("Angstrom", "Å").replace("angstrom", "Å")


def _superscript(n: int) -> str:
    return str(n).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))


def _plottable(row, names: list[str]) -> np.ndarray:
    """Points worth plotting: weight > 0 (COS ``DQ_WGT``), and not the zero-flux, zero-error fill
    written where a segment has no data."""
    flux = np.asarray(row["FLUX"], float)
    ok = np.ones(flux.shape, bool)
    if "DQ_WGT" in names:
        ok &= np.asarray(row["DQ_WGT"], float) > 0
    if "ERROR" in names:
        ok &= ~((flux == 0) & (np.asarray(row["ERROR"], float) == 0))
    return ok


def _segment_name(row, index: int) -> str:
    names = row.array.names
    if "SEGMENT" in names:
        return str(row["SEGMENT"]).strip() or f"row{index + 1}"
    if "SPORDER" in names:
        return f"order{int(row['SPORDER'])}"
    return f"row{index + 1}"


@dataclass
class Segment:
    """One row of an ``x1d``-type table, ready to plot."""

    name: str
    wavelength: np.ndarray
    flux: np.ndarray
    good: np.ndarray
    wave_unit: str | None
    flux_unit: str | None


def read_segments(path: Path) -> tuple[fits.Header, list[Segment]]:
    """(primary header, segments) of a spectrum table; :class:`BadInput` if there is nothing to plot."""
    try:
        with fits.open(path) as hdul:
            primary = hdul[0].header.copy()
            table = next((h for h in hdul[1:] if isinstance(h, fits.BinTableHDU)), None)
            if table is None or table.data is None or len(table.data) == 0:
                raise BadInput(f"{path.name}: no spectrum table rows to plot", path=path)
            names = [n.upper() for n in table.columns.names]
            for needed in ("WAVELENGTH", "FLUX"):
                if needed not in names:
                    raise BadInput(f"{path.name}: spectrum table has no {needed} column", path=path, keyword=needed)
            units = table.columns["WAVELENGTH"].unit, table.columns["FLUX"].unit
            segments = []
            for i, row in enumerate(table.data):
                wave, flux = np.asarray(row["WAVELENGTH"], float), np.asarray(row["FLUX"], float)
                good = _plottable(row, names) & np.isfinite(wave) & np.isfinite(flux) & (wave > 0)
                segments.append(Segment(_segment_name(row, i), wave, flux, good, *units))
    except BadInput:
        raise
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise BadInput(f"{path.name}: unreadable spectrum ({type(exc).__name__}: {exc})", path=path) from None
    for seg in segments:
        if not seg.good.any():
            raise BadInput(f"{path.name}: segment {seg.name} has no good flux point to plot", path=path)
    return primary, segments


def plot_segment(seg: Segment, title: str):
    """A matplotlib Figure (Agg, no pyplot state) of flux against wavelength for one segment.

    The y range is clipped at the 0.5/99.5 percentiles so spikes (geocoronal lines, segment edges)
    do not flatten the continuum; the power of ten goes into the axis label, not a corner offset.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=100)
    ax = fig.add_subplot()
    good, flux, wave = seg.good, seg.flux, seg.wavelength
    lo, hi = np.percentile(flux[good], [0.5, 99.5])
    biggest = max(abs(lo), abs(hi))
    power = math.floor(math.log10(biggest)) if biggest > 0 else 0
    scale = 10.0 ** power
    ax.plot(wave, np.where(good, flux, np.nan) / scale, lw=0.6, color="black")  # gaps where flagged
    pad = 0.08 * ((hi - lo) or biggest or 1.0)
    ax.set_ylim((lo - pad) / scale, (hi + pad) / scale)
    ax.set_xlim(wave[good].min(), wave[good].max())
    ax.set_xlabel(f"Wavelength ({_unit_label(seg.wave_unit)})")
    factor = f"10{_superscript(power)} " if power else ""
    ax.set_ylabel(f"Flux ({factor}{_unit_label(seg.flux_unit)})")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def spectrum_preview(path: Path, out_dir: Path) -> list[Path]:
    """One flux-versus-wavelength PNG per segment/order of an ``x1d``-type table; return the paths."""
    stem = _stem(path)
    primary, segments = read_segments(path)
    setup = " ".join(str(primary.get(k, "")).strip() for k in ("TARGNAME", "INSTRUME", "DETECTOR", "OPT_ELEM")
                     if str(primary.get(k, "")).strip())
    if primary.get("CENWAVE"):
        setup += f"/{primary['CENWAVE']}"
    written = []
    for seg in segments:
        fig = plot_segment(seg, f"{stem}  {seg.name}  {setup}".strip())
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        target = out_dir / f"{stem}_{re.sub(r'[^a-z0-9]+', '', seg.name.lower()) or 'seg'}.png"
        with atomic_write(target) as fh:
            fh.write(buf.getvalue())
        written.append(target)
    return written


# -- dispatch -----------------------------------------------------------------------------------------
def _stem(path: Path) -> str:
    """``<root>_<suffix>`` of a product file name (``.fits`` or ``.fits.gz``)."""
    try:
        dataset, suffix, _ext = split_file_name(path)
    except BadName as exc:
        raise BadInput(f"{path.name}: not a product file name ({exc})", path=path) from None
    return f"{dataset.name}_{suffix}"


def previewer(path: Path) -> Callable[[Path, Path], list[Path]] | None:
    """The preview function for a product file, or None if its suffix gets no preview."""
    try:
        _dataset, suffix, _ext = split_file_name(path)
    except BadName:
        return None
    if suffix in IMAGE_SUFFIXES:
        return image_preview
    if suffix in SPECTRUM_SUFFIXES:
        return spectrum_preview
    return None


def make_previews(path: Path, out_dir: Path) -> list[Path]:
    """Previews of one product into ``out_dir``; raise :class:`BadInput` if it cannot be previewed."""
    make = previewer(path)
    if make is None:
        raise BadInput(f"{path.name}: no preview defined for this kind of file", path=path)
    out_dir.mkdir(parents=True, exist_ok=True)
    return make(path, out_dir)
