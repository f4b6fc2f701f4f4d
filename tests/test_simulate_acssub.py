"""The simulator's ACS/WFC supported subarrays (WFC1A/1B/2C/2D-2K/1K/512): readout geometry with
the prescan on the amp's side, OSCNTAB rows, CTE trails in their raws (away from the amp, in both
directions), and calacs.e against the built-in engine on a trailed subarray downlink (flt, flc,
crj, crc of a dithered and a CR-SPLIT pair) where hstcal is installed."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.asntable import read_asn_table
from pipeline.simulate.ctefiles import add_acs_trails
from pipeline.simulate.detector import Detector
from pipeline.simulate.geometry import PRESCAN, VIRTUAL, readout_for, wfc_subarray
from pipeline.simulate.reffiles import RefSpec, overscan_table
from tests.test_calib_cte_subarray import cte_downlink, engines_agree

CALACS = shutil.which("calacs.e")  # real hstcal only where it is installed


def test_supported_subarrays_read_their_amps_corner_with_its_prescan() -> None:
    (b1k,) = wfc_subarray("WFC1B-1K").chips
    assert (b1k.chip, b1k.shape, b1k.trimmed_shape) == (1, (1024, 1048), (1024, 1024))
    assert np.all(b1k.col_det[-24:] == PRESCAN) and b1k.det_x[-1] == 4095    # B: prescan at the right end
    assert b1k.det_y[-1] == 2047                                              # chip 1 reads out at the top
    (c2k,) = readout_for("acs", "wfc2c-2k").chips
    assert (c2k.chip, c2k.shape, c2k.trimmed_shape) == (2, (2068, 2072), (2048, 2048))
    assert np.all(c2k.row_det[-20:] == VIRTUAL) and c2k.det_x[0] == 0          # virtual rows after the image
    assert wfc_subarray("WFC2D-512").ccdamp == "D" and wfc_subarray("WFC2D-512").chips[0].shape == (512, 536)
    with pytest.raises(ValueError, match="WFC1A/WFC1B/WFC2C/WFC2D"):
        wfc_subarray("WFC1C-1K")


def test_oscntab_has_a_row_per_subarray_with_the_prescan_on_its_side() -> None:
    det = Detector("acs")
    table = overscan_table(det, RefSpec("oscntab", "acs"), "x_osc.fits", datetime(2009, 5, 14))
    rows = {(r["CCDAMP"], int(r["NX"]), int(r["NY"])): r for r in table[1].data}
    b = rows[("B", 1048, 1024)]
    assert (b["TRIMX1"], b["TRIMX2"], b["BIASSECTB1"], b["BIASSECTB2"], b["BIASSECTA1"]) == (0, 24, 1027, 1046, 0)
    c = rows[("C", 2072, 2068)]
    assert (c["TRIMX1"], c["TRIMX2"], c["TRIMY1"], c["TRIMY2"]) == (24, 0, 0, 20)
    assert (c["VY1"], c["VY2"]) == (2052, 2068)                                  # 1-based, inside the virtual rows


def test_subarray_trails_run_away_from_the_amp_in_both_directions() -> None:
    charge = np.full((300, 200), 5.0, np.float32)
    charge[150, 100] += 5000.0
    trailed = add_acs_trails(charge, 2, expstart=58500.0, ccdamp="D")   # amp D: bottom right of chip 2
    assert trailed[150, 100] < charge[150, 100]
    up, down = (trailed[151:171, 100] - 5.0).sum(), (trailed[130:150, 100] - 5.0).sum()
    left, right = (trailed[150, 80:100] - 5.0).sum(), (trailed[150, 101:121] - 5.0).sum()
    assert up > 0.2 and down < 0                                          # parallel: up, away from the register
    assert left > 0.02 and right < 0                                      # serial: to the left, away from D
    lost = charge.sum(dtype=np.float64) - trailed.sum(dtype=np.float64)  # still in traps, or past the last row
    assert 0 < lost < 1e-3 * charge.sum(dtype=np.float64)


@pytest.mark.long
@pytest.mark.skipif(CALACS is None, reason="calacs.e (hstcal) not installed")
def test_real_calacs_agrees_bit_for_bit_on_a_trailed_wfc2d_512_downlink(tmp_path: Path, monkeypatch) -> None:
    raws, env = cte_downlink(tmp_path, monkeypatch, "acs", "WFC2D-512", seed=7)
    for asn in sorted(raws.glob("*_asn.fits")):
        table = read_asn_table(asn)
        expected = {f"{m}_{s}.fits" for m in table.members for s in ("flt", "flc")}
        if table.asn_type == "CR-SPLIT":
            expected |= {f"{table.products[0]}_{s}.fits" for s in ("crj", "crc")}
        keys = ("PCTECORR", "CTE_NAME", "CTE_VER", "APERTURE", "DRKCFILE")
        for a, _ in engines_agree(asn, expected, tmp_path / "work" / asn.name[:9], env, keys):
            assert a["PCTECORR"] == "COMPLETE" and a["SUBARRAY"]
