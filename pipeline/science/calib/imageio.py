"""Reading raw exposures and reference images (memory-mapped) in the STScI multi-extension layout.

An exposure holds imsets of SCI/ERR/DQ extensions (EXTVER 1, 2, ...). Raw ERR and DQ are often
empty HDUs that stand for a constant array (``NPIX1``/``NPIX2``/``PIXVALUE``), as the archive
writes them; hstio expands them and so do we.

Pixel arrays are read memory-mapped and converted once: SCI to float32 (raw data are 16-bit with
``BZERO = 32768``), ERR to float32, DQ to uint16 (written back as 16-bit signed, like hstio).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.core.errors import BadInput, MissingReference

#: A FITS file opened for calibration is read memory-mapped and never scaled by astropy: we do the
#: BZERO conversion ourselves into the dtype we compute in.
OPEN_KW = {"memmap": True, "do_not_scale_image_data": True, "lazy_load_hdus": True}


def _scaled(hdu: fits.ImageHDU | fits.PrimaryHDU, dtype: type) -> np.ndarray:
    """The HDU's pixel values in ``dtype``, applying BSCALE/BZERO in one pass."""
    raw = hdu.data
    bzero = float(hdu.header.get("BZERO", 0.0))
    bscale = float(hdu.header.get("BSCALE", 1.0))
    if bscale == 1.0 and raw.dtype.kind in "iu" and bzero == 32768.0 and raw.dtype.itemsize == 2:
        out = np.empty(raw.shape, dtype=dtype)
        if np.dtype(dtype).kind == "u":
            np.bitwise_xor(raw.view(np.uint16), np.uint16(0x8000), out=out, casting="unsafe")
        else:
            np.add(raw, dtype(bzero), out=out, casting="unsafe")
        return out
    if bscale == 1.0 and bzero == 0.0:
        return np.asarray(raw, dtype=dtype).copy() if raw.dtype == np.dtype(dtype) else raw.astype(dtype)
    return (raw * bscale + bzero).astype(dtype)


def _mapped(hdu: fits.ImageHDU, dtype: type) -> np.ndarray | None:
    """A zero-copy view of an unscaled extension whose stored type already is ``dtype`` (byte order
    aside); None when a conversion is needed."""
    if hdu.header.get("NAXIS", 0) == 0 or hdu.data is None:
        return None
    if float(hdu.header.get("BZERO", 0.0)) != 0.0 or float(hdu.header.get("BSCALE", 1.0)) != 1.0:
        return None
    raw = hdu.data
    want = np.dtype(dtype)
    if raw.dtype.itemsize != want.itemsize or raw.dtype.kind not in ("f" if want.kind == "f" else "iu"):
        return None
    return raw.view(want.newbyteorder(raw.dtype.byteorder if raw.dtype.byteorder != "|" else "="))


def _constant_plane(hdu: fits.ImageHDU, shape: tuple[int, int]) -> tuple[tuple[int, int], object]:
    """An empty plane's (NPIX2, NPIX1) -- ``shape`` when absent or 0x0 -- and its PIXVALUE (default 0)."""
    npix = (int(hdu.header.get("NPIX2", shape[0])), int(hdu.header.get("NPIX1", shape[1])))
    return (npix if npix != (0, 0) else shape), hdu.header.get("PIXVALUE", 0)


def _constant_or_data(hdu: fits.ImageHDU, shape: tuple[int, int], dtype: type,
                      out: np.ndarray | None = None) -> np.ndarray:
    """An extension's array, expanding an empty HDU into ``PIXVALUE`` (default 0) of ``shape``.

    With ``out`` (a ``dtype`` array of ``shape``, e.g. one read of a stack), a constant of that shape
    is filled in place and ``out`` returned: no full-size temporary to allocate and copy.
    """
    if hdu.header.get("NAXIS", 0) == 0 or hdu.data is None:
        npix, value = _constant_plane(hdu, shape)
        if out is not None and npix == out.shape:
            out.fill(value)
            return out
        return np.full(npix, value, dtype=dtype)
    return _scaled(hdu, dtype)


@dataclass
class Imset:
    """One SCI/ERR/DQ triple, arrays in memory (float32, float32, uint16) and their headers."""

    extver: int
    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    sci_header: fits.Header
    err_header: fits.Header
    dq_header: fits.Header

    @property
    def chip(self) -> int:
        return int(self.sci_header.get("CCDCHIP", 1))

    @property
    def shape(self) -> tuple[int, int]:
        return self.sci.shape  # type: ignore[return-value]


@dataclass
class Exposure:
    """A raw (or intermediate) exposure: primary header and its imsets."""

    path: Path
    primary: fits.Header
    imsets: list[Imset] = field(default_factory=list)

    @property
    def rootname(self) -> str:
        return str(self.primary.get("ROOTNAME", self.path.name.split("_")[0])).strip().lower()


def _find(hdul: fits.HDUList, extname: str, extver: int) -> fits.ImageHDU | None:
    try:
        return hdul[(extname, extver)]
    except KeyError:
        return None


def n_imsets(primary: fits.Header, hdul: fits.HDUList) -> int:
    """Imsets calwf3 processes: NEXTEND // 3 with NEXTEND defaulting to 3 (one imset)."""
    return max(int(primary.get("NEXTEND", 3)) // 3, 1)


def read_primary(path: Path) -> fits.Header:
    """The primary header alone; an unreadable file is :class:`BadInput` naming it."""
    try:
        return fits.getheader(path, 0)
    except (OSError, ValueError) as exc:
        raise BadInput(f"cannot read FITS file: {exc}", path=path) from None


def open_input(path: Path) -> fits.HDUList:
    """A science file opened memory-mapped and unscaled; unreadable is :class:`BadInput`."""
    try:
        return fits.open(path, **OPEN_KW)
    except (OSError, ValueError) as exc:
        raise BadInput(f"cannot read FITS file: {exc}", path=path) from None


def _imset_arrays(sci_hdu: fits.ImageHDU, err_hdu: fits.ImageHDU | None,
                  dq_hdu: fits.ImageHDU | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An imset's SCI, ERR, DQ in float32, float32, uint16 (absent ERR/DQ: zeros)."""
    sci = _scaled(sci_hdu, np.float32)
    err = (_constant_or_data(err_hdu, sci.shape, np.float32) if err_hdu is not None
           else np.zeros(sci.shape, np.float32))
    dq = (_constant_or_data(dq_hdu, sci.shape, np.uint16) if dq_hdu is not None
          else np.zeros(sci.shape, np.uint16))
    return sci, err, dq


def read_exposure(path: Path, workers: int = 1) -> Exposure:
    """Read an exposure's imsets; a structural problem is :class:`BadInput` naming the file.

    The headers are read in order, then the imsets' pixels are converted, with ``workers`` > 1
    side by side (the calibration passes the chips' threads, :func:`~.perchip.threads`): numpy
    works without the GIL, and most of a read's time is the first touch of the new arrays (page
    faults), which two CPUs take in parallel. Every array is converted exactly as in one thread.
    """
    with open_input(path) as hdul:
        primary = hdul[0].header.copy()
        exp = Exposure(path=path, primary=primary)
        found = []
        for extver in range(1, n_imsets(primary, hdul) + 1):
            sci_hdu = _find(hdul, "SCI", extver)
            if sci_hdu is None or sci_hdu.data is None:
                raise BadInput(f"extension SCI,{extver} missing or empty (NEXTEND="
                               f"{primary.get('NEXTEND', 3)})", path=path, keyword="NEXTEND")
            err_hdu, dq_hdu = _find(hdul, "ERR", extver), _find(hdul, "DQ", extver)
            for hdu in (err_hdu, dq_hdu):   # astropy's lazy HDU loading stays in this thread
                if hdu is not None:
                    _ = hdu.data
            found.append((extver, sci_hdu, err_hdu, dq_hdu))
        workers = min(len(found), workers)
        if workers < 2:
            arrays = [_imset_arrays(*hdus) for _, *hdus in found]
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="owl-read") as pool:
                arrays = list(pool.map(lambda f: _imset_arrays(*f[1:]), found))
        for (extver, sci_hdu, err_hdu, dq_hdu), (sci, err, dq) in zip(found, arrays, strict=True):
            if err.shape != sci.shape or dq.shape != sci.shape:
                raise BadInput(f"imset {extver}: ERR {err.shape} or DQ {dq.shape} does not match SCI "
                               f"{sci.shape}", path=path)
            exp.imsets.append(Imset(
                extver, sci, err, dq, sci_hdu.header.copy(),
                err_hdu.header.copy() if err_hdu is not None else fits.Header([("EXTNAME", "ERR")]),
                dq_hdu.header.copy() if dq_hdu is not None else fits.Header([("EXTNAME", "DQ")]),
            ))
    return exp


# ------------------------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class Frame:
    """Where an array sits on the detector: ``GetCorner``/``FromLT`` (unbinned pixel units)."""

    bin: tuple[int, int]
    corner: tuple[int, int]
    ltv: tuple[float, float]
    ltm: tuple[float, float]


def _nint(x: float) -> int:
    return int(x + 0.5) if x >= 0 else int(x - 0.5)


def frame_of(header: fits.Header) -> Frame:
    ltm = (float(header.get("LTM1_1", 1.0)), float(header.get("LTM2_2", 1.0)))
    ltv = (float(header.get("LTV1", 0.0)), float(header.get("LTV2", 0.0)))
    dbin = (1.0 / ltm[0], 1.0 / ltm[1])
    corner = tuple(_nint((b - 1) - b * v) for b, v in zip(dbin, ltv, strict=True))
    return Frame(bin=(_nint(dbin[0]), _nint(dbin[1])), corner=corner, ltv=ltv, ltm=ltm)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Placement:
    """``FindLine``: how a science array maps into a reference array."""

    same_size: bool
    rx: int
    ry: int
    x0: int
    y0: int


def find_line(sci: fits.Header, sci_nx: int, ref: fits.Header, ref_nx: int) -> Placement:
    s, r = frame_of(sci), frame_of(ref)
    if s.corner == r.corner and s.bin == r.bin and sci_nx == ref_nx:
        return Placement(True, 1, 1, 0, 0)
    if r.bin[0] < s.bin[0] or r.bin[1] < s.bin[1]:
        return Placement(False, s.bin[0] // r.bin[0], s.bin[1] // r.bin[1], 0, 0)
    if r.bin[0] > s.bin[0] or r.bin[1] > s.bin[1]:
        return Placement(False, r.bin[0] // s.bin[0], r.bin[1] // s.bin[1],
                         int((s.corner[0] - r.corner[0]) / r.bin[0]), int((s.corner[1] - r.corner[1]) / r.bin[1]))
    rx, ry = s.bin[0] // r.bin[0], s.bin[1] // r.bin[1]
    return Placement(False, rx, ry, int((s.corner[0] - r.corner[0]) / r.bin[0]),
                     int((s.corner[1] - r.corner[1]) / r.bin[1]))


# --------------------------------------------------------------------------------------- references


#: The planes of a reference imset hstcal reads with ``getSingleGroup``/``getSingleGroupLine``.
IMSET_PLANES = ("SCI", "ERR", "DQ")
#: What hstio needs to expand an empty (NAXIS=0) extension into a constant array.
CONSTANT_KEYWORDS = ("NPIX1", "NPIX2", "PIXVALUE")


def _plane_shape(h: fits.Header) -> tuple[int, int] | str:
    """(ny, nx) of an image extension, or what is wrong with it in hstio's eyes."""
    naxis = int(h.get("NAXIS", 0))
    if naxis == 0:
        missing = [k for k in CONSTANT_KEYWORDS if k not in h]
        if missing:
            return f"is empty (NAXIS=0) without {', '.join(missing)}"
        return int(h["NPIX2"]), int(h["NPIX1"])
    if naxis != 2:
        return f"has NAXIS={naxis}, not 2"
    return int(h["NAXIS2"]), int(h["NAXIS1"])


@dataclass
class RefImset:
    """A reference image's imset for one chip, memory-mapped; ``sci``/``err``/``dq`` read on demand."""

    ref: RefImage
    extver: int
    header: fits.Header
    shape: tuple[int, int]

    @property
    def nx(self) -> int:
        return self.shape[1]

    @property
    def ny(self) -> int:
        return self.shape[0]

    def _array(self, extname: str, dtype: type) -> np.ndarray:
        """The extension's pixels (checked to exist when the imset was found), read-only. Unscaled
        float32/16-bit data come back as the memory map itself (big-endian, viewed as ``dtype``): the
        arithmetic reads it once, with no converted copy. An empty (NAXIS=0) plane is its PIXVALUE
        broadcast to the imset's shape: the arithmetic sees the same values without a full array."""
        assert self.ref.hdul is not None, "RefImage made without RefImage.open"
        hdu = _find(self.ref.hdul, extname, self.extver)
        if hdu is None:
            raise self.ref.error(f"{extname},{self.extver} missing")
        if hdu.header.get("NAXIS", 0) == 0:   # a constant plane: one value seen at every pixel, no array
            npix, value = _constant_plane(hdu, self.shape)
            return np.broadcast_to(np.array(value, dtype=dtype), npix)
        direct = _mapped(hdu, dtype)
        return direct if direct is not None else _constant_or_data(hdu, self.shape, dtype)

    def sci(self) -> np.ndarray:
        return self._array("SCI", np.float32)

    def err(self) -> np.ndarray:
        return self._array("ERR", np.float32)

    def dq(self) -> np.ndarray:
        return self._array("DQ", np.uint16)


@dataclass
class RefImage:
    """A reference image file named by a header keyword (BIASFILE, DARKFILE, ...).

    Read as strictly as hstio reads it: imsets are found by ``NEXTEND // 3`` (NEXTEND defaults to 3)
    and EXTVER, the chip by the SCI header's CCDCHIP (``DetCCDChip``); every plane hstcal reads must
    exist, and an empty one needs NPIX1, NPIX2 and PIXVALUE. Anything else is a
    :class:`MissingReference` (exit 21) naming the file and the extension.
    """

    keyword: str
    path: Path
    primary: fits.Header = field(default_factory=fits.Header)
    #: Image extension headers by (EXTNAME, EXTVER).
    extensions: dict[tuple[str, int], fits.Header] = field(default_factory=dict)

    #: The file, opened memory-mapped once with every header read: planes are taken from it without
    #: parsing the headers again.
    hdul: fits.HDUList | None = field(default=None, repr=False, compare=False)

    @classmethod
    def open(cls, keyword: str, path: Path) -> RefImage:
        try:
            hdul = fits.open(path, **OPEN_KW)
            try:
                hdul.readall()
                primary = hdul[0].header
                extensions = {}
                for hdu in hdul[1:]:
                    name = str(hdu.header.get("EXTNAME", "")).strip().upper()
                    if name in IMSET_PLANES:
                        extensions.setdefault((name, int(hdu.header.get("EXTVER", 1))), hdu.header)
            except BaseException:
                hdul.close()
                raise
        except (OSError, ValueError) as exc:
            raise MissingReference(f"{keyword} {path.name}: cannot read: {exc}", keyword=keyword,
                                   path=path) from None
        return cls(keyword, path, primary, extensions, hdul)

    def error(self, what: str) -> MissingReference:
        return MissingReference(f"{self.keyword} {self.path.name}: {what}", keyword=self.keyword, path=self.path)

    @property
    def pedigree_dummy(self) -> bool:
        return str(self.primary.get("PEDIGREE", "")).strip().upper().startswith("DUMMY")

    @property
    def n_imsets(self) -> int:
        """``NEXTEND / EXT_PER_GROUP`` as hstcal counts a reference file's imsets."""
        raw = self.primary.get("NEXTEND", 3)
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise self.error(f"NEXTEND = {raw!r} is not an integer")
        return raw // 3

    def imset(self, extver: int, planes: tuple[str, ...] = IMSET_PLANES) -> RefImset:
        """Imset ``extver`` with its ``planes`` checked the way hstio opens them."""
        shape: tuple[int, int] | None = None
        for plane in planes:
            header = self.extensions.get((plane, extver))
            if header is None:
                raise self.error(f"extension {plane},{extver} missing (a reference image is SCI/ERR/DQ "
                                 f"imsets; NEXTEND={self.primary.get('NEXTEND', 3)})")
            got = _plane_shape(header)
            if isinstance(got, str):
                raise self.error(f"{plane},{extver} {got}")
            if shape is not None and got != shape:
                raise self.error(f"{plane},{extver} is {got[1]}x{got[0]}, SCI,{extver} {shape[1]}x{shape[0]}")
            shape = shape or got
        assert shape is not None
        return RefImset(self, extver, self.extensions[("SCI", extver)], shape)

    def for_chip(self, chip: int, planes: tuple[str, ...] = IMSET_PLANES) -> RefImset:
        """``DetCCDChip``: the first of the NEXTEND/3 imsets whose SCI CCDCHIP (default 1) is ``chip``."""
        n_imsets = self.n_imsets
        for extver in range(1, n_imsets + 1):
            header = self.extensions.get(("SCI", extver))
            if header is None:
                raise self.error(f"extension SCI,{extver} missing (NEXTEND={self.primary.get('NEXTEND', 3)} "
                                 f"promises {n_imsets} imsets)")
            if int(header.get("CCDCHIP", 1)) == chip:
                return self.imset(extver, planes)
        raise self.error(f"no reference data for chip {chip} (no SCI CCDCHIP={chip} in the NEXTEND/3 = "
                         f"{n_imsets} imsets)")
