"""The final drizzle's chips in processes (``drizzle_final``): footprints that hold every pixel ``tdriz``
touches, groups that never share one, and results, logs and errors as one call after another gives.
The whole MD product against the one-process run is in ``tests/test_md_parallel.py``."""

from __future__ import annotations

import logging
import os
import types

import numpy as np
import pytest
from astropy.io import fits

from pipeline.science import drizzle_exact, drizzle_final
from tests.products_data import Field, star_field, write_flt

checked = pytest.mark.skipif(drizzle_exact.drizzlepac_version() != drizzle_exact.CHECKED_DRIZZLEPAC,
                             reason="the final drizzle's chips are only split with the checked drizzlepac")
LOG = logging.getLogger("drizzlepac.test_final")


def _output_wcs(like, shape: tuple[int, int], rotation: float):
    """A north-up (rotated by ``rotation`` degrees) TAN HSTWCS of ``shape`` around ``like``'s pointing."""
    from stwcs.wcsutil import HSTWCS

    ny, nx = shape
    theta = np.radians(rotation)
    scale = like.pscale / 3600.0
    header = fits.Header({"NAXIS": 2, "NAXIS1": nx, "NAXIS2": ny, "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN",
                          "CRVAL1": float(like.wcs.crval[0]), "CRVAL2": float(like.wcs.crval[1]),
                          "CRPIX1": nx / 2, "CRPIX2": ny / 2, "CD1_1": -scale * np.cos(theta),
                          "CD1_2": scale * np.sin(theta), "CD2_1": scale * np.sin(theta),
                          "CD2_2": scale * np.cos(theta)})
    return HSTWCS(fits.HDUList([fits.PrimaryHDU(header=header)]))


@checked
@pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")   # a header without an image
@pytest.mark.parametrize(("kernel", "pixfrac", "rotation", "sip"),
                         [("square", 1.0, 0.0, False), ("square", 0.8, 37.0, True), ("turbo", 1.0, 90.0, False),
                          ("point", 1.0, 12.0, True), ("gaussian", 1.0, 200.0, False), ("lanczos3", 1.0, 63.0, True),
                          ("square", 1.6, 5.0, True)])
def test_a_footprint_holds_every_pixel_tdriz_touches(tmp_path, kernel, pixfrac, rotation, sip):
    from drizzlepac import cdriz
    from stwcs.wcsutil import HSTWCS

    shape = (120, 150)
    flt = write_flt(tmp_path / "idn101a1q_flt.fits", star_field(Field(), 10, shape), shape=shape,
                    asn_id="idn101010", dither=(0.0, 0.0), cosmic_rays=0)
    if sip:   # a distortion of several pixels at the corners, as drizzlepac maps it (SIP)
        with fits.open(flt, mode="update") as hdul:
            h = hdul["SCI", 1].header
            h["CTYPE1"], h["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
            h.update({"A_ORDER": 2, "B_ORDER": 2, "A_2_0": 3e-4, "A_1_1": -2e-4, "A_0_2": 1e-4,
                      "B_2_0": -1e-4, "B_1_1": 2.5e-4, "B_0_2": 2e-4})
    chip = HSTWCS(fits.open(flt), ext=("SCI", 1))
    assert chip.sip is not None or not sip
    out_shape = (330, 300)
    out = _output_wcs(chip, out_shape, rotation)
    insci = np.ones(shape, dtype=np.float32)
    outsci = np.full(out_shape, np.nan, dtype=np.float32)   # a touch with zero weight still writes data
    outwht = np.zeros(out_shape, dtype=np.float32)
    outcon = np.zeros(out_shape, dtype=np.int32)
    mapping = cdriz.DefaultWCSMapping(chip, out, shape[1], shape[0], 10)
    with drizzle_final.held_records():
        cdriz.tdriz(insci, np.ones(shape, dtype=np.float32), outsci, outwht, outcon, 1, 0, 1, 1, shape[0],
                    out.pscale / chip.pscale, 1.0, 1.0, "center", pixfrac, kernel, "cps", 1.0, 1.0, "INDEF", 0, 0,
                    1, mapping)
    touched = ~np.isnan(outsci) | (outwht != 0) | (outcon != 0)
    arguments = {"input_wcs": chip, "output_wcs": out, "wcslin_pscale": chip.pscale, "pixfrac": pixfrac,
                 "kernel": kernel, "insci": insci, "outsci": outsci}
    mask = drizzle_final.covered([drizzle_final.chip_footprint(arguments)], out_shape)
    assert touched.sum() > 0.5 * shape[0] * shape[1]
    assert not np.any(touched & ~mask), np.argwhere(touched & ~mask)[:5]
    assert mask.sum() < 1.6 * touched.sum()   # a superset, not the whole output


def _band(rows: tuple[int, int], cols: tuple[int, int], ny: int = 40) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.full(ny, 100), np.full(ny, -1)
    lo[rows[0]:rows[1]], hi[rows[0]:rows[1]] = cols
    return lo, hi


def test_groups_keep_touching_chips_together_in_order():
    a, b, c, d = _band((0, 10), (0, 20)), _band((12, 20), (0, 20)), _band((8, 14), (15, 30)), _band((30, 40), (5, 9))
    assert drizzle_final.meet(a, c) and drizzle_final.meet(c, b) and not drizzle_final.meet(a, b)
    assert drizzle_final.groups([a, b, c, d], 2) == [[0, 1, 2], [3]]   # a-c-b chained
    assert drizzle_final.groups([a, d, b], 2) == [[0, 2], [1]] or drizzle_final.groups([a, d, b], 2) == [[0], [1, 2]]
    assert drizzle_final.groups([a, c, b], 4) == [[0, 1, 2]]
    assert drizzle_final.groups([a, d, b], 8) == [[0], [1], [2]]
    mask = drizzle_final.covered([d], (40, 100))
    assert mask.sum() == 10 * 5 and mask[30:40, 5:10].all()


def test_a_footprint_is_the_outline_cross_section_widened():
    x = np.array([10.0, 30.0, 30.0, 10.0, 10.0])   # a square, rows 5-25, columns 10-30
    y = np.array([5.0, 5.0, 25.0, 25.0, 5.0])
    lo, hi = drizzle_final.footprint(x, y, 2.0, (40, 50))
    rows = np.flatnonzero(lo <= hi)
    assert rows[0] == 3 and rows[-1] == 27
    assert lo[15] == 8 and hi[15] == 32
    lo, hi = drizzle_final.footprint(x + np.nan, y, 2.0, (40, 50))   # does not map: everywhere
    assert (lo == 0).all() and (hi == 49).all()


def test_a_chip_just_off_the_frame_still_reaches_its_edge():
    x = np.array([10.0, 30.0, 30.0, 10.0, 10.0])
    below = np.array([-8.0, -8.0, -0.3, -0.3, -8.0])   # 0.3 pixel under row 0: tdriz writes row 0
    lo, hi = drizzle_final.footprint(x, below, 1.0, (40, 50))
    assert np.flatnonzero(lo <= hi).tolist() == [0, 1] and lo[0] <= 9 and hi[0] >= 31   # the reach: one row more
    above = np.array([39.3, 39.3, 47.0, 47.0, 39.3])   # its lowest edge rounds to row 39
    lo, hi = drizzle_final.footprint(x, above, 1.0, (40, 50))
    assert np.flatnonzero(lo <= hi).tolist() == [38, 39]
    lo, hi = drizzle_final.footprint(x, below - 10.0, 2.0, (40, 50))   # out of reach
    assert not np.any(lo <= hi)


class _Shift:
    """A WCS test double: sky = pixel + offset, output pixel = sky."""

    pscale = 1.0

    def __init__(self, dx: float = 0.0, dy: float = 0.0) -> None:
        self.dx, self.dy = dx, dy

    def all_pix2world(self, x, y, origin):
        if self.dx < 0:
            raise ValueError("no solution")   # a WCS that will not map
        return x + self.dx, y + self.dy

    def all_world2pix(self, x, y, origin):
        return x, y


def _fake_drizzlepac(fail: int = 0) -> types.SimpleNamespace:
    """``adrizzle`` with a ``do_driz`` whose result depends on the order of calls at each pixel."""

    def do_driz(insci, input_wcs, inwht, output_wcs, outsci, outwht, outcon, expin, in_units, wt_scl,
                wcslin_pscale=1.0, uniqid=1, pixfrac=1.0, kernel="square", fillval="INDEF", stepsize=10, wcsmap=None):
        LOG.info("drizzle %d in %d", uniqid, os.getpid())
        if uniqid == fail:
            raise ValueError(f"chip {uniqid}: cannot")
        ny, nx = insci.shape
        rows = slice(int(input_wcs.dy), int(input_wcs.dy) + ny)
        cols = slice(int(input_wcs.dx), int(input_wcs.dx) + nx)
        cols = slice(abs(cols.start), abs(cols.start) + nx)   # an unmappable test WCS still drizzles
        outsci[rows, cols] = outsci[rows, cols] * 0.5 + insci * uniqid
        outwht[rows, cols] += 1
        outcon[0, rows, cols] |= 1 << (uniqid - 1)
        return "v"

    def run_driz_chip(call: dict, doWrite: bool) -> None:
        LOG.info("prepare %d", call["uniqid"])
        namespace.do_driz(**call)
        LOG.info("after %d", call["uniqid"])

    namespace = types.SimpleNamespace(do_driz=do_driz, run_driz_chip=run_driz_chip)
    return namespace


def _final(processes: int, fail: int = 0, unmappable: bool = False) -> tuple[list[np.ndarray], list[str], int]:
    """Four 10 x 30 chips: two on top (rows 0-11 after a dither), two below (rows 40-51)."""
    fake = _fake_drizzlepac(fail)
    arrays = [np.full((60, 40), -1.0, np.float32), np.zeros((60, 40), np.float32), np.zeros((1, 60, 40), np.int32)]
    offsets = [(0, 0), (0, 40), (3, 2), (3, 42)]
    wcs = [_Shift(-dx if unmappable and k == 3 else dx, dy) for k, (dx, dy) in enumerate(offsets)]
    calls = [{"insci": np.full((10, 30), k + 1.0, np.float32), "input_wcs": wcs[k], "inwht": None,
              "output_wcs": _Shift(), "outsci": arrays[0], "outwht": arrays[1], "outcon": arrays[2], "expin": 1.0,
              "in_units": "cps", "wt_scl": 1.0, "uniqid": k + 1} for k in range(len(offsets))]
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append   # type: ignore[method-assign]
    LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    try:
        with drizzle_final.chips_in_processes(fake, processes) as final:
            for k, call in enumerate(calls):
                fake.run_driz_chip(call, doWrite=k == len(calls) - 1)
    finally:
        LOG.removeHandler(handler)
    return arrays, [r.getMessage() for r in records], final.split


def test_chips_apart_run_in_two_processes_as_one_after_another():
    alone, said_alone, split_alone = _final(1)
    two, said, split = _final(2)
    assert (split_alone, split) == (0, 2)
    for a, b in zip(alone, two, strict=True):
        assert a.tobytes() == b.tobytes()
    assert (two[0][42:50, 3:30] > 0).all() and (two[1][42:50, 3:30] == 2).all()   # the child's work came back
    assert [s.split(" in ")[0] for s in said] == [s.split(" in ")[0] for s in said_alone] == [
        "prepare 1", "drizzle 1", "after 1", "prepare 2", "drizzle 2", "after 2",
        "prepare 3", "drizzle 3", "after 3", "prepare 4", "drizzle 4", "after 4"]
    pids = {s.split(" in ")[0]: s.split(" in ")[1] for s in said if s.startswith("drizzle")}
    assert pids["drizzle 1"] == pids["drizzle 3"] == str(os.getpid()) != pids["drizzle 2"] == pids["drizzle 4"]


def test_batches_and_unmappable_chips_keep_the_one_after_another_result(monkeypatch):
    alone, said_alone, _ = _final(1)
    monkeypatch.setattr(drizzle_final, "HELD_PER_PROCESS", 1)   # two calls at a time: (1, 2), then (3, 4)
    batched, said, split = _final(2)
    assert split == 2 and [a.tobytes() for a in batched] == [a.tobytes() for a in alone]
    assert [s.split(" in ")[0] for s in said] == [s.split(" in ")[0] for s in said_alone]
    monkeypatch.setattr(drizzle_final, "HELD_PER_PROCESS", 4)
    unmapped, _, split = _final(2, unmappable=True)
    assert split == 0 and [a.tobytes() for a in unmapped] == [a.tobytes() for a in alone]


def test_a_childs_error_is_raised_with_the_log_kept():
    with pytest.raises(ValueError, match="chip 4: cannot"):
        _final(2, fail=4)
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())  # type: ignore[method-assign]
    LOG.addHandler(handler)
    try:
        with pytest.raises(ValueError):
            _final(2, fail=4)
    finally:
        LOG.removeHandler(handler)
    said = [r.split(" in ")[0] for r in records]
    assert said[:3] == ["prepare 1", "drizzle 1", "after 1"]
    assert said[-2:] == ["prepare 4", "drizzle 4"]   # the failing call's own record too
