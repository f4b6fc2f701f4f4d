"""Counter-based random numbers: the value at a pixel depends only on (key, coordinates).

Detector structure (superbias pattern, dark current, flat field, full well) must be the same pixel
for pixel whether a reference file covers the full chip or a 512 x 512 corner, and whether the
generator is asked for one region or another. A stateful generator cannot promise that; hashing the
coordinates with a SplitMix64 finaliser can, and it is vectorised numpy (a normal field of a full
chip, 8.6 million pixels, takes about 0.3 s).
"""

from __future__ import annotations

import hashlib

import numpy as np

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def field_key(*labels: object) -> int:
    """A stable 64-bit key from labels (seed, field name, chip, ...), independent of PYTHONHASHSEED."""
    digest = hashlib.blake2b("\x1f".join(map(str, labels)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _hash(key: int, coords: tuple[np.ndarray, ...]) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = np.uint64(key)
        for c in coords:
            z = _mix(z + _GAMMA + np.asarray(c).astype(np.uint64) * _GAMMA)
        return np.asarray(z)


def uniform(key: int, *coords: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) float32 (24-bit) at the broadcast coordinates (``rows[:, None], cols[None, :]``)."""
    return (_hash(key, coords) >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def normal(key: int, *coords: np.ndarray) -> np.ndarray:
    """Standard normal float32 at the broadcast coordinates (Box-Muller on two hashed streams)."""
    u1 = uniform(key, *coords)
    u2 = uniform(key ^ 0x5DEECE66D, *coords)
    u2 *= np.float32(2.0 * np.pi)
    np.cos(u2, out=u2)
    np.negative(u1, out=u1)
    np.log1p(u1, out=u1)
    u1 *= np.float32(-2.0)
    np.sqrt(u1, out=u1)
    u1 *= u2
    return u1
