"""Raw-frame geometry of the WFC3/UVIS and ACS/WFC CCD chips and of their readouts.

A raw chip holds more than the sky: physical prescan columns read before the image, serial virtual
overscan (WFC3: 30 columns per amplifier at mid-chip) and parallel virtual rows at the chip-gap edge
(WFC3 19, ACS 20; the top of chip 2 = extension 1, the bottom of chip 1 = extension 4). Everything
else in the simulator (pixels, reference files, OSCNTAB rows, LTV keywords) is derived from the
per-column and per-row maps built here, so the data and the references cannot disagree.

Coordinates: ``det`` = trimmed full-chip science pixels (0-based, 4096 x 2051 or 4096 x 2048);
``raw`` = full-chip raw pixels (0-based, 4206 x 2070 or 4144 x 2068). ``LTV = raw - det`` for the
corner of a readout, as in the archive headers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

#: Column kinds in a raw row.
SCIENCE, PRESCAN, VIRTUAL = 0, -1, -2


@dataclass(frozen=True)
class Camera:
    """One CCD camera: two chips of ``nx`` x ``ny`` science pixels, four amplifiers."""

    instrument: str  # INSTRUME keyword
    detector: str  # DETECTOR keyword
    letter: str  # ipppssoot instrument letter, also the CDBS file-name suffix letter
    ny: int  # science rows per chip
    prescan: int  # physical serial prescan columns at each chip end
    serial_virtual: int  # virtual overscan columns per amplifier at mid-chip
    parallel_virtual: int  # virtual overscan rows per chip, at the chip-gap edge
    pixel_scale: float  # arcsec per pixel (distortion not modelled)
    chip_gap: float  # pixels between the chips in the focal plane
    orient_offset: float  # ORIENTAT - PA_V3, degrees (approximate)
    nx: int = 4096
    amp_width: int = 2048

    @property
    def raw_nx(self) -> int:
        return self.nx + 2 * self.prescan + 2 * self.serial_virtual

    @property
    def raw_ny(self) -> int:
        return self.ny + self.parallel_virtual

    @staticmethod
    def amps(chip: int) -> tuple[str, str]:
        """(left, right) amplifier of a chip: A,B read chip 1 and C,D chip 2."""
        return ("A", "B") if chip == 1 else ("C", "D")

    @staticmethod
    def extver(chip: int) -> int:
        """Image-set number of a chip in a full-frame file: chip 2 comes first (EXTVER 1)."""
        return 1 if chip == 2 else 2

    @staticmethod
    def chip_of_amp(amp: str) -> int:
        return 1 if amp in "AB" else 2

    def virtual_rows_on_top(self, chip: int) -> bool:
        """Parallel virtual rows are read after the image, at the edge away from the amplifiers."""
        return chip == 2

    def trim_rows(self, chip: int) -> tuple[int, int]:
        """(TRIMY1, TRIMY2) of a full-frame chip: virtual rows at the bottom or top."""
        return (0, self.parallel_virtual) if self.virtual_rows_on_top(chip) else (self.parallel_virtual, 0)

    @cached_property
    def raw_col_det(self) -> np.ndarray:
        """For each raw column: its science column, or PRESCAN / VIRTUAL."""
        half = np.arange(self.amp_width)
        cols = np.concatenate([
            np.full(self.prescan, PRESCAN), half, np.full(2 * self.serial_virtual, VIRTUAL),
            half + self.amp_width, np.full(self.prescan, PRESCAN)])
        cols.setflags(write=False)
        return cols

    @cached_property
    def raw_col_right(self) -> np.ndarray:
        """For each raw column: True if the right amplifier (B or D) reads it."""
        right = np.arange(self.raw_nx) >= self.prescan + self.amp_width + self.serial_virtual
        right.setflags(write=False)
        return right

    def raw_row_det(self, chip: int) -> np.ndarray:
        """For each raw row of a chip: its science row, or VIRTUAL."""
        rows = np.arange(self.ny)
        virt = np.full(self.parallel_virtual, VIRTUAL)
        return np.concatenate([rows, virt] if self.virtual_rows_on_top(chip) else [virt, rows])

    def det_to_raw_col(self, x: np.ndarray | int) -> np.ndarray:
        """Raw column of a science column (the right half sits behind the serial virtual overscan)."""
        x = np.asarray(x)
        return x + self.prescan + np.where(x >= self.amp_width, 2 * self.serial_virtual, 0)

    def det_to_raw_row(self, chip: int, y: np.ndarray | int) -> np.ndarray:
        return np.asarray(y) + (0 if self.virtual_rows_on_top(chip) else self.parallel_virtual)


WFC3_UVIS = Camera(instrument="WFC3", detector="UVIS", letter="i", ny=2051, prescan=25, serial_virtual=30,
                   parallel_virtual=19, pixel_scale=0.0396, chip_gap=31.0, orient_offset=44.73)
ACS_WFC = Camera(instrument="ACS", detector="WFC", letter="j", ny=2048, prescan=24, serial_virtual=0,
                 parallel_virtual=20, pixel_scale=0.05, chip_gap=50.0, orient_offset=-2.4)

#: Lower-case instrument name → camera.
CAMERAS: dict[str, Camera] = {"wfc3": WFC3_UVIS, "acs": ACS_WFC}


def camera_for(instrument: str) -> Camera:
    try:
        return CAMERAS[instrument.lower()]
    except KeyError:
        raise ValueError(f"unsupported instrument {instrument!r}: the simulator knows "
                         f"{', '.join(sorted(CAMERAS))}") from None


@dataclass(frozen=True, eq=False)
class ChipReadout:
    """The part of one chip a readout delivers, as index maps into the full raw chip."""

    camera: Camera
    chip: int
    raw_rows: np.ndarray = field(repr=False)  # full-chip raw row of each readout row
    raw_cols: np.ndarray = field(repr=False)  # full-chip raw column of each readout column

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.raw_rows), len(self.raw_cols)

    @cached_property
    def col_det(self) -> np.ndarray:
        return self.camera.raw_col_det[self.raw_cols]

    @cached_property
    def row_det(self) -> np.ndarray:
        return self.camera.raw_row_det(self.chip)[self.raw_rows]

    @cached_property
    def col_right(self) -> np.ndarray:
        return self.camera.raw_col_right[self.raw_cols]

    @cached_property
    def sci_cols(self) -> np.ndarray:
        """Readout column indices that hold science pixels, in science order."""
        return np.flatnonzero(self.col_det >= 0)

    @cached_property
    def sci_rows(self) -> np.ndarray:
        return np.flatnonzero(self.row_det >= 0)

    @cached_property
    def det_x(self) -> np.ndarray:
        """Science columns delivered (full-chip det coordinates)."""
        return self.col_det[self.sci_cols]

    @cached_property
    def det_y(self) -> np.ndarray:
        return self.row_det[self.sci_rows]

    @property
    def trimmed_shape(self) -> tuple[int, int]:
        return len(self.sci_rows), len(self.sci_cols)

    @property
    def ltv(self) -> tuple[float, float]:
        """(LTV1, LTV2): readout pixel minus full-chip science pixel at the first science pixel."""
        return float(self.sci_cols[0] - self.det_x[0]), float(self.sci_rows[0] - self.det_y[0])

    @property
    def is_full(self) -> bool:
        return self.shape == (self.camera.raw_ny, self.camera.raw_nx)

    @property
    def extver(self) -> int:
        return Camera.extver(self.chip) if self.is_full else 1

    def amp_of_col(self) -> np.ndarray:
        """Amplifier letter of each readout column."""
        left, right = Camera.amps(self.chip)
        return np.where(self.col_right, right, left)

    def embed(self, science: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Place a trimmed science array into a readout-shaped array (overscan gets ``fill``)."""
        out = np.full(self.shape, fill, dtype=science.dtype)
        out[np.ix_(self.sci_rows, self.sci_cols)] = science
        return out

    def trim(self, raw: np.ndarray) -> np.ndarray:
        """The science pixels of a readout-shaped array."""
        return raw[np.ix_(self.sci_rows, self.sci_cols)]

    @property
    def centera(self) -> tuple[int, int]:
        """CENTERA1/2: 1-based centre of the readout in full-chip raw pixels."""
        return int(self.raw_cols[0] + len(self.raw_cols) // 2 + 1), int(self.raw_rows[0] + len(self.raw_rows) // 2 + 1)

    @property
    def sizaxis(self) -> tuple[int, int]:
        """SIZAXIS1/2: science size for full frames (as archive raws have it), readout size otherwise."""
        if self.is_full:
            return self.camera.nx, self.camera.ny
        return len(self.raw_cols), len(self.raw_rows)


@dataclass(frozen=True, eq=False)
class Readout:
    """A readout mode: full frame (both chips, four amplifiers) or one corner subarray."""

    camera: Camera
    aperture: str  # APERTURE keyword
    ccdamp: str
    subarray: bool
    chips: tuple[ChipReadout, ...]  # in extension order

    @property
    def name(self) -> str:
        return "full" if not self.subarray else self.aperture


def full_frame(camera: Camera, aperture: str | None = None) -> Readout:
    """Both chips read through all four amplifiers; chip 2 first in the file."""
    chips = tuple(
        ChipReadout(camera, chip, np.arange(camera.raw_ny), np.arange(camera.raw_nx)) for chip in (2, 1))
    default = "UVIS" if camera.detector == "UVIS" else "WFC"
    return Readout(camera, aperture or default, "ABCD", False, chips)


def corner_subarray(camera: Camera, amp: str, aperture: str, size: int = 512, nrows: int | None = None) -> Readout:
    """A ``size`` (columns) x ``nrows`` (default ``size``) raw subarray in the corner of amplifier
    ``amp``, prescan included.

    The corner is where the amplifier reads out: left or right chip end, and the row edge next to
    the serial register (bottom of chip 2, top of chip 1); virtual overscan only when ``nrows``
    reaches past the chip's science rows.
    """
    chip = Camera.chip_of_amp(amp)
    left = amp == Camera.amps(chip)[0]
    cols = np.arange(size) if left else np.arange(camera.raw_nx - size, camera.raw_nx)
    bottom = camera.virtual_rows_on_top(chip)  # then the amplifiers are at the bottom
    ny = size if nrows is None else nrows
    rows = np.arange(ny) if bottom else np.arange(camera.raw_ny - ny, camera.raw_ny)
    return Readout(camera, aperture, amp, True, (ChipReadout(camera, chip, rows, cols),))


#: The readouts the simulator produces, per instrument and size.
SUBARRAY_APERTURES = {"wfc3": ("C", "UVIS2-C512C-SUB"), "acs": ("A", "WFC1A-512")}
#: ACS/WFC's supported one-amp subarrays (Cycle 24 on; any amp: WFC1A/WFC1B/WFC2C/WFC2D-...):
#: raw columns (24 prescan + science) and rows; only the 2K ones carry the 20 virtual rows.
WFC_SUBARRAY_SIZES = {"2K": (2072, 2068), "1K": (1048, 1024), "512": (536, 512)}


def wfc_subarray(aperture: str) -> Readout:
    """The readout of an ACS/WFC supported subarray aperture such as ``WFC1B-1K``."""
    chip_amp, _, kind = aperture.upper().partition("-")
    if kind not in WFC_SUBARRAY_SIZES or chip_amp not in ("WFC1A", "WFC1B", "WFC2C", "WFC2D"):
        raise ValueError(f"unknown ACS/WFC subarray {aperture!r}: expected WFC1A/WFC1B/WFC2C/WFC2D-"
                         f"{'/'.join(WFC_SUBARRAY_SIZES)}")
    ncols, nrows = WFC_SUBARRAY_SIZES[kind]
    return corner_subarray(ACS_WFC, chip_amp[-1], aperture.upper(), ncols, nrows)


def readout_for(instrument: str, size: str) -> Readout:
    """The readout used for ``size`` ('full', 'subarray' or, for ACS, a supported WFC subarray
    aperture such as 'WFC2C-1K') exposures of an instrument."""
    camera = camera_for(instrument)
    if size == "full":
        return full_frame(camera)
    if size == "subarray":
        amp, aperture = SUBARRAY_APERTURES[instrument.lower()]
        return corner_subarray(camera, amp, aperture)
    if camera is ACS_WFC and size.upper().startswith("WFC"):
        return wfc_subarray(size)
    raise ValueError(f"unknown size {size!r}: expected 'full', 'subarray' or (ACS) a WFC subarray aperture")
