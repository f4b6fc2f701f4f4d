"""The post-SM4 ACS/WFC dual-slope-integrator readout (``JWROTYPE = 'DS_INT'``): bias shift and
cross-talk put into simulated full-frame pixels, as calacs takes them out (ccd-calibration.md §8,
ISR ACS 2012-02).

* **Cross-talk**: each amplifier sees a negative ghost of the mirror-image pixel of the other
  amplifier on its chip, ``9.1e-5`` of its signal; calacs adds it back (``SCI[j] += 9.1e-5 *
  SCI[nx-1-j]``).
* **Bias shift**: the AC-coupled pre-amp leaves a DC offset that follows the signal with a time
  constant of ~37-42 µs along the serial clocking order (2072 pixels then 146 virtual gap pixels per
  row, at 22 µs per pixel / 1000). calacs's correction is a linear filter ``y = H(x)`` on that pixel
  stream; the readout here is its exact inverse ``x = H⁻¹(y)``, started in the steady state of the
  bias level.

Both only for DS_INT readouts at gain 2, full frame: the only WFC data calacs corrects (supported
``-2K`` subarrays aside, which the simulator does not make).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import lfilter, lfilter_zi

from pipeline.science.calib.steps.destripe import (
    CROSS_SCALE,
    DC_RATIO,
    DSI_SENS,
    NGAP_PIX,
    SERIAL_FREQ,
    TIME_CONST,
    amp_view,
)

DS_INT = "DS_INT"
#: Readout types of WFC (JWROTYPE); DS_INT has been the standard since SM4.
READOUT_TYPES = (DS_INT, "CLAMP")
#: k in calacs's correction ``y = x - s*dc[n+1] - k*(dc[n+1] - dc[n])``.
SLOPE_TERM = 10.0 / 22.0


def applies(instrument: str, jwrotype: str, ccdgain: float, full_frame: bool) -> bool:
    """Whether a readout carries the bias shift and cross-talk the simulator models."""
    return instrument.lower() == "acs" and jwrotype.upper() == DS_INT and ccdgain == 2.0 and full_frame


def add_cross_talk(signal_e: np.ndarray) -> np.ndarray:
    """The ghost each pixel gets from the mirror pixel of the chip's other amp (e-, to subtract)."""
    return (signal_e[:, ::-1].astype(np.float64) * CROSS_SCALE).astype(np.float32)


def dsi_readout(stream: np.ndarray, amp: int, level: float) -> np.ndarray:
    """The inverse of calacs's bias-shift filter for amp ``amp`` (0-3 = A-D) over a pixel stream that
    was at ``level`` before it began (``H(z) = ((1-a(s+k)) + (ak-b)z⁻¹) / (1 - bz⁻¹)``, a = factor *
    dc_ratio, b = 1 - factor, s = dsi_sens)."""
    factor = 1.0 - math.exp(-1.0 / (TIME_CONST[amp] * SERIAL_FREQ))
    a, b, s = factor * DC_RATIO[amp], 1.0 - factor, DSI_SENS[amp]
    num, den = [1.0, -b], [1.0 - a * (s + SLOPE_TERM), a * SLOPE_TERM - b]
    steady = level / (1.0 - s * DC_RATIO[amp])  # the raw level whose corrected value is ``level``
    out, _ = lfilter(num, den, stream, zi=lfilter_zi(num, den) * steady * (1.0 - s * DC_RATIO[amp]))
    return out


def apply_ds_int(dn: np.ndarray, electrons: np.ndarray, gain: np.ndarray, chip: int,
                 bias_dn: dict[str, float]) -> None:
    """Put cross-talk and the bias shift into one full raw chip ``dn`` (float32, in place).

    ``electrons`` is the chip's signal embedded in the raw frame, ``gain`` the e-/DN of each raw
    column, ``bias_dn`` the bias level per amplifier letter (what the virtual gap pixels read).
    """
    dn -= add_cross_talk(electrons) / gain[None, :]
    for k, letter in enumerate("ABCD"):
        if (chip == 1) != (letter in "AB"):
            continue
        view = amp_view(dn, k)
        rows, cols = view.shape
        stream = np.full((rows, cols + NGAP_PIX), bias_dn[letter], np.float64)
        stream[:, :cols] = view
        raw = dsi_readout(stream.ravel(), k, bias_dn[letter])
        view[...] = raw.reshape(rows, cols + NGAP_PIX)[:, :cols]
