"""One exposure: from the sky in electrons to a raw file in DN, and the truth it was made from.

Order of effects (each vectorised over the chip): scene (stars + sky, e-/s) x EXPTIME is the truth;
times the flat response (and bad-column loss) plus dark current, Poisson-sampled; cosmic rays; charge
lost to sinks; full-well saturation with bleeding along columns; for WFC3/UVIS raws with PCTECORR =
PERFORM, parallel transfer through the CTE trap model of the PCTETAB the simulator delivers
(:mod:`pipeline.simulate.ctefiles`; the truth stays untrailed), for ACS/WFC raws (full frame or subarray) the
parallel then serial transfer through the sets of the ACS PCTETAB it delivers; readout through the amplifiers
(divide by gain, add bias level, superbias pattern and read noise, round, clip to the 16-bit ADC).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from pipeline.science.calib.cte.pctetab import CteTable
from pipeline.simulate import headers as hdr
from pipeline.simulate.ctefiles import add_acs_trails, observatory_model, trail_charge
from pipeline.simulate.detector import Detector
from pipeline.simulate.geometry import ChipReadout
from pipeline.simulate.scene import StarField, cosmic_rays, scene_rate
from pipeline.simulate.spec import ExposureSpec
from pipeline.simulate.wfcreadout import applies, apply_ds_int

ADC_MAX = 65535


@dataclass
class ChipTruth:
    """Noiseless truth of one chip, on the trimmed science pixels of the readout."""

    ccdchip: int
    extver: int
    scene: np.ndarray  # e- from sky + stars over EXPTIME (before the flat; chip-2 values before FLUXCORR)
    wcs_header: fits.Header  # TAN WCS of the trimmed pixels (what a calibrated _flt should carry)
    det_origin: tuple[int, int]  # (x, y) of the first pixel in full-chip science coordinates
    hot: np.ndarray
    saturated: np.ndarray  # within the SATUFILE margin of full well, reached by a bleed, or at the ADC limit
    atod: np.ndarray  # at the ADC limit (65535 DN)
    cosmic: np.ndarray
    bad: np.ndarray  # BPIXTAB pixels (response the flat does not describe)
    sink: np.ndarray  # trapped sink pixels (turned on before EXPSTART)
    dark: np.ndarray  # e- of dark current included (dark rate x the time calibration scales by)

    MASKS = ("hot", "saturated", "atod", "cosmic", "bad", "sink")


@dataclass
class TruthProducts:
    chips: list[ChipTruth]
    stars: Table  # catalogue with per-chip pixel positions (0-based, trimmed) of this exposure

    def chip(self, ccdchip: int) -> ChipTruth:
        return next(c for c in self.chips if c.ccdchip == ccdchip)

    def to_hdulist(self, rootname: str) -> fits.HDUList:
        """``<root>_truth.fits``: SCENE and one uint8 extension per mask, per chip (EXTVER as in the raw)."""
        primary = fits.PrimaryHDU()
        primary.header["ROOTNAME"] = rootname
        primary.header["FILETYPE"] = "SIMULATION TRUTH"
        primary.header["BUNIT"] = "ELECTRONS"
        hdus: list = [primary]
        for c in self.chips:
            scene = fits.ImageHDU(c.scene, header=c.wcs_header.copy(), name="SCENE", ver=c.extver)
            scene.header["CCDCHIP"] = c.ccdchip
            scene.header["DETX0"], scene.header["DETY0"] = c.det_origin
            hdus.append(scene)
            hdus.append(fits.ImageHDU(c.dark.astype(np.float32), name="DARK", ver=c.extver))
            for name in ChipTruth.MASKS:
                hdus.append(fits.ImageHDU(getattr(c, name).astype(np.uint8), name=name.upper(), ver=c.extver))
        hdus.append(fits.BinTableHDU(self.stars, name="STARS"))
        return fits.HDUList(hdus)


@dataclass
class SimulatedExposure:
    rootname: str
    raw: fits.HDUList  # exactly what <rootname>_raw.fits holds
    truth: TruthProducts
    spec: ExposureSpec = field(repr=False)


def bleed(electrons: np.ndarray, full_well: np.ndarray) -> np.ndarray:
    """Spill charge above full well up and down the column, in place; return the saturated mask.

    Each run of over-full pixels keeps full well and shares its excess equally between the two
    directions, filling neighbours up to their own full well; charge reaching the chip edge is lost.
    The mask holds every pixel at full well and every pixel the spill reached (the partly filled
    ends of a bleed trail are as wrong as the saturated core).
    """
    saturated = electrons >= full_well
    for col in np.flatnonzero((electrons > full_well).any(axis=0)):
        q, cap, hit = electrons[:, col], full_well[:, col], saturated[:, col]
        over = np.flatnonzero(q > cap)
        for run in np.split(over, np.flatnonzero(np.diff(over) > 1) + 1):
            lo, hi = run[0], run[-1]
            excess = float(np.sum(q[lo:hi + 1] - np.minimum(q[lo:hi + 1], cap[lo:hi + 1])))
            q[lo:hi + 1] = np.minimum(q[lo:hi + 1], cap[lo:hi + 1])
            hit[lo:hi + 1] = True
            for start, step in ((hi + 1, 1), (lo - 1, -1)):
                share, j = excess / 2.0, start
                while share > 0 and 0 <= j < len(q):
                    take = min(max(cap[j] - q[j], 0.0), share)
                    q[j] += take
                    hit[j] = True
                    share -= take
                    j += step
    return saturated


def _simulate_chip(spec: ExposureSpec, part: ChipReadout, wcs: WCS, det: Detector, stars: StarField,
                   rng: np.random.Generator, offsets: dict[str, float],
                   cte: CteTable | None = None) -> tuple[np.ndarray, ChipTruth, np.ndarray]:
    ro = spec.readout
    shape = part.trimmed_shape
    rate, x, y = scene_rate(stars, wcs, shape, spec.instrument, spec.filter, part.chip, spec.expstart)
    scene = (rate * spec.exptime).astype(np.float32)
    bad = det.bad_mask(part)
    response = det.flat_response(part, spec.filter) * np.where(bad, np.float32(0.3), np.float32(1.0))
    if spec.instrument == "wfc3":
        dark_time = spec.exptime  # calwf3 scales the dark by EXPTIME only
    else:
        dark_time = det.acs_darktime(spec.darktime, False, hdr.acs_dark_overhead_applies(ro, spec.expstart))
    dark = det.dark_rate(part) * np.float32(dark_time)
    electrons = rng.poisson(scene * response + dark).astype(np.float32)
    crs = cosmic_rays(rng, shape, spec.exptime)
    electrons += crs.deposit
    sink_mask = np.zeros(shape, dtype=bool)
    col_det, row_det = det.camera.raw_col_det, det.camera.raw_row_det(part.chip)
    for s in det.sinks(part):
        if s.onset_mjd <= spec.expstart:
            r, c = row_det[s.row] - part.det_y[0], col_det[s.col] - part.det_x[0]
            electrons[r, c] -= min(electrons[r, c], s.depth)
            sink_mask[r, c] = True
    full_well = part.trim(det.full_well(part))
    saturated = bleed(electrons, full_well) | (electrons >= full_well - det.FULL_WELL_MARGIN)

    # readout: electrons -> DN through each amplifier, plus bias and read noise (float32 throughout)
    gain = det.amp_columns(part, spec.ccdgain, "gain").astype(np.float32)
    noise_dn = (det.amp_columns(part, spec.ccdgain, "read_noise") / gain).astype(np.float32)
    if cte is not None and spec.instrument == "acs":  # trimmed chip in e-, amp by amp as ACSCTE sees it
        electrons = add_acs_trails(electrons, part.chip, expstart=spec.expstart, ccdamp=ro.ccdamp)
    dn = part.embed(electrons, fill=0.0)
    if cte is not None and spec.instrument == "wfc3":
        dn = trail_charge(dn, part.raw_rows, det.camera.virtual_rows_on_top(part.chip), cte, expstart=spec.expstart)
    ds_int = applies(spec.instrument, spec.jwrotype, spec.ccdgain, not ro.subarray)
    signal = dn.copy() if ds_int else None
    dn /= gain[None, :]
    dn += det.bias_level(part, spec.ccdgain, offsets)
    dn += det.bias_pattern(part, spec.ccdgain)
    noise = rng.standard_normal(part.shape, dtype=np.float32)
    noise *= noise_dn[None, :]
    dn += noise
    if signal is not None:  # DS_INT at gain 2: cross-talk and bias shift, as calacs removes them
        amps = det.gain_mode(spec.ccdgain).amps
        apply_ds_int(dn, signal, gain, part.chip, {a: amps[a].bias + offsets[a] for a in "ABCD"})
    np.rint(dn, out=dn)
    atod = part.trim(dn >= ADC_MAX)
    raw = np.clip(dn, 0, ADC_MAX).astype(np.uint16)

    wcs_header = wcs.to_header()
    truth = ChipTruth(
        ccdchip=part.chip, extver=part.extver, scene=scene.astype(np.float32), wcs_header=wcs_header,
        det_origin=(int(part.det_x[0]), int(part.det_y[0])), hot=det.hot_mask(part),
        saturated=saturated | atod, atod=atod, cosmic=crs.mask, bad=bad, sink=sink_mask,
        dark=dark)
    return raw, truth, np.column_stack([x, y])


def simulate_exposure(spec: ExposureSpec, det: Detector, stars: StarField,
                      switches: dict[str, str]) -> SimulatedExposure:
    """Make the raw HDUList and the truth of one exposure."""
    rng = np.random.default_rng(np.random.SeedSequence(spec.seed))
    ro = spec.readout
    offsets = dict(zip("ABCD", rng.normal(0.0, 2.0, 4), strict=True))  # this exposure's bias levels, DN
    orientat = spec.pointing.orientat(ro.camera)
    aperture_sky = spec.pointing.aperture_sky(ro)
    primary = fits.PrimaryHDU(header=hdr.primary_header(spec, switches))
    hdus: list = [primary]
    truths = []
    stars_table = stars.table()
    cte = observatory_model() if hdr.cte_corrected(spec, switches) else None
    for part in ro.chips:
        wcs = spec.pointing.chip_wcs(ro, part)
        raw, truth, xy = _simulate_chip(spec, part, wcs, det, stars, rng, offsets, cte)
        sci_h = hdr.sci_header(spec, part, wcs, orientat, aperture_sky)
        sci = fits.ImageHDU(raw, header=sci_h)
        hdus.append(sci)
        for extname, bunit in (("ERR", "COUNTS"), ("DQ", "UNITLESS")):
            hdus.append(fits.ImageHDU(header=hdr.constant_header(sci.header, extname, raw.shape, bunit)))
        truths.append(truth)
        stars_table[f"X_CHIP{part.chip}"] = xy[:, 0]
        stars_table[f"Y_CHIP{part.chip}"] = xy[:, 1]
    return SimulatedExposure(spec.rootname, fits.HDUList(hdus), TruthProducts(truths, stars_table), spec)
