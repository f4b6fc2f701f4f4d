"""The RAZ layout: both UVIS chips as one 2070 x 8412 image of four amp blocks in the order C, D,
A, B, each turned so that its amp is at the lower left (rows away from the serial register,
columns away from the amp). Every column is then one parallel readout path."""

from __future__ import annotations

import numpy as np

ROWS = 2070
AMP_COLS = 2103
COLS = 4 * AMP_COLS
#: Block-local column ranges: physical prescan, science, serial virtual overscan.
PRESCAN = slice(0, 25)
SCIENCE_ROWS = 2051


def make_raz(cd: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Chip 2 (amps C, D; ext 1) and chip 1 (amps A, B; ext 4), each (2070, 4206) -> (2070, 8412)."""
    n = AMP_COLS
    raz = np.empty((cd.shape[0], 4 * n), dtype=np.result_type(cd, ab))
    raz[:, 0:n] = cd[:, 0:n]
    raz[:, n:2 * n] = cd[:, ::-1][:, 0:n]
    raz[:, 2 * n:3 * n] = ab[::-1, 0:n]
    raz[:, 3 * n:4 * n] = ab[::-1, ::-1][:, 0:n]
    return raz


def undo_raz(raz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The exact inverse of :func:`make_raz`: returns (cd, ab)."""
    n = AMP_COLS
    cd = np.empty((raz.shape[0], 2 * n), dtype=raz.dtype)
    ab = np.empty_like(cd)
    cd[:, 0:n] = raz[:, 0:n]
    cd[:, n:2 * n] = raz[:, n:2 * n][:, ::-1]
    ab[:, 0:n] = raz[::-1, 2 * n:3 * n]
    ab[:, n:2 * n] = raz[::-1, 3 * n:4 * n][:, ::-1]
    return cd, ab
