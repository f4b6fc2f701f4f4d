"""The simulated WFC3/IR detector: the one model both the IR ramps and the IR reference files are
drawn from (so a calibration with those references recovers the simulated count rates).

A 1024x1024 HgCdTe array read by four amplifiers, with a 5-pixel border of reference pixels that
see bias but no light. Units: signal in electrons, raw data in DN (``mean_gain`` e-/DN).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

NPIX = 1024
BORDER = 5
GAINS = (2.34, 2.37, 2.31, 2.38)
#: CDS read noise (e-) per amplifier, as CCDTAB READNSEA..D.
READNOISE = (20.2, 19.8, 19.9, 20.5)
CCDGAIN = 2.5
BIAS_LEVEL = 11000.0
#: Non-linearity coefficient scales (``c_k s^k`` for k = 0..3, s in DN).
NLIN_COEF = (1.0e-3, 2.0e-6, -1.0e-11, 3.0e-16)
NODE_LEVEL = 34000.0
#: Signal (DN, above bias) where the pixel stops accumulating: a little above NODE.
FULL_WELL_DN = 36000.0
IR_FILTERS = {  # name: (PHOTFLAM, PHOTPLAM, PHOTBW)
    "F105W": (3.038e-20, 10551.0, 865.0), "F110W": (1.525e-20, 11534.0, 1428.0),
    "F125W": (2.253e-20, 12486.0, 866.0), "F140W": (1.474e-20, 13923.0, 1132.0),
    "F160W": (1.924e-20, 15369.0, 826.0),
}
#: Subarray apertures: SUBTYPE and the light-sensitive size (the raw array adds the border).
SUBARRAYS = {"IRSUB64": ("SQ64SUB", 64), "IRSUB128": ("SQ128SUB", 128), "IRSUB256": ("SQ256SUB", 256),
             "IRSUB512": ("SQ512SUB", 512)}
FULL_SUBTYPE = "FULLIMAG"


def mean_gain() -> float:
    g = np.float32(0.0)
    for a in GAINS:
        g = np.float32(g + np.float32(a))
    return float(np.float32(g / np.float32(4.0)))


# -------------------------------------------------------------------------------- sample sequences

RAPID_STEP = 2.93235
FIRST_READ = 2.932


def sample_times(seq: str, nsamp: int) -> list[float]:
    """SAMPTIME of reads 0..nsamp-1 (s since the zero read) of a MULTIACCUM sequence.

    RAPID reads every 2.932 s; SPARSn reads at 2.932 s and then every n s; STEPn reads rapidly up
    to 11.729 s, then at 24.23, 49.23, 99.23 ... doubling until the step reaches n, then every n s.
    """
    seq = seq.upper()
    if not 1 <= nsamp <= 16:
        raise ValueError(f"NSAMP {nsamp} outside 1..16")
    if seq == "RAPID":
        times = [round(RAPID_STEP * k, 3) for k in range(16)]
    elif seq.startswith("SPARS"):
        step = float(seq[5:])
        times = [0.0, FIRST_READ] + [round(FIRST_READ + 0.00055 + (step + 0.0002) * k, 3) for k in range(1, 15)]
    elif seq.startswith("STEP"):
        step = float(seq[4:])
        times = [round(RAPID_STEP * k, 3) for k in range(5)]
        t, dt = 24.230, 12.5
        while len(times) < 16:
            times.append(round(t, 3))
            dt = min(dt * 2, step)
            t += dt
    else:
        raise ValueError(f"unknown sample sequence {seq!r}")
    return times[:nsamp]


SEQUENCES = ("RAPID", "SPARS10", "SPARS25", "SPARS50", "SPARS100", "SPARS200", "STEP25", "STEP50", "STEP100",
             "STEP200")


# ----------------------------------------------------------------------------------------- maps


@dataclass(frozen=True)
class IRMaps:
    """Full-frame (1024x1024) detector maps; the same for every exposure of a run."""

    bias: np.ndarray        # DN, float32: the zero-read pedestal (NLINFILE ZSCI)
    dark: np.ndarray        # e-/s
    flat: np.ndarray        # relative QE
    coef: np.ndarray        # (4, ny, nx) non-linearity coefficients
    node: np.ndarray        # DN
    hot: np.ndarray         # bool: dark DQ 16
    bad: np.ndarray         # uint16: BPIXTAB values


@functools.lru_cache(maxsize=2)
def detector_maps(seed: int = 2009) -> IRMaps:
    rng = np.random.default_rng(seed)
    n = NPIX
    y, x = np.mgrid[0:n, 0:n].astype(np.float32) / n
    quad = np.where(y < 0.5, np.where(x < 0.5, 15.0, -10.0), np.where(x < 0.5, 5.0, -20.0))
    bias = BIAS_LEVEL + quad + 30.0 * np.sin(3.0 * x) * np.cos(2.0 * y) + rng.normal(0, 4.0, (n, n))
    bias = bias.astype(np.float32)
    dark = rng.gamma(4.0, 0.0075, (n, n)).astype(np.float32)
    hot = rng.random((n, n)) < 2e-4
    dark[hot] = rng.uniform(1.0, 5.0, int(hot.sum()))
    flat = (1.0 + 0.03 * np.cos(2.5 * x + 1.0) * np.sin(1.7 * y) + rng.normal(0, 0.004, (n, n))).astype(np.float32)
    coef = np.stack([(c * (1.0 + rng.normal(0, 0.03, (n, n)))).astype(np.float32) for c in NLIN_COEF])
    node = (NODE_LEVEL + rng.normal(0, 300.0, (n, n))).astype(np.float32)
    bad = np.zeros((n, n), np.uint16)
    dead = rng.random((n, n)) < 5e-5
    bad[dead] = 4
    unstable = rng.random((n, n)) < 5e-5
    bad[unstable] |= 32
    bad[hot] |= 16
    return IRMaps(bias=bias, dark=dark, flat=flat, coef=coef, node=node, hot=hot, bad=bad)


def nonlinear_response(true_dn: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """The measured signal s with ``s * (1 + sum c_k s^k) = true`` (Newton iterations), so that
    NLINCORR's polynomial inverts the detector exactly."""
    s = true_dn.astype(np.float64).copy()
    c = coef.astype(np.float64)
    for _ in range(6):
        poly = 1.0 + c[0] + c[1] * s + c[2] * s * s + c[3] * s ** 3
        dpoly = c[1] + 2 * c[2] * s + 3 * c[3] * s * s
        f = s * poly - true_dn
        s -= f / (poly + s * dpoly)
    return s
