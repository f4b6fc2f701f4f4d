"""Raw geometry of the simulated chips against ccd-calibration.md §7.1/§8 and detectors.md."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from pipeline.simulate.detector import Detector
from pipeline.simulate.geometry import (
    ACS_WFC,
    PRESCAN,
    VIRTUAL,
    WFC3_UVIS,
    corner_subarray,
    full_frame,
    readout_for,
)
from pipeline.simulate.reffiles import RefSpec, overscan_table


def test_uvis_full_frame_columns_and_rows():
    ro = full_frame(WFC3_UVIS)
    chip2, chip1 = ro.chips
    assert (chip2.chip, chip1.chip) == (2, 1)  # extension 1 is chip 2
    assert chip2.shape == chip1.shape == (2070, 4206)
    cols = chip2.col_det
    assert np.all(cols[:25] == PRESCAN) and np.all(cols[4181:] == PRESCAN)
    assert np.array_equal(cols[25:2073], np.arange(2048))
    assert np.all(cols[2073:2133] == VIRTUAL)
    assert np.array_equal(cols[2133:4181], np.arange(2048, 4096))
    # 19 parallel virtual rows at the chip-gap edge: top of chip 2, bottom of chip 1
    assert np.all(chip2.row_det[2051:] == VIRTUAL) and chip2.row_det[2050] == 2050
    assert np.all(chip1.row_det[:19] == VIRTUAL) and chip1.row_det[19] == 0
    assert chip2.ltv == (25.0, 0.0) and chip1.ltv == (25.0, 19.0)
    assert chip2.trimmed_shape == (2051, 4096)
    # amplifiers: C/D on chip 2, A/B on chip 1, split after the left amp's virtual overscan
    amps = chip2.amp_of_col()
    assert amps[2102] == "C" and amps[2103] == "D"
    assert set(chip1.amp_of_col()) == {"A", "B"}


def test_acs_full_frame():
    ro = full_frame(ACS_WFC)
    chip2, chip1 = ro.chips
    assert chip2.shape == (2068, 4144)
    assert np.all(chip2.col_det[:24] == PRESCAN) and np.all(chip2.col_det[-24:] == PRESCAN)
    assert not np.any(chip2.col_det == VIRTUAL)
    assert chip2.ltv == (24.0, 0.0) and chip1.ltv == (24.0, 20.0)
    assert chip1.trimmed_shape == (2048, 4096)


@pytest.mark.parametrize(("camera", "amp", "aperture", "ltv", "chip"), [
    (WFC3_UVIS, "C", "UVIS2-C512C-SUB", (25.0, 0.0), 2),
    (ACS_WFC, "A", "WFC1A-512", (24.0, -1536.0), 1),
])
def test_corner_subarray(camera, amp, aperture, ltv, chip):
    ro = corner_subarray(camera, amp, aperture)
    (part,) = ro.chips
    assert ro.subarray and ro.ccdamp == amp and part.chip == chip
    assert part.shape == (512, 512)
    assert part.ltv == ltv
    assert part.trimmed_shape == (512, 512 - camera.prescan)
    assert np.all(part.col_det[:camera.prescan] == PRESCAN)
    assert set(part.amp_of_col()) == {amp}
    assert not np.any(part.row_det == VIRTUAL)  # the amplifier corner holds no virtual rows


def test_embed_and_trim_round_trip():
    part = readout_for("wfc3", "full").chips[1]
    sci = np.arange(np.prod(part.trimmed_shape), dtype=np.float32).reshape(part.trimmed_shape)
    raw = part.embed(sci, fill=-1)
    assert raw.shape == part.shape
    assert np.array_equal(part.trim(raw), sci)
    assert np.all(raw[:19] == -1) and np.all(raw[:, 2073:2133] == -1)


def test_oscntab_rows_point_into_the_overscan():
    det = Detector("wfc3")
    table = overscan_table(det, RefSpec("oscntab", "wfc3"), "x_osc.fits", datetime(2009, 5, 14))
    rows = table[1].data
    full = rows[rows["CCDAMP"] == "ABCD"]
    for row in full:
        part = full_frame(WFC3_UVIS).chips[0 if row["CCDCHIP"] == 2 else 1]
        cols = part.col_det
        for a, b in (("BIASSECTC1", "BIASSECTC2"), ("BIASSECTD1", "BIASSECTD2")):
            assert np.all(cols[row[a] - 1:row[b]] == VIRTUAL)
        for a, b in (("BIASSECTA1", "BIASSECTA2"), ("BIASSECTB1", "BIASSECTB2")):
            assert np.all(cols[row[a] - 1:row[b]] == PRESCAN)
        assert np.all(part.row_det[row["VY1"] - 1:row["VY2"]] == VIRTUAL)
        assert (row["TRIMY1"], row["TRIMY2"]) == ((19, 0) if row["CCDCHIP"] == 1 else (0, 19))
        assert (row["TRIMX1"], row["TRIMX2"], row["TRIMX3"], row["TRIMX4"]) == (25, 25, 30, 30)
