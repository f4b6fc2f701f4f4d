"""Chip geometry: which amps read a chip, where its overscan lies, and each amp's science box.

These reproduce hstcal's ``parseWFCamps``, ``get_nsegn``, ``FindOverscan`` and ``ComputeLimits``
(calwf3 3.7; calacs uses the same logic with its own table layout).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.science.calib.tables import AMPS, OverscanRow


def chip_amps(ccdamp: str, chip: int) -> str:
    """Amps of CCDAMP that read this chip, in order: chip 2 uses C,D; chip 1 uses A,B."""
    candidates = "CD" if chip == 2 else "AB"
    return "".join(a for a in candidates if a in ccdamp)


def slot_values(values: tuple[float, float, float, float], chip: int) -> tuple[float, float]:
    """``get_nsegn``: the (left, right) amp slot values of a chip (A/C left, B/D right)."""
    if chip == 2:
        return values[2], values[3]
    return values[0], values[1]


def amp_index(letter: str) -> int:
    return AMPS.index(letter)


@dataclass
class Overscan:
    """Result of ``FindOverscan`` (0-based columns, bias sections inclusive)."""

    trimx: list[int]
    trimy: list[int]
    vx: list[int]
    vy: list[int]
    biassect: dict[str, tuple[int, int]]
    overscan: bool
    row: int = 0

    @classmethod
    def none(cls) -> Overscan:
        return cls([0, 0, 0, 0], [0, 0], [0, 0, 0, 0], [0, 0, 0, 0], {a: (0, 0) for a in AMPS}, False)


def find_overscan(row: OverscanRow, *, nx: int, subarray: bool, offsetx: float) -> Overscan:
    """Overscan layout of a chip from its OSCNTAB row (``FindOverscan``, UVIS branch).

    Full frame: trims and virtual regions as tabulated, sections converted to 0-based. Subarrays
    have no virtual overscan: trims and bias sections are recomputed from LTV1 so that only the
    physical prescan inside the subarray is used; none inside means ``overscan=False``.
    """
    if not subarray:
        return Overscan(
            trimx=list(row.trimx), trimy=list(row.trimy),
            vx=[v - 1 for v in row.vx], vy=[v - 1 for v in row.vy],
            biassect={a: (s[0] - 1, s[1] - 1) for a, s in row.biassect.items()},
            overscan=True, row=row.row)
    out = Overscan([0, 0, 0, 0], [0, 0], [0, 0, 0, 0], [0, 0, 0, 0], {a: (0, 0) for a in AMPS}, True, row.row)
    tx1 = int(nx - offsetx)
    cx1 = row.nx - row.trimx[1] - row.trimx[0]
    cx0 = int(row.trimx[0] - offsetx)
    a1, a2 = row.biassect["A"]
    if offsetx > 0:
        out.trimx[0] = int(offsetx) if offsetx < row.trimx[0] else row.trimx[0]
        tx2 = int(nx - out.trimx[0]) - cx1
        out.trimx[1] = max(tx2, 0)
        out.biassect["A"] = (max(a1 - 1 - cx0, 0), a2 - 1 - cx0)
    elif cx1 < tx1 <= row.nx:
        out.trimx[1] = tx1 - cx1
        b0, b1 = a1 - 1 - cx0, a2 - 1 - cx0
        if b0 >= nx:
            b0, b1 = 0, 0
        out.biassect["B"] = (b0, min(b1, nx - 1))
    else:
        out.overscan = False
    return out


@dataclass(frozen=True)
class AmpRegion:
    """The science box one amp corrects: rows [begy, endy), columns [begx, endx) of the raw chip."""

    amp: str
    right: bool
    begx: int
    endx: int
    begy: int
    endy: int


def amp_regions(ccdamp: str, chip: int, ampx: int, ampy: int, oscn: Overscan,
                nx: int, ny: int) -> list[AmpRegion]:
    """Per-amp science boxes (``ComputeLimits`` / the loop in ``doBlev``).

    The amp's left/right side comes from its position relative to the chip's first amp
    (``bias_loc = amp - ccdamp[0]``), so a lone B or D amp counts as "left" as it does in calwf3.
    """
    tx1, tx2, tx3, tx4 = oscn.trimx
    ty1, ty2 = oscn.trimy
    amps = chip_amps(ccdamp, chip)
    out = []
    for amp in amps:
        loc = ord(amp) - ord(amps[0])
        bx, by = (0, 1, 0, 1)[loc], (0, 0, 1, 1)[loc]
        begx = tx1 + (ampx + tx3 + tx4) * bx
        endx = ampx + tx1 if (bx == 0 and ampx != 0) else nx - tx2
        begy = ty1 + ampy * by
        endy = ampy + ty1 if (by == 0 and ampy != 0) else ny - ty2
        out.append(AmpRegion(amp, bool(bx), begx, min(endx, nx), begy, min(endy, ny)))
    return out
