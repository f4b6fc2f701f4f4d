"""Reference files of the simulated detectors, in the formats calwf3/calacs and CRDS expect.

Images (BIASFILE, DARKFILE, PFLTFILE, SATUFILE, SNKCFILE) have a primary header carrying the CRDS
selection keywords and one SCI[/ERR/DQ] image set per chip, chip chosen by CCDCHIP, LTV/LTM giving
the corner (raw format for bias/full-well/sink images, trimmed for dark/flat). Constant ERR/DQ
arrays are written as NAXIS=0 extensions with NPIX1/NPIX2/PIXVALUE, which hstio reads like arrays.
Tables (CCDTAB, OSCNTAB, BPIXTAB, CRREJTAB, IMPHTTAB) follow the column sets of the real files.
Every value comes from :class:`~pipeline.simulate.detector.Detector`, the model the data are drawn from.

File names follow CDBS: nine characters encoding the delivery time, the instrument letter last
(``i`` WFC3, ``j`` ACS), then ``_<suffix>.fits``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
from astropy.io import fits

from pipeline.simulate.ctefiles import acs_pctetab_hdus, observatory_model, pctetab_hdus
from pipeline.simulate.detector import Detector
from pipeline.simulate.geometry import (
    PRESCAN,
    WFC_SUBARRAY_SIZES,
    Camera,
    ChipReadout,
    Readout,
    readout_for,
    wfc_subarray,
)
from pipeline.simulate.photometry import ACS_WHEELS, FILTERS, MJD_GRID, PHOTZPT, photflam

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"

#: CRDS filekind -> (CDBS suffix, FILETYPE keyword)
REFTYPES: dict[str, tuple[str, str]] = {
    "ccdtab": ("ccd", "CCD PARAMETERS"),
    "oscntab": ("osc", "OVERSCAN"),
    "bpixtab": ("bpx", "BAD PIXELS"),
    "crrejtab": ("crr", "COSMIC RAY REJECTION"),
    "imphttab": ("imp", "IMAGE PHOTOMETRY TABLE"),
    "biasfile": ("bia", "BIAS"),
    "darkfile": ("drk", "DARK"),
    "pfltfile": ("pfl", "PIXEL-TO-PIXEL FLAT"),
    "satufile": ("sat", "FULL-WELL SATURATION LEVEL MAP"),
    "snkcfile": ("snk", "SINK PIXELS"),
    "pctetab": ("cte", "PIXCTE"),
    "biacfile": ("bic", "CTEBIAS"),
    "drkcfile": ("dkc", "CTEDARK"),
    "mdriztab": ("mdz", "MULTIDRIZZLE PARAMETERS"),  # one per detector: pipeline.simulate.mdriztab
}
#: Table reference types (their selection is by detector and date only).
TABLE_TYPES = ("ccdtab", "oscntab", "bpixtab", "crrejtab", "imphttab")
#: Pixel-based CTE references (calwf3's PCTECORR branch), per instrument that has them here.
CTE_TYPES = {"wfc3": ("pctetab", "biacfile", "drkcfile"), "acs": ("pctetab", "drkcfile")}
#: Reference types whose keywords are written N/A (the calibration needs the keyword, not a file).
NOT_APPLICABLE = ("dfltfile", "lfltfile")
#: CCDGAIN of gain-independent images: what the CRDS substitutions expand to every gain.
ANY_GAIN = {"wfc3": -1.0, "acs": -999.0}
#: First USEAFTER of every reference: Servicing Mission 4 (WFC3 installed, ACS/WFC repaired).
INITIAL_USEAFTER = datetime(2009, 5, 14)
#: Delivery clock for CDBS names: the n-th file of a cache is named after BASE + n minutes.
DELIVERY_BASE = datetime(2024, 5, 1, 9, 0, 0)


def cdbs_name(when: datetime, letter: str, suffix: str) -> str:
    """``<y><m><d><HH><MM><s><letter>_<suffix>.fits`` as CDBS names files (year 2015 = '0')."""
    stem = (_B36[(when.year - 2015) % 36] + _B36[when.month] + _B36[when.day]
            + f"{when.hour:02d}{when.minute:02d}" + _B36[when.second // 2])
    return f"{stem}{letter}_{suffix}.fits"


def useafter_text(when: datetime) -> str:
    """CDBS USEAFTER format: ``May 14 2009 00:00:00``."""
    return when.strftime("%b %d %Y %H:%M:%S")


@dataclass(frozen=True)
class RefSpec:
    """One reference file to make: its type, mode keywords and the readout it covers."""

    reftype: str
    instrument: str
    readout: Readout | None = None  # image types
    ccdgain: float | None = None
    filter: str | None = None
    ccdamp: str | None = None  # header CCDAMP (selection); default from the readout
    variant: int = 0  # delivery generation: later deliveries are better measured (smaller ERR)


# --------------------------------------------------------------------------------------- headers


def _primary(det: Detector, spec: RefSpec, name: str, useafter: datetime, descrip: str) -> fits.Header:
    cam = det.camera
    h = fits.Header()
    h["FILENAME"] = (name, "name of file")
    h["FILETYPE"] = (REFTYPES[spec.reftype][1], "type of data found in data file")
    h["TELESCOP"] = ("HST", "telescope used to acquire data")
    h["INSTRUME"] = (cam.instrument, "identifier for instrument used to acquire data")
    h["DETECTOR"] = (cam.detector, "detector in use")
    h["USEAFTER"] = (useafter_text(useafter), "use after this date")
    start = useafter.strftime("%d/%m/%Y")
    h["PEDIGREE"] = f"INFLIGHT {start} {start}"
    h["DESCRIP"] = f"{descrip} (owlpipe simulated detector, seed {det.seed})".ljust(67, "-")[:67]
    h["ORIGIN"] = ("owlpipe simulate", "FITS file originator")
    h["COMMENT"] = "Made by the owlpipe synthetic observatory from the same detector model as its data."
    return h


def _image_header(hdr: fits.Header, part: ChipReadout, extname: str, trimmed: bool, bunit: str) -> None:
    ltv1, ltv2 = (-float(part.det_x[0]), -float(part.det_y[0])) if trimmed else part.ltv
    hdr["EXTNAME"] = extname
    hdr["EXTVER"] = part.extver
    hdr["INHERIT"] = True
    hdr["CCDCHIP"] = (part.chip, "CCD chip (1 or 2)")
    hdr["BUNIT"] = bunit
    hdr["LTV1"] = (ltv1, "offset in X to subsection start")
    hdr["LTV2"] = (ltv2, "offset in Y to subsection start")
    hdr["LTM1_1"] = (1.0, "reciprocal of sampling rate in X")
    hdr["LTM2_2"] = (1.0, "reciprocal of sampling rate in Y")
    hdr["BINAXIS1"] = 1
    hdr["BINAXIS2"] = 1


def _array_hdu(data: np.ndarray, part: ChipReadout, extname: str, trimmed: bool, bunit: str) -> fits.ImageHDU:
    hdu = fits.ImageHDU(data)
    _image_header(hdu.header, part, extname, trimmed, bunit)
    return hdu


def _constant_hdu(value: float | int, shape: tuple[int, int], part: ChipReadout, extname: str,
                  trimmed: bool, bunit: str) -> fits.ImageHDU:
    hdu = fits.ImageHDU()
    _image_header(hdu.header, part, extname, trimmed, bunit)
    hdu.header["NPIX1"] = (shape[1], "length of constant array axis 1")
    hdu.header["NPIX2"] = (shape[0], "length of constant array axis 2")
    hdu.header["PIXVALUE"] = (value, "values of pixels in constant array")
    return hdu


def _image_file(primary: fits.Header, planes: Iterable[list[fits.ImageHDU]]) -> fits.HDUList:
    extensions = [hdu for group in planes for hdu in group]
    primary["NEXTEND"] = (len(extensions), "number of extensions")
    return fits.HDUList([fits.PrimaryHDU(header=primary), *extensions])


# --------------------------------------------------------------------------------------- images


def _selection(det: Detector, spec: RefSpec, h: fits.Header) -> None:
    """The CRDS selection keywords of an image reference."""
    ro = spec.readout
    assert ro is not None
    h["CCDAMP"] = (spec.ccdamp or ro.ccdamp, "CCD amplifier readout configuration")
    h["BINAXIS1"] = 1
    h["BINAXIS2"] = 1
    h["SUBARRAY"] = (ro.subarray, "data from a subarray (T) or full frame (F)")


def bias_image(det: Detector, spec: RefSpec, name: str, useafter: datetime) -> fits.HDUList:
    ro = spec.readout
    assert ro is not None and spec.ccdgain is not None
    what = "full-frame 4-amp" if not ro.subarray else f"{ro.aperture} subarray"
    h = _primary(det, spec, name, useafter, f"Superbias for {what} readouts, gain {spec.ccdgain}")
    _selection(det, spec, h)
    h["CCDGAIN"] = (spec.ccdgain, "commanded gain of CCD")
    if det.camera.instrument == "WFC3":
        h["APERTURE"] = ("FULLFRAME_4AMP" if not ro.subarray else ro.aperture, "aperture name")
        h["CHINJECT"] = ("NONE", "Charge Injection Mode")
    else:
        h["APERTURE"] = ("ANY_FULL" if not ro.subarray else ro.aperture, "aperture name")
    err = 0.05 / np.sqrt(1 + spec.variant)
    # a subarray's bias is still whole raw chips (as real ones are): the selection keywords above
    # name the subarray readout, the engines cut it out at the raw's LTV corner
    planes = [[_array_hdu(det.superbias(p, spec.ccdgain), p, "SCI", False, "COUNTS"),
               _constant_hdu(float(np.float32(err)), p.shape, p, "ERR", False, "COUNTS"),
               _constant_hdu(0, p.shape, p, "DQ", False, "UNITLESS")] for p in _full_chip(det).chips]
    return _image_file(h, planes)


def dark_image(det: Detector, spec: RefSpec, name: str, useafter: datetime) -> fits.HDUList:
    ro = spec.readout
    assert ro is not None
    h = _primary(det, spec, name, useafter,
                 "Superdark" if spec.variant == 0 else f"Reprocessed superdark (delivery {spec.variant + 1})")
    _selection(det, spec, h)
    h["CCDGAIN"] = (ANY_GAIN[det.instrument], "any gain: the dark is in e-/s")
    if det.camera.instrument == "WFC3":  # an IR-only selection keyword certify insists on
        h["SUBTYPE"] = ("FULLIMAG", "IR subarray type (not relevant for UVIS)")
    frames, frame_time = 100 * (1 + spec.variant), 900.0
    planes = []
    for p in ro.chips:
        rate = det.dark_rate(p)
        read_noise = max(a.read_noise for a in det.gain_mode(min(det.gain_modes)).amps.values())
        err = np.sqrt(rate * frame_time * frames + frames * read_noise ** 2) / (frame_time * frames)
        dq = np.where(det.hot_mask(p), 16, 0).astype(np.int16)
        planes.append([_array_hdu(rate, p, "SCI", True, "ELECTRONS/S"),
                       _array_hdu(err.astype(np.float32), p, "ERR", True, "ELECTRONS/S"),
                       _array_hdu(dq, p, "DQ", True, "UNITLESS")])
    return _image_file(h, planes)


def flat_image(det: Detector, spec: RefSpec, name: str, useafter: datetime) -> fits.HDUList:
    ro = spec.readout
    assert ro is not None and spec.filter is not None
    h = _primary(det, spec, name, useafter, f"Pixel-to-pixel flat {spec.filter}")
    _selection(det, spec, h)
    gain = min(det.gain_modes)  # WFC3 has one (1.5); ACS flats are gain-independent
    if det.camera.instrument == "WFC3":
        h["FILTER"] = (spec.filter, "element selected from filter wheel")
    else:
        f1, f2 = ACS_WHEELS[spec.filter]
        h["FILTER1"], h["FILTER2"] = f1, f2
        h["CCDGAIN"] = (ANY_GAIN[det.instrument], "any gain")
        h["OBSTYPE"] = "IMAGING"
        for key in ("FW1OFFST", "FW2OFFST", "FWSOFFST"):
            h[key] = 0
    err = 0.002 / np.sqrt(1 + spec.variant)
    planes = []
    for p in ro.chips:
        flat = det.pflat(p, spec.filter, gain)
        planes.append([_array_hdu(flat, p, "SCI", True, "UNITLESS"),
                       _constant_hdu(float(np.float32(err)), flat.shape, p, "ERR", True, "UNITLESS"),
                       _constant_hdu(0, flat.shape, p, "DQ", True, "UNITLESS")])
    return _image_file(h, planes)


def _full_chip(det: Detector) -> Readout:
    """The readout a full-chip-only type covers: both whole raw chips, whatever size the cache is
    for (calwf3 embeds a subarray in the full chip for sinks, calacs cuts the SATUFILE at its LTV corner)."""
    return readout_for(det.instrument, "full")


def _sci_only_imsets(arrays: Iterable[tuple[np.ndarray, ChipReadout]], bunit: str) -> list[list[fits.ImageHDU]]:
    """SCI/ERR/DQ imsets of a map with no error or quality information: ERR and DQ are the empty
    constant extensions hstio expands (``NPIX1``/``NPIX2``/``PIXVALUE`` = 0)."""
    return [[_array_hdu(data, p, "SCI", False, bunit),
             _constant_hdu(0.0, p.shape, p, "ERR", False, bunit),
             _constant_hdu(0, p.shape, p, "DQ", False, "UNITLESS")] for data, p in arrays]


def fullwell_image(det: Detector, spec: RefSpec, name: str, useafter: datetime) -> fits.HDUList:
    ro = _full_chip(det)
    h = _primary(det, spec, name, useafter, "Full-well saturation map in electrons")
    _selection(det, spec, h)
    h["SUBARRAY"] = (False, "full-chip map (a full-chip-only reference type)")
    gain = min(det.gain_modes)
    return _image_file(h, _sci_only_imsets(((det.saturation_threshold(p, gain), p) for p in ro.chips),
                                           "ELECTRONS"))


def sink_image(det: Detector, spec: RefSpec, name: str, useafter: datetime) -> fits.HDUList:
    ro = _full_chip(det)
    h = _primary(det, spec, name, useafter, "Sink pixels: turn-on MJD, downstream -1, trail thresholds")
    _selection(det, spec, h)
    h["SUBARRAY"] = (False, "full-chip map (a full-chip-only reference type)")
    return _image_file(h, _sci_only_imsets(((det.sink_image(p), p) for p in ro.chips), "UNITLESS"))


# --------------------------------------------------------------------------------------- tables


# --------------------------------------------------------------------------------------- CTE


def _cte_selection(h: fits.Header, spec: RefSpec) -> None:
    """CRDS rules select the UVIS CTE references by date only, the ACS DRKCFILE by CCDAMP/CCDGAIN
    too; the type specs want these keywords."""
    h["CCDAMP"] = (spec.ccdamp or "ANY", "CCD amplifier readout configuration")
    h["CCDGAIN"] = (ANY_GAIN[spec.instrument], "any gain")
    if spec.instrument == "acs":
        return
    h["APERTURE"] = ("ANY", "aperture name")
    h["BINAXIS1"] = 1
    h["BINAXIS2"] = 1


def cte_table(det: Detector, spec: RefSpec, name: str, useafter: datetime) -> fits.HDUList:
    """PCTETAB: the trap model the simulator reads its UVIS exposures out through (later
    deliveries carry the same model under a new CTE_VER). ACS/WFC: the calacs 10.5 parallel/serial
    table the simulator's WFC raws are read out through."""
    h = _primary(det, spec, name, useafter, "Pixel-based CTE model: trap levels and release profiles")
    if spec.instrument == "acs":
        hdul = acs_pctetab_hdus(h)
        hdul[0].header["CTE_VER"] = f"3.{spec.variant}"
        return hdul
    h["BINAXIS1"] = 1
    h["BINAXIS2"] = 1
    table = replace(observatory_model(), version=f"2.{spec.variant}")
    return pctetab_hdus(table, h)


def cte_bias_image(det: Detector, spec: RefSpec, name: str, useafter: datetime) -> fits.HDUList:
    """BIACFILE: full-chip raw-format bias structure (DN) the CTE branch removes before the
    per-amp overscan level: the superbias pattern and the row slope of the bias level. ERR and DQ
    are empty constant extensions (a non-zero ERR would stop calwf3 initialising the _flc ERR)."""
    ro = _full_chip(det)
    h = _primary(det, spec, name, useafter, "CTE superbias: bias structure above the overscan level")
    _cte_selection(h, spec)
    h["SUBARRAY"] = (False, "full-chip map")
    gain = min(det.gain_modes)
    zero = dict.fromkeys("ABCD", 0.0)
    planes = []
    for p in ro.chips:
        level = det.bias_level(p, gain, zero) - det.amp_columns(p, gain, "bias").astype(np.float32)[None, :]
        planes.append((level + det.bias_pattern(p, gain), p))
    return _image_file(h, _sci_only_imsets(planes, "COUNTS"))


def cte_dark_image(det: Detector, spec: RefSpec, name: str, useafter: datetime) -> fits.HDUList:
    """DRKCFILE: the dark of the _flc chain, full chip in the trimmed layout of DARKFILE."""
    hdul = dark_image(det, replace(spec, readout=_full_chip(det), ccdamp=spec.ccdamp or "ANY"), name, useafter)
    _cte_selection(hdul[0].header, spec)
    hdul[0].header["SUBARRAY"] = (False, "full-chip map")
    return hdul


def _table(primary: fits.Header, extname: str, columns: list[fits.Column], **extra: object) -> fits.HDUList:
    table = fits.BinTableHDU.from_columns(columns, name=extname)
    for key, value in extra.items():
        table.header[key] = value
    primary["NEXTEND"] = (1, "number of extensions")
    return fits.HDUList([fits.PrimaryHDU(header=primary), table])


def _amp_configs(chip: int) -> tuple[str, ...]:
    left, right = Camera.amps(chip)
    return ("ABCD", left, right)


def ccd_table(det: Detector, spec: RefSpec, name: str, useafter: datetime) -> fits.HDUList:
    """CCDTAB: one row per chip, amplifier configuration and gain (unbinned, CCDOFST 3)."""
    cam = det.camera
    h = _primary(det, spec, name, useafter, "CCD parameters: gain, read noise, bias, saturation")
    rows = []
    for chip in (1, 2):
        for ccdamp in _amp_configs(chip):
            for mode in det.gain_modes.values():
                amps = mode.amps
                left = ccdamp == Camera.amps(chip)[0]
                ampx = cam.amp_width if ccdamp == "ABCD" else (cam.nx if left else 0)
                row = {"CCDAMP": ccdamp, "CCDCHIP": chip, "CCDGAIN": mode.ccdgain, "BINAXIS1": 1, "BINAXIS2": 1,
                       **{f"CCDOFST{a}": 3 for a in "ABCD"},
                       **{f"CCDBIAS{a}": amps[a].bias for a in "ABCD"},
                       **{f"ATODGN{a}": amps[a].gain for a in "ABCD"},
                       **{f"READNSE{a}": amps[a].read_noise for a in "ABCD"},
                       "AMPX": ampx, "AMPY": 0}
                if cam.instrument == "WFC3":
                    row["SATURATE"] = det.full_well_mean[chip] / mode.mean_gain + min(a.bias for a in amps.values())
                else:
                    row["SATURATE"] = det.full_well_mean[chip]
                    row["ATODSAT"] = 65535
                    row["OVRHUFLS"], row["OVRHFLS"] = det.ACS_DARK_OVERHEAD
                rows.append(row)
    formats = {"CCDAMP": "4A", "CCDCHIP": "I", "BINAXIS1": "I", "BINAXIS2": "I", "AMPX": "I", "AMPY": "I",
               "ATODSAT": "J", **{f"CCDOFST{a}": "I" for a in "ABCD"}}
    columns = [fits.Column(name=k, format=formats.get(k, "E"), array=np.array([r[k] for r in rows]))
               for k in rows[0]]
    return _table(h, "CCDTAB", columns)


def overscan_table(det: Detector, spec: RefSpec, name: str, useafter: datetime) -> fits.HDUList:
    """OSCNTAB: trim widths, bias sections and virtual-overscan corners (1-based raw pixels) per chip and amps."""
    cam = det.camera
    h = _primary(det, spec, name, useafter, "Overscan regions of full-chip readouts")
    p, v, half = cam.prescan, cam.serial_virtual, cam.amp_width
    rows = []
    for chip in (1, 2):
        trimy1, trimy2 = cam.trim_rows(chip)
        vy = (cam.ny + 3, cam.raw_ny - 1) if trimy2 else (3, cam.parallel_virtual - 1)
        for ccdamp in _amp_configs(chip):
            row = {"CCDAMP": ccdamp, "CCDCHIP": chip, "BINX": 1, "BINY": 1, "NX": cam.raw_nx, "NY": cam.raw_ny,
                   "TRIMX1": p, "TRIMX2": p}
            if cam.instrument == "WFC3":
                row.update({"TRIMX3": v, "TRIMX4": v, "TRIMY1": trimy1, "TRIMY2": trimy2,
                            "BIASSECTA1": 6, "BIASSECTA2": p - 3,
                            "BIASSECTB1": cam.raw_nx - p + 4, "BIASSECTB2": cam.raw_nx - 5,
                            "BIASSECTC1": p + half + 6, "BIASSECTC2": p + half + v - 3,
                            "BIASSECTD1": p + half + v + 5, "BIASSECTD2": p + half + 2 * v - 4,
                            "VX1": p + 6, "VX2": p + half - 5, "VX3": p + half + 2 * v + 6, "VX4": cam.raw_nx - p - 5,
                            "VY1": vy[0], "VY2": vy[1], "VY3": vy[0], "VY4": vy[1]})
            else:
                row.update({"TRIMY1": trimy1, "TRIMY2": trimy2,
                            "VX1": p + 6, "VX2": cam.raw_nx - p - 5, "VY1": vy[0], "VY2": vy[1],
                            "BIASSECTA1": 3, "BIASSECTA2": p - 2,
                            "BIASSECTB1": cam.raw_nx - p + 3, "BIASSECTB2": cam.raw_nx - 2})
            rows.append(row)
    if cam.instrument == "ACS":
        rows.append(_acs_subarray_overscan_row(readout_for("acs", "subarray")))
        rows += [_acs_subarray_overscan_row(wfc_subarray(f"WFC{chip}{amp}-{kind}"))
                 for kind in WFC_SUBARRAY_SIZES for chip in (1, 2) for amp in Camera.amps(chip)]
    columns = [fits.Column(name=k, format="4A" if k == "CCDAMP" else "I", array=np.array([r[k] for r in rows]))
               for k in rows[0]]
    return _table(h, "OSCNTAB", columns)


def _acs_subarray_overscan_row(readout: Readout) -> dict[str, object]:
    """A row for the subarray itself (NX/NY = its size), after the full-chip rows.

    calacs 10 takes the first CCDAMP/CCDCHIP/binning match (the full-chip row) and derives the
    subarray trims from LTV; older calacs, and tables of that era, key subarrays by NX/NY. Keeping
    both rows serves either reading.
    """
    (part,) = readout.chips
    prescan = int(np.sum(part.col_det == PRESCAN))
    ny, nx = part.shape
    virtual = np.flatnonzero(part.row_det < 0)              # parallel virtual rows (2K subarrays), 0-based
    trimy = (0, 0) if virtual.size == 0 else ((virtual.size, 0) if virtual[0] == 0 else (0, virtual.size))
    left = part.col_det[0] == PRESCAN                        # amp A or C: the prescan leads
    trimx = (prescan, 0) if left else (0, prescan)
    vx, vy = (0, 0), (0, 0)
    if virtual.size:  # 1-based, as the full-chip rows: inside the virtual rows, clear of the prescan
        vx, vy = (trimx[0] + 6, nx - trimx[1] - 5), (int(virtual[0]) + 4, int(virtual[-1]) + 1)
    bias = (3, prescan - 2, 0, 0) if left else (0, 0, nx - prescan + 3, nx - 2)
    return {"CCDAMP": readout.ccdamp, "CCDCHIP": part.chip, "BINX": 1, "BINY": 1, "NX": nx, "NY": ny,
            "TRIMX1": trimx[0], "TRIMX2": trimx[1], "TRIMY1": trimy[0], "TRIMY2": trimy[1], "VX1": vx[0],
            "VX2": vx[1], "VY1": vy[0], "VY2": vy[1], "BIASSECTA1": bias[0], "BIASSECTA2": bias[1],
            "BIASSECTB1": bias[2], "BIASSECTB2": bias[3]}


def badpix_table(det: Detector, spec: RefSpec, name: str, useafter: datetime) -> fits.HDUList:
    """BPIXTAB: runs of bad pixels in 1-based trimmed coordinates, per chip."""
    cam = det.camera
    h = _primary(det, spec, name, useafter, "Bad detector pixels and columns")
    runs = [(chip, r) for chip in (1, 2) for r in det.bad_runs(chip)]
    columns = [
        fits.Column(name="CCDAMP", format="4A", array=np.array(["N/A"] * len(runs))),
        fits.Column(name="PIX1", format="I", array=np.array([r.x + 1 for _, r in runs])),
        fits.Column(name="PIX2", format="I", array=np.array([r.y + 1 for _, r in runs])),
        fits.Column(name="LENGTH", format="I", array=np.array([r.length for _, r in runs])),
        fits.Column(name="AXIS", format="I", array=np.array([r.axis for _, r in runs])),
        fits.Column(name="VALUE", format="I", array=np.array([r.value for _, r in runs])),
        fits.Column(name="CCDCHIP", format="I", array=np.array([c for c, _ in runs])),
        fits.Column(name="CCDGAIN", format="E", array=np.full(len(runs), -999.0)),
    ]
    return _table(h, "BPX", columns, SIZAXIS1=cam.nx, SIZAXIS2=cam.ny)


def crrej_table(det: Detector, spec: RefSpec, name: str, useafter: datetime) -> fits.HDUList:
    """CRREJTAB in the layout of the real WFC3/ACS tables (SCALENSE as text, one row per CRSPLIT and chip)."""
    h = _primary(det, spec, name, useafter, "Cosmic-ray rejection parameters")
    sigmas, scalense = ("6.5,5.5,4.5", "3.0") if det.camera.instrument == "WFC3" else ("5,4,3", "30.0")
    rows = [(n, chip) for n in range(2, 9) for chip in (1, 2)]
    columns = [
        fits.Column(name="CRSPLIT", format="I", array=np.array([n for n, _ in rows])),
        fits.Column(name="MEANEXP", format="E", unit="sec", array=np.full(len(rows), 3600.0)),
        fits.Column(name="SCALENSE", format="8A", array=np.array([scalense] * len(rows))),
        fits.Column(name="INITGUES", format="8A", array=np.array(["minimum"] * len(rows))),
        fits.Column(name="SKYSUB", format="4A", array=np.array(["mode"] * len(rows))),
        fits.Column(name="CRSIGMAS", format="20A", array=np.array([sigmas] * len(rows))),
        fits.Column(name="CRRADIUS", format="E", array=np.full(len(rows), 2.1)),
        fits.Column(name="CRTHRESH", format="E", array=np.full(len(rows), 0.5555)),
        fits.Column(name="BADINPDQ", format="I", array=np.full(len(rows), 39)),
        fits.Column(name="CRMASK", format="L", array=np.ones(len(rows), dtype=bool)),
        fits.Column(name="CCDCHIP", format="I", array=np.array([c for _, c in rows])),
    ]
    return _table(h, "CRR", columns)


def _phot_value(inst: str, ext: str, filter_name: str, chip: int, mjd: float) -> float:
    """One IMPHTTAB value. PHTFLAM1/PHTFLAM2 hold chip 1/chip 2 values on every row, so calwf3 finds
    the other chip's sensitivity whichever row it reads."""
    filt = FILTERS[inst][filter_name]
    if ext == "PHOTPLAM":
        return filt.photplam
    if ext == "PHOTBW":
        return filt.photbw
    return photflam(inst, filter_name, {"PHTFLAM1": 1, "PHTFLAM2": 2}.get(ext, chip), mjd)


def photometry_table(det: Detector, spec: RefSpec, name: str, useafter: datetime) -> fits.HDUList:
    """IMPHTTAB: PHOTFLAM/PHOTPLAM/PHOTBW (+ PHTFLAM1/PHTFLAM2 for WFC3) with MJD#-parameterised rows."""
    cam = det.camera
    inst = cam.instrument.lower()
    h = _primary(det, spec, name, useafter, "Image photometry table with time-dependent sensitivity")
    h["PARNUM"] = (1, "Number of parameterized variables")
    h["PHOTZPT"] = (PHOTZPT, "Photometric zero-point for STMAG system")
    h["DBTABLE"] = "IMPHTTAB"
    h["SYNSWVER"] = ("owlpipe", "Version of synthetic photometry software")
    h["GRAPHTAB"] = ("N/A", "HST Graph Table")
    h["COMPTAB"] = ("N/A", "HST Components Table")
    h["EXTRAP"] = (True, "extrapolation past the MJD grid allowed")
    if inst == "wfc3":
        modes = [(f"uvis{chip}", chip) for chip in (1, 2)]
        extensions = ("PHOTFLAM", "PHOTPLAM", "PHOTBW", "PHTFLAM1", "PHTFLAM2")
    else:
        modes = [("wfc1", 1)]
        extensions = ("PHOTFLAM", "PHOTPLAM", "PHOTBW")
    grid = np.array(MJD_GRID)
    h["NEXTEND"] = (len(extensions), "number of extensions")
    hdus: list = [fits.PrimaryHDU(header=h)]
    for ext in extensions:
        rows = []
        for fname in FILTERS[inst]:
            for det_mode, chip in modes:
                base = f"{inst},{det_mode},{fname.lower()}"
                rows.append((base, ext, _phot_value(inst, ext, fname, chip, 55000.0), np.zeros(1), 0, "", np.zeros(1)))
                rows.append((f"{base},mjd#", f"{ext}1", 0.0,
                             np.array([_phot_value(inst, ext, fname, chip, m) for m in grid]), len(grid), "MJD#", grid))
        hdus.append(photometry_extension(ext, rows, len(grid), str(h["PEDIGREE"])))
    return fits.HDUList(hdus)


def photometry_extension(ext: str, rows: list[tuple], nelem: int, pedigree: str) -> fits.BinTableHDU:  # type: ignore[type-arg]
    """One IMPHTTAB extension from rows ``(obsmode, datacol, value, values, nelem, parname, grid)``."""
    n, vla = len(rows), f"PD({nelem})"
    columns = [
        fits.Column(name="OBSMODE", format="40A", array=np.array([r[0] for r in rows])),
        fits.Column(name="DATACOL", format="12A", array=np.array([r[1] for r in rows])),
        fits.Column(name=ext, format="D", array=np.array([r[2] for r in rows])),
        fits.Column(name=f"{ext}1", format=vla, array=np.array([r[3] for r in rows], dtype=object)),
        fits.Column(name="PAR1NAMES", format="8A", array=np.array([r[5] for r in rows])),
        fits.Column(name="PAR1VALUES", format=vla, array=np.array([r[6] for r in rows], dtype=object)),
        fits.Column(name="NELEM1", format="I", array=np.array([r[4] for r in rows])),
        fits.Column(name="PEDIGREE", format="30A", array=np.array([pedigree] * n)),
        fits.Column(name="DESCRIP", format="110A", array=np.array(["owlpipe simulated sensitivity"] * n)),
    ]
    return fits.BinTableHDU.from_columns(columns, name=ext)


BUILDERS = {
    "ccdtab": ccd_table, "oscntab": overscan_table, "bpixtab": badpix_table, "crrejtab": crrej_table,
    "imphttab": photometry_table, "biasfile": bias_image, "darkfile": dark_image, "pfltfile": flat_image,
    "satufile": fullwell_image, "snkcfile": sink_image,
    "pctetab": cte_table, "biacfile": cte_bias_image, "drkcfile": cte_dark_image,
}


def make_reference(det: Detector, spec: RefSpec, name: str, useafter: datetime) -> fits.HDUList:
    return BUILDERS[spec.reftype](det, spec, name, useafter)


def initial_specs(det: Detector, size: str) -> list[RefSpec]:
    """The reference files a cache needs for data of ``size``: tables, a bias per readout and gain,
    and full-chip dark/flat/full-well/sink images."""
    inst = det.instrument
    cover = readout_for(inst, size)
    readouts = [readout_for(inst, "full"), readout_for(inst, "subarray")] if size == "full" else [cover]
    amp = "ANY" if size == "full" else cover.ccdamp
    specs = [RefSpec(t, inst) for t in TABLE_TYPES]
    specs += [RefSpec("biasfile", inst, ro, ccdgain=g) for ro in readouts for g in sorted(det.gain_modes)]
    # darks and flats are full-chip reference types: a subarray cache still holds whole chips (the
    # engines cut the subarray out at its LTV corner); only the selection (CCDAMP) follows the readout
    chips = readout_for(inst, "full")
    specs += [RefSpec("darkfile", inst, chips, ccdamp=amp)]
    specs += [RefSpec("pfltfile", inst, chips, filter=f, ccdamp=amp) for f in FILTERS[inst]]
    # the ACS SATUFILE type only allows explicit amplifiers or N/A (crds acs_sat.tpn)
    specs += [RefSpec("satufile", inst, cover, ccdamp="N/A" if amp == "ANY" else amp),
              RefSpec("snkcfile", inst, cover, ccdamp=amp)]
    specs += [RefSpec(t, inst, cover) for t in CTE_TYPES.get(inst, ())]  # full chip, whatever the size
    return specs
