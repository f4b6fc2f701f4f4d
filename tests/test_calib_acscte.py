"""The ACS/WFC pixel-based CTE correction (calacs 10.5 ACSCTE): sub-steps against values worked out
by hand from calacs's source (``ctegen2.c``, ``dopcte-gen3.c``), and the whole step against the real
acscte.e where it is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.core.errors import BadInput, MissingReference
from pipeline.science.calib.cte import acs, acs_kernels
from pipeline.science.calib.cte.acs_pctetab import read_acs_pctetab, with_header_overrides
from pipeline.simulate.ctefiles import acs_trap_set, write_acs_pctetab


@pytest.fixture(scope="module")
def table(module_tmp) -> object:
    return read_acs_pctetab(write_acs_pctetab(module_tmp("pcte") / "t_cte.fits"))


def test_pctetab_has_the_parallel_set_and_one_serial_set_per_amp(table: object) -> None:
    sets = table.sets  # type: ignore[attr-defined]
    assert sorted(sets) == ["A", "B", "C", "D", "parallel"]
    par = sets["parallel"]
    assert (par.nfor, par.npar, par.tlen, par.ntraps) == (5, 7, 60, 20)
    assert sets["A"].npar == 3 and sets["A"].ntraps == 12
    assert par.qlev.shape == (9999,) and par.rprof.shape == (100, 9999) and par.scale.shape == (8192, 4)


def test_an_older_pctetab_generation_is_refused(tmp_path: Path) -> None:
    path = write_acs_pctetab(tmp_path / "old_cte.fits")
    with fits.open(path, mode="update") as h:
        h[0].header["CTE_NAME"] = "PixelCTE 2017"
    with pytest.raises(MissingReference, match="obsolete"):
        read_acs_pctetab(path)


def test_header_overrides_follow_getCTEParsFromImageHeader(table: object) -> None:
    par = table.sets["parallel"]  # type: ignore[attr-defined]
    out = with_header_overrides(par, {"PCTENFOR": 3, "PCTENPAR": 1, "PCTENSMD": 2, "FIXROCR": 0}, Path("x"))
    assert (out.nfor, out.npar, out.nsmd, out.fixrocr) == (3, 7, 2, 0)   # PCTENPAR 1 is not > 1
    assert with_header_overrides(par, {}, Path("x")) == par
    with pytest.raises(BadInput, match="FIXROCR"):
        with_header_overrides(par, {"FIXROCR": 2}, Path("x"))


def test_trap_map_interpolates_the_column_scaling_between_rows(table: object) -> None:
    par = table.sets["parallel"]  # type: ignore[attr-defined]
    # SENS_0512..2048 = 0.9, 1.0, 1.05, 1.1 (float32) in every column; amp D starts at CDAB column 2048
    m = acs.trap_map(par, 2048, 2048, 2048, 1.5)
    s = par.scale[2048]
    assert m.shape == (2048, 2048) and np.all(m == m[0])
    assert m[0, 0] == np.float32(s[0] * (1 / 2048.0) * 1.5)
    assert m[0, 768] == np.float32((s[1] + (s[2] - s[1]) * 0.5) * (769 / 2048.0) * 1.5)
    assert m[0, 2047] == np.float32((s[2] + (s[3] - s[2]) * (2.999 - 2)) * 1.0 * 1.5)   # ro capped at 2.999


@pytest.mark.parametrize("amp", "ABCD")
def test_rotation_turns_the_serial_direction_into_rows_away_from_the_amp(amp: str) -> None:
    ny, nx = 6, 5
    x = np.arange(nx)
    distance = x if amp in "AC" else nx - 1 - x                  # A, C read out at the left, B, D at the right
    sci = np.repeat(distance[None, :], ny, axis=0).astype(np.float32)
    turned = acs._align(acs._rotate(sci, amp), amp)
    assert np.array_equal(turned, np.repeat(np.arange(nx)[:, None], ny, axis=1))
    assert np.array_equal(acs._derotate(acs._rotate(sci, amp), amp), sci)


def test_readout_fills_a_trap_then_releases_it_up_the_column() -> None:
    qlev = np.full(9999, 999999.0)
    qlev[0] = 1.0
    dpde = np.zeros(9999)
    dpde[0] = 2.0
    rprof = np.zeros((9999, 60))
    rprof[0, :4] = [0.5, 0.25, 0.125, 0.125]
    col = np.zeros(40)
    col[5] = 100.0
    traps = np.full(40, 0.5, np.float32)
    acs_kernels._readout(col, traps, np.zeros(40, np.bool_), qlev, dpde / 1, rprof, np.zeros_like(rprof), 1, 60)
    # the trap takes DPDE_W x scaling = 1 e- from row 5 and gives it back over the next rows
    assert col[5] == 99.0
    assert col[6:10].tolist() == [0.5, 0.25, 0.125, 0.125]
    assert col.sum() == 100.0


def test_cr_oversubtraction_lowers_the_scaling_from_the_cosmic_ray_to_the_hole() -> None:
    n = 60
    model, obs = np.zeros(n), np.zeros(n)
    model[30] = -20.0                                            # below PCTETRSH and below the observation
    model[24], obs[24] = 500.0, 400.0                            # the readout CR: largest model - obs before it
    traps = np.ones(n, np.float32)
    assert acs_kernels._cr_oversubtraction(traps, model, obs, -10.0)
    # the hole is found three times: as the triple from row 28, the pair from 29, the single pixel at 30
    assert traps[24:31].tolist() == [0.75 ** 3] * 5 + [0.75 ** 2, 0.75]
    assert np.all(traps[:24] == 1) and np.all(traps[31:] == 1)


def test_smoothing_keeps_an_image_without_read_noise_and_pulls_noise_towards_neighbours() -> None:
    flat = np.full((8, 50), 30.0, np.float32)
    assert np.array_equal(acs_kernels.smooth(flat, 4.0), flat)
    rng = np.random.default_rng(2)
    noisy = (30 + rng.normal(0, 4, (8, 200))).astype(np.float32)
    smooth = acs_kernels.smooth(noisy, 4.0)
    assert np.std(np.diff(smooth, axis=1)) < 0.8 * np.std(np.diff(noisy, axis=1))
    assert np.array_equal(acs_kernels.smooth(noisy, 0.05), noisy)          # rn < 0.1: no mitigation


def test_correction_adds_ten_percent_of_itself_to_err_in_quadrature(table: object) -> None:
    par = replace(table.sets["parallel"], nfor=2, npar=2)  # type: ignore[attr-defined]
    rng = np.random.default_rng(4)
    sci = rng.normal(15.0, 4.0, (256, 16)).astype(np.float32)
    sci[200, 8] = 20000.0
    err = np.full_like(sci, 4.5)
    new_sci, new_err = acs.correct_amp(sci, err, par, amp="C", serial=False, rn=4.25, column_offset=0,
                                       scale_frac=3.0)
    delta = new_sci.astype(np.float64) - sci
    assert delta[200, 8] > 1.0                                   # the star gets back what its trail holds
    assert delta[201:230, 8].sum() < -0.5                        # taken from the trail
    expect = np.sqrt(4.5 ** 2 + (0.1 * np.abs(delta)) ** 2)
    assert np.allclose(new_err, expect, rtol=1e-5, atol=1e-5)


def _acscte() -> str | None:
    return shutil.which("acscte.e")


@pytest.mark.skipif(_acscte() is None, reason="calacs's acscte.e is not on PATH (hstcal not installed)")
def test_full_frame_matches_acscte_bit_for_bit(tmp_path: Path) -> None:
    from pipeline.science.calib.builtin import new_context
    from pipeline.science.calib.imageio import read_exposure
    from tests.acs_cte_synth import build

    blv = build(tmp_path, nstars=300, nfor=3, npar=2, serial_npar=2,
                parallel=acs_trap_set(active=8), serial=acs_trap_set(active=5, density=0.1, scale=4.0))
    blc = tmp_path / "jcte01abq_blc_tmp.fits"
    env = {**os.environ, "OMP_NUM_THREADS": "2", "jref": f"{tmp_path}/"}
    done = subprocess.run([_acscte(), str(blv), str(blc)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert blc.is_file(), done.stdout[-2000:]
    exposure = read_exposure(blv)
    ctx = new_context(exposure, site=None, environ={"jref": f"{tmp_path}/"}, log=None)
    ctx.read_switches(("BLEVCORR", "PCTECORR"))
    out = acs.run(ctx, exposure)
    with fits.open(blc) as ref:
        for k, im in enumerate(out.imsets, start=1):
            assert np.array_equal(im.sci, ref["SCI", k].data), f"imset {k} SCI"
            assert np.array_equal(im.err, ref["ERR", k].data), f"imset {k} ERR"
            ref_dq = ref["DQ", k].data                          # hstcal writes an all-zero DQ as a constant
            assert np.array_equal(im.dq, np.zeros_like(im.dq) if ref_dq is None else ref_dq)
            assert not np.array_equal(im.sci, exposure.imsets[k - 1].sci)
        assert ref[0].header["PCTECORR"] == "COMPLETE" and ctx.switches["PCTECORR"] == "COMPLETE"
        assert ref[0].header["CTE_NAME"] == ctx.primary_updates["CTE_NAME"]
        history = [str(h) for h in ref[0].header["HISTORY"]]
        assert [h for h in history if h.startswith(("PCTEFRAC", "CORRTYPE", "PCTENPAR"))] == \
               [h for h in out.primary["HISTORY"] if h.startswith(("PCTEFRAC", "CORRTYPE", "PCTENPAR"))]


def test_blc_phase_runs_only_for_wfc_with_pctecorr_perform(tmp_path: Path) -> None:
    from pipeline.science.calib.builtin import blc_phase
    from pipeline.science.calib.imageio import read_exposure
    from tests.acs_cte_synth import build

    blv = read_exposure(build(tmp_path, shape=(64, 128), nstars=3))
    for key, value in (("PCTECORR", "OMIT"), ("DETECTOR", "HRC")):
        other = replace(blv, primary=blv.primary.copy())
        other.primary[key] = value
        assert blc_phase(other, environ={"jref": f"{tmp_path}/"}) is None, key
    with pytest.raises(BadInput, match="not a trimmed full chip"):     # 64 x 128 chips are no full frame
        blc_phase(blv, environ={"jref": f"{tmp_path}/"})
