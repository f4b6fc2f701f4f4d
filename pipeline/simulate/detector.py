"""The simulated CCDs: amplifiers, bias, dark current, flat field, full well, sinks, bad columns.

One :class:`Detector` is the single source of truth for both sides of the observatory: the exposure
generator draws pixels from it, and the reference-file writer measures nothing, it writes the same
model out in STScI formats. Calibrating simulated data with the simulated references therefore
recovers the simulated sky exactly (up to noise), which is what the accuracy tests rely on.

How each effect enters the raw DN, and which calibration step removes it:

* **bias**: per amplifier a level (CCDTAB CCDBIAS plus a per-exposure offset) and a row gradient,
  present in science, prescan and virtual pixels alike, plus a fixed pixel/column pattern in the
  science pixels (the superbias). WFC3: BLEVCORR fits the level in the serial virtual overscan, then
  BIASCORR removes the pattern. ACS: BIASCORR first (the ACS bias image carries the nominal level),
  then BLEVCORR removes the per-exposure residual level and the row stripes common to all amplifiers.
* **dark** (e-/s): a faint floor plus hot pixels; scaled by EXPTIME (WFC3) or DARKTIME plus the
  CCDTAB overhead (ACS), as calwf3/calacs scale the DARKFILE.
* **flat**: the true response times, for WFC3, ``mean_gain / gain_amp``: calwf3 converts every amp
  with the mean CCDTAB gain at FLATCORR, so the per-amp gain ratio lives in the PFLTFILE.
* **full well** (e-): charge above it bleeds along the column; the SATUFILE holds it per pixel,
  less a small margin (and, for WFC3, with the same mean-gain factor as the flat).
* **sinks** (charge traps): a trapped pixel loses charge; the SNKCFILE holds the turn-on MJD.
* **bad columns**: a response the flat does not know about (a third of normal); listed in the
  BPIXTAB, so calibrated values there are flagged rather than right.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType

import numpy as np

from pipeline.simulate import randomfields as rf
from pipeline.simulate.geometry import Camera, ChipReadout, camera_for

#: Detector seed used unless told otherwise: the references in a site's CRDS cache and every
#: downlink simulated for that site must come from the same detector.
DETECTOR_SEED = 2009


@dataclass(frozen=True)
class Amp:
    """One amplifier at one gain setting (CCDTAB values; the simulator's truth is the same)."""

    gain: float  # e-/DN (ATODGN)
    read_noise: float  # e- (READNSE)
    bias: float  # DN (CCDBIAS): nominal bias level
    row_slope: float  # DN per raw row: stable bias-level gradient along the columns


@dataclass(frozen=True)
class GainMode:
    ccdgain: float
    amps: MappingProxyType  # letter -> Amp

    @property
    def mean_gain(self) -> float:
        """calwf3's ``mean_gain``: the mean of all four ATODGN values."""
        return float(np.mean([a.gain for a in self.amps.values()]))


def _gain_mode(ccdgain: float, **amps: tuple[float, float, float, float]) -> GainMode:
    return GainMode(ccdgain, MappingProxyType({k: Amp(*v) for k, v in amps.items()}))


# Gains and read noise: detectors.md (WFC3 measured 1.58/1.58/1.60/1.59; ACS post-SM4 approximate).
_GAIN_MODES = {
    "wfc3": (
        _gain_mode(1.5, A=(1.58, 3.03, 2550.0, 6.0e-4), B=(1.58, 3.13, 2540.0, 4.0e-4),
                   C=(1.60, 3.08, 2500.0, -5.0e-4), D=(1.59, 3.18, 2600.0, 7.0e-4)),
    ),
    "acs": (
        _gain_mode(2.0, A=(2.020, 4.35, 2137.0, 0.0), B=(1.886, 3.75, 2224.0, 0.0),
                   C=(2.017, 4.05, 2162.0, 0.0), D=(2.109, 5.05, 2255.0, 0.0)),
        _gain_mode(1.0, A=(1.002, 4.05, 4274.0, 0.0), B=(0.972, 3.60, 4448.0, 0.0),
                   C=(1.011, 3.85, 4324.0, 0.0), D=(1.018, 4.90, 4510.0, 0.0)),
    ),
}


@dataclass(frozen=True)
class DarkModel:
    floor: float  # e-/s
    hot_fraction: float
    hot_threshold: float  # e-/s: above this a pixel is HOTPIX in the DARKFILE DQ
    hot_max: float  # e-/s


@dataclass(frozen=True)
class Sink:
    """A charge trap in full-chip raw coordinates, with the trail the SNKCFILE describes."""

    row: int
    col: int
    onset_mjd: float
    depth: float  # e- lost when trapped
    trail: tuple[float, ...]  # DN thresholds of the upstream pixels, nearest first


@dataclass(frozen=True)
class BadRun:
    """A BPIXTAB row: LENGTH pixels from (x, y) (0-based science coordinates) along AXIS."""

    x: int
    y: int
    length: int
    axis: int  # 1 = along x, 2 = along y
    value: int = 4  # DETECTORPROB


class Detector:
    """The time-stable properties of one camera, generated from ``seed``."""

    #: e- per readout row: an ACS bias gradient common to all four amplifiers in electrons, as the
    #: destriping BLEVCORR (which works in electrons on rows read at the same time) assumes.
    ACS_STRIPE_SLOPE = 6.0e-4
    #: seconds added to DARKTIME by calacs (CCDTAB OVRHUFLS / OVRHFLS; approximate values).
    ACS_DARK_OVERHEAD = (3.0, 22.0)

    def __init__(self, instrument: str, seed: int = DETECTOR_SEED) -> None:
        self.instrument = instrument.lower()
        self.camera: Camera = camera_for(instrument)
        self.seed = seed
        self.gain_modes = {m.ccdgain: m for m in _GAIN_MODES[self.instrument]}
        if self.instrument == "wfc3":
            self.dark_model = DarkModel(floor=0.0015, hot_fraction=0.008, hot_threshold=0.015, hot_max=1.5)
            self.full_well_mean = {1: 67000.0, 2: 69000.0}
        else:
            self.dark_model = DarkModel(floor=0.006, hot_fraction=0.010, hot_threshold=0.08, hot_max=3.0)
            self.full_well_mean = {1: 84000.0, 2: 85000.0}
        self._cache: dict[tuple, np.ndarray] = {}

    # ------------------------------------------------------------------ helpers

    def _key(self, *labels: object) -> int:
        return rf.field_key(self.instrument, self.seed, *labels)

    def _memo(self, key: tuple, make: Callable[[], np.ndarray]) -> np.ndarray:
        if key not in self._cache:
            value = make()
            value.setflags(write=False)
            self._cache[key] = value
        return self._cache[key]

    @staticmethod
    def _region(part: ChipReadout, trimmed: bool) -> tuple:
        rows, cols = (part.det_y, part.det_x) if trimmed else (part.raw_rows, part.raw_cols)
        return (part.chip, trimmed, int(rows[0]), len(rows), int(cols[0]), len(cols))

    def gain_mode(self, ccdgain: float) -> GainMode:
        try:
            return self.gain_modes[float(ccdgain)]
        except KeyError:
            raise ValueError(f"{self.instrument}: CCDGAIN {ccdgain} not simulated "
                             f"(have {sorted(self.gain_modes)})") from None

    def amp_columns(self, part: ChipReadout, ccdgain: float, attr: str, trimmed: bool = False) -> np.ndarray:
        """Per-column value of an amplifier attribute (gain, read_noise, bias, row_slope)."""
        mode = self.gain_mode(ccdgain)
        amps = part.amp_of_col()
        if trimmed:
            amps = amps[part.sci_cols]
        return np.array([getattr(mode.amps[a], attr) for a in amps], dtype=np.float64)

    # ------------------------------------------------------------------ bias

    def bias_pattern(self, part: ChipReadout, ccdgain: float) -> np.ndarray:
        """The fixed superbias pattern (DN, readout format): column and pixel structure, science only."""
        def make() -> np.ndarray:
            rows, cols = part.raw_rows, part.raw_cols
            col_term = 0.8 * rf.normal(self._key("bias-col", part.chip), cols)[None, :]
            pix_term = 0.2 * rf.normal(self._key("bias-pix", part.chip), rows[:, None], cols[None, :])
            pattern = (col_term + pix_term) / self.amp_columns(part, ccdgain, "gain")[None, :]
            science = (part.row_det >= 0)[:, None] & (part.col_det >= 0)[None, :]
            return np.where(science, pattern, 0.0).astype(np.float32)
        return self._memo(("bias-pattern", ccdgain, *self._region(part, False)), make)

    def bias_level(self, part: ChipReadout, ccdgain: float, offsets: dict[str, float]) -> np.ndarray:
        """An exposure's bias level (DN, readout format) before the fixed pattern.

        WFC3: CCDBIAS + offset + row_slope * raw row, per amplifier. ACS: CCDBIAS + offset per
        amplifier plus a gradient along the readout direction, the same in electrons on all four.
        """
        base = self.amp_columns(part, ccdgain, "bias") + np.array([offsets[a] for a in part.amp_of_col()])
        rows = part.raw_rows.astype(np.float64)
        if self.instrument == "wfc3":
            per_row = self.amp_columns(part, ccdgain, "row_slope")
        else:
            per_row = self.ACS_STRIPE_SLOPE / self.amp_columns(part, ccdgain, "gain")
            if not self.camera.virtual_rows_on_top(part.chip):
                rows = self.camera.raw_ny - 1 - rows  # rows counted from the serial register
        level = np.multiply.outer(rows.astype(np.float32), per_row.astype(np.float32))
        level += base.astype(np.float32)[None, :]
        return level

    def superbias(self, part: ChipReadout, ccdgain: float) -> np.ndarray:
        """The BIASFILE SCI for a readout (DN).

        WFC3 references are overscan-subtracted. calwf3 fits the overscan level against
        ``row - TRIMY1`` but evaluates it at the raw row, removing ``TRIMY1 * slope`` too much on
        full-frame chip 1; a superbias made by running calwf3 on bias frames carries exactly that
        offset, so ours does too. ACS biases carry the nominal level (BIASCORR runs before BLEVCORR).
        """
        pattern = self.bias_pattern(part, ccdgain).astype(np.float64)
        if self.instrument == "wfc3":
            if part.is_full:
                trimy1 = self.camera.trim_rows(part.chip)[0]
                pattern = pattern - trimy1 * self.amp_columns(part, ccdgain, "row_slope")[None, :]
            return pattern.astype(np.float32)
        return (pattern + self.amp_columns(part, ccdgain, "bias")[None, :]).astype(np.float32)

    # ------------------------------------------------------------------ dark

    def dark_rate(self, part: ChipReadout) -> np.ndarray:
        """Dark current (e-/s) on the trimmed science pixels of a readout."""
        def make() -> np.ndarray:
            m = self.dark_model
            rows, cols = part.det_y[:, None], part.det_x[None, :]
            rate = m.floor * (1.0 + 0.1 * rf.normal(self._key("dark-floor", part.chip), rows, cols))
            np.clip(rate, 0.0, None, out=rate)
            u = rf.uniform(self._key("dark-hot", part.chip), rows, cols)
            hot = u < m.hot_fraction
            # log-uniform between the threshold and hot_max, from the same draw (no second field)
            rate[hot] = m.hot_threshold * (m.hot_max / m.hot_threshold) ** (u[hot] / m.hot_fraction)
            return rate.astype(np.float32)
        return self._memo(("dark", *self._region(part, True)), make)

    def hot_mask(self, part: ChipReadout) -> np.ndarray:
        return self.dark_rate(part) > self.dark_model.hot_threshold

    def acs_darktime(self, darktime: float, flashed: bool, full_frame_or_listed: bool) -> float:
        """The DARKTIME calacs scales the dark by (header value plus the CCDTAB overhead)."""
        if not full_frame_or_listed:
            return darktime
        return darktime + self.ACS_DARK_OVERHEAD[1 if flashed else 0]

    # ------------------------------------------------------------------ flat

    def flat_response(self, part: ChipReadout, filt: str) -> np.ndarray:
        """True relative response of the trimmed pixels through ``filt`` (mean about 1)."""
        def make() -> np.ndarray:
            cam = self.camera
            y = part.det_y.astype(np.float64)[:, None]
            x = part.det_x.astype(np.float64)[None, :]
            fk = rf.uniform(self._key("flat-shape", filt), np.arange(4))
            u, v = (x - cam.nx / 2) / cam.nx, (y - cam.ny / 2) / cam.ny
            large = 1.0 - (0.04 + 0.02 * fk[0]) * (u ** 2 + v ** 2)
            large += 0.01 * (fk[1] - 0.5) * u + 0.01 * (fk[2] - 0.5) * v
            large = large + (0.012 if part.chip == 1 else -0.012) * fk[3]
            pix = 1.0 + 0.006 * rf.normal(self._key("flat-pix", part.chip), part.det_y[:, None], part.det_x[None, :])
            return (large * pix * self._motes(part)).astype(np.float32)
        return self._memo(("flat", filt, *self._region(part, True)), make)

    def _motes(self, part: ChipReadout) -> np.ndarray:
        """Dust-mote rings (a few percent deep) at fixed places on each chip."""
        out = np.ones(part.trimmed_shape)
        rng = np.random.default_rng(self._key("motes", part.chip))
        n = 12
        centres = np.column_stack([rng.uniform(0, self.camera.nx, n), rng.uniform(0, self.camera.ny, n)])
        # two motes in every amplifier corner, so subarrays see them too
        corner_x = [120, 330, self.camera.nx - 330, self.camera.nx - 120]
        corner_y = [150, 380, self.camera.ny - 380, self.camera.ny - 150]
        centres = np.vstack([centres, [[corner_x[i], corner_y[j]] for i, j in ((0, 0), (1, 1), (2, 0), (3, 1),
                                                                               (0, 3), (1, 2), (2, 3), (3, 2))]])
        radii = rng.uniform(10, 25, len(centres))
        depths = rng.uniform(0.03, 0.08, len(centres))
        x0, y0 = part.det_x[0], part.det_y[0]
        ny, nx = out.shape
        for (cx, cy), radius, depth in zip(centres, radii, depths, strict=True):
            reach = radius + 8
            xs = slice(max(int(cx - reach) - x0, 0), min(int(cx + reach) + 1 - x0, nx))
            ys = slice(max(int(cy - reach) - y0, 0), min(int(cy + reach) + 1 - y0, ny))
            if xs.start >= xs.stop or ys.start >= ys.stop:
                continue
            yy, xx = np.mgrid[ys, xs]
            r = np.hypot(xx + x0 - cx, yy + y0 - cy)
            out[ys, xs] *= 1.0 - depth * np.exp(-(((r - radius) / 2.5) ** 2))
        return out

    def pflat(self, part: ChipReadout, filt: str, ccdgain: float) -> np.ndarray:
        """The PFLTFILE SCI: the response, with calwf3's gain bookkeeping folded in for WFC3."""
        response = self.flat_response(part, filt)
        if self.instrument != "wfc3":
            return response
        mode = self.gain_mode(ccdgain)
        ratio = mode.mean_gain / self.amp_columns(part, ccdgain, "gain", trimmed=True)
        return (response * ratio[None, :]).astype(np.float32)

    # ------------------------------------------------------------------ full well, sinks, bad pixels

    #: e- below full well where the SATUFILE draws the line: far above read noise, so a pixel at
    #: full well is flagged whatever its noise, and a pixel flagged is at most 0.3% short of it.
    FULL_WELL_MARGIN = 200.0

    def full_well(self, part: ChipReadout) -> np.ndarray:
        """Full-well depth (e-) in readout format: where charge starts to bleed."""
        def make() -> np.ndarray:
            rows, cols = part.raw_rows.astype(np.float64), part.raw_cols.astype(np.float64)
            smooth = 1500.0 * np.sin(rows[:, None] / 700.0 + part.chip) * np.cos(cols[None, :] / 1100.0)
            pix = 300.0 * rf.normal(self._key("fullwell", part.chip), part.raw_rows[:, None], part.raw_cols[None, :])
            return (self.full_well_mean[part.chip] + smooth + pix).astype(np.float32)
        return self._memo(("fullwell", *self._region(part, False)), make)

    def saturation_threshold(self, part: ChipReadout, ccdgain: float) -> np.ndarray:
        """The SATUFILE SCI (readout format): full well less the margin, in e-.

        calwf3 compares it, divided by the *mean* gain, with DN that were converted by each
        amplifier's own gain, so for WFC3 the image carries ``mean_gain / gain_amp`` (as the flat does).
        """
        level = self.full_well(part) - self.FULL_WELL_MARGIN
        if self.instrument == "wfc3":
            level = level * (self.gain_mode(ccdgain).mean_gain / self.amp_columns(part, ccdgain, "gain"))[None, :]
        return level.astype(np.float32)

    @cached_property
    def _sinks(self) -> dict[int, tuple[Sink, ...]]:
        cam = self.camera
        out = {}
        for chip in (1, 2):
            rng = np.random.default_rng(self._key("sinks", chip))
            n = int(2e-4 * cam.nx * cam.ny)
            det_x = rng.integers(0, cam.nx, n)
            det_y = rng.integers(5, cam.ny - 5, n)
            onset = rng.uniform(55100.0, 56600.0, n)
            depth = rng.uniform(20.0, 300.0, n)
            ntrail = rng.integers(0, 5, n)
            sinks = []
            for i in range(n):
                trail = tuple(float(t) for t in np.sort(rng.uniform(20.0, 900.0, ntrail[i]))[::-1])
                sinks.append(Sink(int(cam.det_to_raw_row(chip, det_y[i])), int(cam.det_to_raw_col(det_x[i])),
                                  float(onset[i]), float(depth[i]), trail))
            out[chip] = tuple(sinks)
        return out

    def sinks(self, part: ChipReadout) -> list[Sink]:
        """Sinks inside a readout (full-chip raw coordinates)."""
        r0, r1 = part.raw_rows[0], part.raw_rows[-1]
        c0, c1 = part.raw_cols[0], part.raw_cols[-1]
        return [s for s in self._sinks[part.chip] if r0 <= s.row <= r1 and c0 <= s.col <= c1]

    def upstream(self, chip: int) -> int:
        """Raw-row direction away from the amplifiers (charge arrives from there)."""
        return 1 if self.camera.virtual_rows_on_top(chip) else -1

    def sink_image(self, part: ChipReadout) -> np.ndarray:
        """The SNKCFILE SCI for a readout: turn-on MJD at the sink, -1 downstream, DN thresholds upstream."""
        img = np.zeros(part.shape, dtype=np.float32)
        r0, c0 = part.raw_rows[0], part.raw_cols[0]
        up = self.upstream(part.chip)
        for s in self.sinks(part):
            r, c = s.row - r0, s.col - c0
            img[r, c] = s.onset_mjd
            if 0 <= r - up < img.shape[0] and img[r - up, c] == 0:
                img[r - up, c] = -1.0
            for k, thresh in enumerate(s.trail, start=1):
                rr = r + k * up
                if 0 <= rr < img.shape[0] and img[rr, c] == 0:
                    img[rr, c] = thresh
        return img

    @cached_property
    def _bad_runs(self) -> dict[int, tuple[BadRun, ...]]:
        cam = self.camera
        out = {}
        for chip in (1, 2):
            rng = np.random.default_rng(self._key("badpix", chip))
            runs = [BadRun(int(x), int(y), int(n), 2) for x, y, n in zip(
                rng.integers(0, cam.nx, 10), rng.integers(0, cam.ny // 2, 10), rng.integers(50, cam.ny // 2, 10),
                strict=True)]
            runs += [BadRun(int(x), int(y), 1, 1) for x, y in zip(
                rng.integers(0, cam.nx, 30), rng.integers(0, cam.ny, 30), strict=True)]
            # one column segment and a few pixels in each amplifier corner reached by a subarray
            for x in (200, cam.nx - 200):
                y = 100 if cam.virtual_rows_on_top(chip) else cam.ny - 400
                runs.append(BadRun(x, y, 300, 2))
                runs += [BadRun(x + 37 * k, y + 53 * k, 1, 1) for k in (1, 2, 3)]
            out[chip] = tuple(runs)
        return out

    def bad_runs(self, chip: int) -> tuple[BadRun, ...]:
        return self._bad_runs[chip]

    @staticmethod
    def _run_mask(part: ChipReadout, run: BadRun) -> np.ndarray:
        xs, ys = part.det_x, part.det_y
        if run.axis == 2:
            return ((ys >= run.y) & (ys < run.y + run.length))[:, None] & (xs == run.x)[None, :]
        return (ys == run.y)[:, None] & ((xs >= run.x) & (xs < run.x + run.length))[None, :]

    def bad_mask(self, part: ChipReadout) -> np.ndarray:
        def make() -> np.ndarray:
            mask = np.zeros(part.trimmed_shape, dtype=bool)
            for run in self.bad_runs(part.chip):
                mask |= self._run_mask(part, run)
            return mask
        return self._memo(("bad", *self._region(part, True)), make)
