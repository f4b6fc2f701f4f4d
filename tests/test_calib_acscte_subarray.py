"""PCTECORR on ACS/WFC subarrays (calacs 10.5.0 ACSCTE): the amp layout and column scaling of
``get_amp_array_size_acs_cte``/``doPCTEGen3`` worked out by hand, the forward model and its
correction on a one-amp subarray, and the whole step against the real acscte.e (blv subarrays of
every amp, square and not, before and after SM4) and calacs.e (a simulated trailed subarray raw
through ``--engine compare``) where hstcal is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.core.errors import BadInput
from pipeline.science.calib.cte import acs
from pipeline.science.calib.cte.acs_pctetab import read_acs_pctetab
from pipeline.simulate.ctefiles import acs_trap_set, write_acs_pctetab

ACSCTE = shutil.which("acscte.e")  # real hstcal only where it is installed
CALACS = shutil.which("calacs.e")
#: a SCLBYCOL that differs in every CDAB column, so a wrong column offset cannot go unseen
RAMP = 1.0 + np.arange(8192) / 4096.0


def _run(blv: Path, root: Path) -> tuple[object, object]:
    from pipeline.science.calib.builtin import new_context
    from pipeline.science.calib.imageio import read_exposure

    exposure = read_exposure(blv)
    ctx = new_context(exposure, site=None, environ={"jref": f"{root}/"}, log=None)
    ctx.read_switches(("BLEVCORR", "PCTECORR"))
    return exposure, acs.run(ctx, exposure)


def test_amp_regions_follow_get_amp_array_size_acs_cte() -> None:
    full = acs.amp_regions((2048, 4096), "CD", 2048, 2068)
    assert [(a, r[1].start, r[1].stop, r[0].stop, off) for a, r, off in full] == \
           [("C", 0, 2048, 2048, 0), ("D", 2048, 4096, 2048, 2048)]
    assert [off for _, _, off in acs.amp_regions((2048, 4096), "AB", 2048, 2068)] == [4096, 6144]
    # one amp: the whole subarray at the amp's first CDAB column, wherever the subarray sits;
    # B and D (AMPX 0 in the CCDTAB) take the scaling of the first columns of A and C (calacs 10.5)
    for amp, ampx, offset in (("A", 1024, 4096), ("B", 0, 4096), ("C", 1024, 0), ("D", 0, 0)):
        ((got, region, off),) = acs.amp_regions((2046, 2048) if ampx == 0 else (1024, 1024), amp, ampx, 0)
        assert (got, off) == (amp, offset)
        assert region == (slice(0, 2046 if ampx == 0 else 1024), slice(0, 2048 if ampx == 0 else 1024))
    assert acs.chip_amps("B", 1) == "B" and acs.chip_amps("B", 2) == "" and acs.chip_amps("DABC", 2) == "CD"


def test_a_b_subarray_gets_the_column_scaling_of_amp_a(tmp_path: Path) -> None:
    par = read_acs_pctetab(write_acs_pctetab(tmp_path / "t_cte.fits", column_scale=RAMP)).sets["parallel"]
    ((_, _, offset),) = acs.amp_regions((64, 48), "B", 0, 0)
    m = acs.trap_map(par, 64, 48, offset, 1.0)                  # (columns, rows)
    for j in (0, 17, 47):
        row = int(np.flatnonzero(par.iz == 4096 + j)[0])
        assert m[j, 0] == np.float32(par.scale[row, 0] * (1 / 2048.0))
    assert m[0, 0] == np.float32(RAMP[4096] * np.float32(0.9) / 2048.0)


def test_serial_rotation_of_a_rectangular_amp_round_trips() -> None:
    sci = np.arange(6 * 11, dtype=np.float32).reshape(6, 11)
    for amp in "ABCD":
        turned = acs._rotate(sci, amp)
        assert turned.shape == (11, 6)
        assert np.array_equal(acs._derotate(turned, amp), sci)


def test_correction_removes_the_simulators_trails_from_a_one_amp_subarray(tmp_path: Path) -> None:
    """Truth -> :func:`acs.trail_chip` (the simulator's readout: parallel, then serial) -> ACSCTE on
    a rectangular amp-B subarray: a star ~900 transfers from the amp loses ~6 % to its trails and
    gets it back to within 1 % (calacs's inversion, with NITFOR 5, overshoots by ~1.3 % once the
    loss is 10 %). Read noise 0.05 e- in the CCDTAB turns calacs's smoothing off (< 0.1), so
    what is left is the inversion of the readout model."""
    from tests.acs_cte_synth import build

    blv = build(tmp_path, shape=(1000, 200), nstars=0, ccdamp="B", expstart=58500.0, sky=0.0, nfor=5, npar=3,
                serial_npar=2, column_scale=RAMP, parallel=acs_trap_set(density=3.0))
    with fits.open(tmp_path / "wfc_ccd.fits", mode="update") as h:
        h[1].data["READNSEB"] = 0.05
    table = read_acs_pctetab(tmp_path / "wfc_cte.fits")
    yy, xx = np.mgrid[-3:4, -3:4]
    truth = np.full((1000, 200), 2.0, np.float32)
    truth[100:107, 57:64] += (2000.0 * np.exp(-(xx ** 2 + yy ** 2) / 2.42) / (2.42 * np.pi)).astype(np.float32)
    with fits.open(blv, mode="update") as h:
        h["SCI", 1].data = acs.trail_chip(truth, table, 1, expstart=58500.0, ccdamp="B")
        h["ERR", 1].data = np.full_like(truth, 4.0)
        trailed = h["SCI", 1].data.copy()

    def flux(a: np.ndarray) -> float:
        return float(a[97:110, 54:67].sum(dtype=np.float64) - 2.0 * 13 * 13)

    assert flux(trailed) < 0.95 * flux(truth)
    assert (trailed[70:100, 60] - 2.0).sum() > 5.0               # the parallel trail: chip 1 reads out at the top
    _, out = _run(blv, tmp_path)
    sci = out.imsets[0].sci  # type: ignore[attr-defined]
    assert abs(flux(sci) / flux(truth) - 1) < 0.01
    assert "serial - Amp B" in " ".join(str(h) for h in out.primary["HISTORY"])  # type: ignore[attr-defined]


def test_a_full_frame_header_on_a_cut_image_is_refused(tmp_path: Path) -> None:
    from pipeline.science.calib.builtin import blc_phase
    from pipeline.science.calib.imageio import read_exposure
    from tests.acs_cte_synth import build

    blv = read_exposure(build(tmp_path, shape=(64, 128), nstars=3))
    with pytest.raises(BadInput, match="SUBARRAY = F but imset 1 is 128 x 64"):
        blc_phase(blv, environ={"jref": f"{tmp_path}/"})
    sub = replace(blv, primary=blv.primary.copy(), imsets=blv.imsets[:1])
    sub.primary.update(SUBARRAY=True, CCDAMP="C")
    out = blc_phase(sub, environ={"jref": f"{tmp_path}/"})
    assert out is not None and out.primary["PCTECORR"] == "COMPLETE"


@pytest.mark.skipif(ACSCTE is None, reason="calacs's acscte.e is not on PATH (hstcal not installed)")
@pytest.mark.parametrize(("amp", "shape", "expstart"), [("B", (300, 200), 58500.0), ("A", (200, 312), 58500.0),
                                                        ("C", (256, 256), 58500.0), ("D", (150, 260), 53500.0)])
def test_subarrays_match_acscte_bit_for_bit(tmp_path: Path, amp: str, shape: tuple[int, int],
                                            expstart: float) -> None:
    from tests.acs_cte_synth import build

    blv = build(tmp_path, shape=shape, nstars=40, ccdamp=amp, expstart=expstart, nfor=3, npar=2, serial_npar=2,
                column_scale=RAMP, parallel=acs_trap_set(active=8),
                serial=acs_trap_set(active=5, density=0.1, scale=4.0))
    blc = tmp_path / "jcte01abq_blc_tmp.fits"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "jref": f"{tmp_path}/"}
    done = subprocess.run([str(ACSCTE), str(blv), str(blc)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert blc.is_file(), done.stdout[-2000:]
    exposure, out = _run(blv, tmp_path)
    with fits.open(blc) as ref:
        (im,) = out.imsets  # type: ignore[attr-defined]
        assert np.array_equal(im.sci, ref["SCI", 1].data)
        assert np.array_equal(im.err, ref["ERR", 1].data)
        assert not np.array_equal(im.sci, exposure.imsets[0].sci)  # type: ignore[attr-defined]
        history = [str(h) for h in ref[0].header["HISTORY"]]
        ours = [str(h) for h in out.primary["HISTORY"]]  # type: ignore[attr-defined]
        assert [h for h in history if h in ours] == ours
        assert any(h.startswith("CORRTYPE serial - Amp") for h in ours) == (expstart >= acs.SM4MJD)
