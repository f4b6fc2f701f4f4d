"""CR rejection (``crrej``): the whole-image HIT/SPILL marking against calwf3's line-by-line loop,
and the row-blocked arithmetic against itself with other block sizes.

``mark_by_line`` below transcribes ``rej_loop.c``'s marking one line after the other, as the
engine did before :func:`pipeline.science.calib.crrej.mark` computed every line at once; the two
must agree on every pixel of every random stack, including the quirks (DQ values equal to SPILL,
EXCLUDE or HIT, bad columns whose hits chain down the image through SPILL marks, radius 0).
Agreement with calwf3.e/calacs.e themselves is checked by the hstcal-gated stack tests.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.io import fits

from pipeline.science.calib import crrej, numerics
from pipeline.science.calib.crrej import EXCLUDE, HIT, SPILL, ChipNoise, Member, combine, mark
from pipeline.science.calib.imageio import Imset
from pipeline.science.calib.tables import CRRejParams

DQ_VALUES = [2, 4, 8, 16, 32, 64, 256, 512, 2048, 8192, 2 | 4, 8 | 32, 4 | 16, 8192 | 8]


def _dilate_row(h: np.ndarray, reach: int) -> np.ndarray:
    out = h.copy()
    for d in range(1, reach + 1):
        out[d:] |= h[:-d]
        out[:-d] |= h[d:]
    return out


def mark_by_line(dq: np.ndarray, cand_all: np.ndarray, spill_center: np.ndarray, spill_future: np.ndarray, *,
                 dqpat: np.int16, width: int, rej2: float) -> tuple[np.ndarray, np.ndarray]:
    """(mask before each line, mask after it), one line after the other as rej_loop.c does."""
    ny = dq.shape[0]
    mask = dq.copy()
    before = np.empty_like(dq)
    for line in range(ny):
        row = mask[line]
        bufdq = row.copy()
        before[line] = bufdq
        row[((bufdq & dqpat) != 0) & (bufdq != SPILL)] = EXCLUDE
        cand = cand_all[line]
        hits = cand & (row != EXCLUDE)
        if width > 0 and hits.any():
            hits = crrej._exclude_chain(hits[None], (cand & (row == EXCLUDE) & spill_center[line])[None], rej2)[0]
            row[hits] = HIT
            for dy in range(width + 1):
                target, reach = line + dy, crrej._reach(rej2, dy)
                if target >= ny or reach < 0:
                    continue
                test = spill_center[line] if dy == 0 else spill_future[target]
                mask[target][_dilate_row(hits, reach) & test & (mask[target] != HIT)] = SPILL
        elif hits.any():
            row[hits] = HIT
    return before, mask


def _random_marking(seed: int, *, tiny: bool = False) -> tuple[dict, float]:
    """``tiny``: 1-5 lines and columns, so that the spill reach often covers the whole image."""
    rng = np.random.default_rng(seed)
    ny, nx = (int(rng.integers(1, 6)), int(rng.integers(1, 6))) if tiny else (int(rng.integers(5, 70)),
                                                                                int(rng.integers(5, 70)))
    dq = np.zeros((ny, nx), np.int16)
    n = int(rng.integers(0, max(ny * nx // 3, 1)))
    dq[rng.integers(0, ny, n), rng.integers(0, nx, n)] = rng.choice(DQ_VALUES, n)
    cand = rng.random((ny, nx)) < rng.uniform(0.01, 0.4)
    if rng.random() < 0.5:  # a bad column of candidates: hits reach down it one line per round
        col = int(rng.integers(0, nx))
        dq[:, col] = 16
        cand[:, col] = True
    center = cand | (rng.random((ny, nx)) < 0.5)
    future = rng.random((ny, nx)) < 0.6
    radius = float(rng.choice([0.0, 0.5, 1.0, 1.5, 2.1, 3.0, 3.7]))
    args = {"dq": dq, "cand": cand, "spill_center": center, "spill_future": future,
            "dqpat": np.int16(rng.choice([39, 0, 255, 24, 6, -1])), "width": math.ceil(radius),
            "rej2": float(np.float32(radius) * np.float32(radius))}
    return args, radius


@pytest.mark.parametrize("seed", range(160))
def test_mark_equals_the_line_by_line_loop(seed: int) -> None:
    args, _ = _random_marking(seed, tiny=seed >= 120)
    marks = mark(**args)
    before, after = mark_by_line(args["dq"], args["cand"], args["spill_center"], args["spill_future"],
                                 dqpat=args["dqpat"], width=args["width"], rej2=args["rej2"])
    np.testing.assert_array_equal(marks.before, before)
    np.testing.assert_array_equal(marks.after, after)


def test_a_bad_column_of_candidates_is_hit_all_the_way_down() -> None:
    """Each line's hit spills onto the next line's bad pixel, which is then no longer EXCLUDE: a
    dependency through every line, resolved as the loop resolves it."""
    ny, nx = 40, 9
    dq = np.zeros((ny, nx), np.int16)
    dq[:, 4] = 16
    cand = np.zeros((ny, nx), bool)
    cand[:, 4] = True
    cand[0, 3] = True  # the first hit, next to the column
    center = np.ones((ny, nx), bool)
    marks = mark(dq, cand, center, center, dqpat=np.int16(16), width=3, rej2=2.1 * 2.1)
    assert (marks.after[1:, 4] == HIT).all()
    before, after = mark_by_line(dq, cand, center, center, dqpat=np.int16(16), width=3, rej2=2.1 * 2.1)
    np.testing.assert_array_equal(marks.after, after)
    np.testing.assert_array_equal(marks.before, before)


def _stack(seed: int, acs: bool) -> tuple[list[Member], CRRejParams, ChipNoise]:
    rng = np.random.default_rng(seed)
    ny, nx = int(rng.integers(20, 90)), int(rng.integers(10, 60))
    base = rng.uniform(0, 200, (ny, nx)).astype(np.float32)
    members = []
    for k, efac in enumerate((100.0, 350.0, 200.0)[:int(rng.integers(2, 4))]):
        sci = (base * efac / 100 + 20 + rng.normal(0, 3, (ny, nx))).astype(np.float32)
        hits = int(rng.integers(0, ny * nx // 6))
        sci[rng.integers(0, ny, hits), rng.integers(0, nx, hits)] += rng.uniform(50, 5000, hits).astype(np.float32)
        dq = np.zeros((ny, nx), np.uint16)
        bad = int(rng.integers(0, ny * nx // 5))
        dq[rng.integers(0, ny, bad), rng.integers(0, nx, bad)] = rng.choice(DQ_VALUES, bad).astype(np.uint16)
        err = np.sqrt(np.maximum(sci, 0) + 9).astype(np.float32)
        header = fits.Header({"CCDCHIP": 1})
        members.append(Member(f"m{k}", Imset(1, sci, err, dq, header, header.copy(), header.copy()), efac))
    radius = float(rng.choice([0.0, 1.5, 2.1, 3.0]))
    par = CRRejParams(row=1, crsplit=len(members), meanexp=100.0, sigmas=(6.5, 5.5, 4.5), skysub="mode",
                      sigmas_text="6.5,5.5,4.5", radius=radius, thresh=0.5555,
                      initgues=str(rng.choice(["minimum", "median"])), scalense=3.0, badinpdq=39, crmask=True)
    low = ((9.0, 12.0), (1.5, 2.0)) if rng.random() < 0.5 else None
    noise = ChipNoise((9.5, 10.2), (1.5, 1.6), int(rng.integers(0, nx + 1)), int(rng.integers(0, ny)), low)
    return members, par, noise


def _copy(members: list[Member]) -> list[Member]:
    return [Member(m.name, Imset(1, m.imset.sci.copy(), m.imset.err.copy(), m.imset.dq.copy(), m.imset.sci_header,
                                 m.imset.err_header, m.imset.dq_header), m.efac) for m in members]


@pytest.mark.parametrize("acs", [False, True])
@pytest.mark.parametrize("seed", range(12))
def test_row_blocks_change_nothing(seed: int, acs: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-pixel arithmetic runs a block of rows at a time; with blocks of one row (so the raw
    first lines, the amplifier quadrants and the SPILL marks all cross block edges) every output
    bit is the same."""
    members, par, noise = _stack(seed, acs)
    whole = combine(_copy(members), par, noise, acs=acs)
    monkeypatch.setattr(crrej, "row_blocks", lambda n: numerics.row_blocks(n, 1))
    lines = combine(_copy(members), par, noise, acs=acs)
    for a, b in ((whole.sci, lines.sci), (whole.err, lines.err), (whole.dq, lines.dq)):
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))
    assert whole.nrej == lines.nrej
    for a, b in zip(whole.crmasks, lines.crmasks, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_cosmic_ray_is_replaced_by_the_other_exposure() -> None:
    """Two equal exposures of a flat sky, a cosmic ray in the first: the ray's pixel and the
    neighbours it spilled onto are rejected in the first only, and the combined image there is the
    second exposure's value scaled to the total exposure time."""
    ny, nx = 40, 30
    rng = np.random.default_rng(5)
    sky = (100 + rng.normal(0, 1, (ny, nx))).astype(np.float32)
    first, second = sky.copy(), sky.copy()
    first[20, 15] += 5000
    first[20, 16] += 400
    header = fits.Header({"CCDCHIP": 1})
    members = [Member(name, Imset(1, sci, np.zeros_like(sci), np.zeros((ny, nx), np.uint16), header, header.copy(),
                                  header.copy()), 100.0) for name, sci in (("a", first), ("b", second))]
    par = CRRejParams(row=1, crsplit=2, meanexp=100.0, sigmas=(6.5, 5.5, 4.5), skysub="none",
                      sigmas_text="6.5,5.5,4.5", radius=2.1, thresh=0.5555, initgues="minimum", scalense=3.0,
                      badinpdq=39, crmask=True)
    res = combine(members, par, ChipNoise((9.0, 9.0), (1.5, 1.5), nx))
    assert res.crmasks[0][20, 15] == 8192 and res.crmasks[0][20, 16] == 8192
    assert not res.crmasks[1].any()
    assert res.nrej == int((res.crmasks[0] > 0).sum())
    assert res.sci[20, 15] == pytest.approx(second[20, 15] * 2, rel=1e-6)
    assert res.sci[5, 5] == pytest.approx((first[5, 5] + second[5, 5]), rel=1e-6)
