"""WF3IR steps on a tiny synthetic ramp (20x20 raw, 5-pixel border): expected values from the
formulas of shared/reference/ir-calibration.md §5."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.science.calib.context import CalContext
from pipeline.science.calib.ir.early import BlevCorr, DqiCorr, ZoffCorr, ZsigCorr, keep_zero_read
from pipeline.science.calib.ir.late import NlinCorr, UnitCorr, divide_flat
from pipeline.science.calib.ir.ramp import Ramp, ReadHeaders
from pipeline.science.calib.ir.reftables import IRDetector, NlinData, RefPlanes, read_ir_detector, read_irramp_row
from pipeline.science.calib.ir.state import IRRun, noise_dn
from pipeline.simulate.irrefs import ccd_table, crrej_table, overscan_table

F32 = np.float32
N, SIZE = 4, 20
R = (slice(5, 15), slice(5, 15))


def _detector() -> IRDetector:
    return IRDetector(atodgain=(2.0, 2.5, 3.0, 3.5), readnoise=(20.0, 21.0, 22.0, 23.0), mean_gain=2.75,
                      ampx=12, ampy=12, nx=SIZE, ny=SIZE, trimx=(5, 5), trimy=(5, 5), biassect=((1, 4), (15, 18)))


def _run(tmp: Path, sci: np.ndarray | None = None, switches: dict[str, str] | None = None) -> IRRun:
    times = [0.0, 2.932, 27.933, 52.933][:N]
    sci = np.full((N, SIZE, SIZE), 11000.0, F32) if sci is None else sci
    headers = []
    for t in times:
        h = fits.Header([("SAMPTIME", t), ("LTV1", 0.0), ("LTV2", 0.0), ("BUNIT", "COUNTS")])
        headers.append(ReadHeaders(h, fits.Header(), fits.Header(), fits.Header(), fits.Header()))
    time = np.stack([np.full((SIZE, SIZE), t, F32) for t in times])
    ramp = Ramp(path=tmp / "x_raw.fits", primary=fits.Header([("CCDGAIN", 2.5)]), sci=sci,
                err=np.zeros_like(sci), dq=np.zeros(sci.shape, np.uint16), samp=np.zeros(sci.shape, np.int16),
                time=time, headers=headers, exptime=list(times), sampzero=times[1] - 0.020535,
                keywords=[{} for _ in times])
    ctx = CalContext(path=ramp.path, primary=ramp.primary, detector="IR", environ={})
    ctx.switches.update({"ZSIGCORR": "PERFORM", "NLINCORR": "PERFORM", "DQICORR": "PERFORM", **(switches or {})})
    return IRRun(ctx=ctx, ramp=ramp, det=_detector())


def _nlin(zsci: float = 11000.0, node: float = 30000.0, coef: tuple = (1e-3, 2e-6, -1e-11, 3e-16)) -> NlinData:
    shape = (SIZE, SIZE)
    return NlinData(coef=np.stack([np.full(shape, c, F32) for c in coef]), dq=np.zeros(shape, np.uint16),
                    node=np.full(shape, node, F32), zsci=np.full(shape, zsci, F32), zerr=np.full(shape, 4.0, F32))


def test_zero_read_signal_threshold_and_saturation_flags(tmp_path: Path) -> None:
    run = _run(tmp_path)
    run._nlin = _nlin()
    # quadrant B (rows/cols < 7): gain 2.5, read noise 21
    kept, dropped = F32(400.0), F32(30.0)
    for zs, above in ((kept, True), (dropped, False)):   # zsig >= 4 sqrt(noise(zsig)^2 + ZERR^2)
        e = noise_dn(np.array([zs], F32), 2.5, 21.0)[0]
        assert (zs >= 4.0 * np.sqrt(e * e + F32(16.0), dtype=F32)) == above
    run.ramp.sci[0][5, 5] += kept
    run.ramp.sci[0][5, 6] += dropped
    run.ramp.sci[0][6, 5] += F32(35000.0)          # zsig above NODE: zero read saturated
    run.ramp.sci[1][6, 6] += F32(31000.0)          # first read above NODE
    keep_zero_read(run)
    ZsigCorr().run(run)
    assert run.zsig is not None and run.zsig[5, 5] == kept and run.zsig[5, 6] == 0
    dq0, dq1 = run.ramp.dq[0], run.ramp.dq[1]
    assert dq0[5, 5] == 2048 and dq0[5, 6] == 0
    assert dq0[6, 5] == 256 | 2048 and dq1[6, 5] == 256 and dq1[6, 6] == 256 and dq0[6, 6] == 0
    assert run.ramp.sci[0][5, 5] == F32(11000.0) + kept + kept   # zero read += zsig
    assert run.zoff is not None and run.zoff.sci[5, 5] == F32(11000.0) + kept


def test_blev_is_one_resistant_mean_of_the_reference_columns(tmp_path: Path) -> None:
    sci = np.full((N, SIZE, SIZE), 100.0, F32)
    sci[:, :, 1:5] = 100.0                         # BIASSECTA
    sci[:, :, 15:19] = 102.0                       # BIASSECTB
    sci[:, 7, 2] = 60000.0                         # an outlier the resistant mean ignores
    sci[:, :, 0] = 50000.0                         # the outermost column is not used
    run = _run(tmp_path, sci)
    keep_zero_read(run)
    BlevCorr().run(run)
    level = F32((39 * 100.0 + 40 * 102.0) / 79)
    assert run.ramp.keywords[2]["MEANBLEV"] == level
    assert run.ramp.sci[2][0, 0] == F32(50000.0) - level      # whole image, reference pixels too
    ZoffCorr().run(run)
    assert np.all(run.ramp.sci[0] == 0) and run.ramp.exptime[1] == pytest.approx(2.932)


def test_nlin_polynomial_on_read_plus_zsig_and_forward_saturation(tmp_path: Path) -> None:
    run = _run(tmp_path, np.zeros((N, SIZE, SIZE), F32))
    coef = (1e-3, 2e-6, -1e-11, 3e-16)
    run._nlin = _nlin(coef=coef)
    run.zsig = np.zeros((SIZE, SIZE), F32)
    run.zsig_dq = np.zeros((SIZE, SIZE), np.uint16)
    run.zsig[8, 8], run.zsig_dq[8, 8] = F32(500.0), 2048
    run.ramp.sci[2][8, 8] = F32(10000.0)
    run.ramp.sci[1][9, 9] = F32(40000.0)           # above NODE in read 1
    NlinCorr().run(run)
    s = F32(10500.0)
    c = F32(1.0)
    for k, ck in enumerate(coef):
        c = F32(np.float64(c) + np.float64(F32(ck)) * np.float64(s) ** k)
    assert run.ramp.sci[2][8, 8] == F32(s * c) - F32(500.0)
    assert run.ramp.dq[2][8, 8] == 2048
    assert [int(run.ramp.dq[k][9, 9]) for k in range(N)] == [0, 256, 256, 256]
    assert run.ramp.sci[1][9, 9] == F32(40000.0)


def test_unitcorr_zero_read_uses_sampzero_and_zero_time_gives_zero(tmp_path: Path) -> None:
    run = _run(tmp_path, np.full((N, SIZE, SIZE), 100.0, F32))
    run.ramp.time[2][6, 6] = 0.0
    UnitCorr().run(run)
    assert run.ramp.sci[0][6, 6] == F32(100.0) * F32(1.0 / (2.932 - 0.020535))
    assert run.ramp.sci[2][6, 6] == 0.0 and run.ramp.sci[3][6, 6] == F32(100.0) / F32(52.933)
    assert run.ramp.sci[3][0, 0] == F32(100.0)     # reference pixels stay in counts


def test_flat_zero_gives_zero_science_and_error() -> None:
    sci = np.full((SIZE, SIZE), 10.0, F32)
    err = np.full((SIZE, SIZE), 1.0, F32)
    dq = np.zeros((SIZE, SIZE), np.uint16)
    shape = (SIZE, SIZE)
    flat = RefPlanes(np.full(shape, 2.0, F32), np.full(shape, 0.1, F32), np.zeros(shape, np.uint16))
    flat.sci[7, 7] = 0.0
    divide_flat(sci, err, dq, flat, R)
    assert sci[7, 7] == 0 and err[7, 7] == 0 and dq[7, 7] == 0
    f2 = F32(4.0)
    assert sci[8, 8] == F32(5.0) and err[8, 8] == np.sqrt(F32(1.0) / f2 + F32(100.0) * F32(0.1) * F32(0.1) / (f2 * f2),
                                                          dtype=F32)
    assert sci[0, 0] == 10.0


def test_bpixtab_in_raw_coordinates_runs_starting_off_the_image_skipped(tmp_path: Path) -> None:
    values = {"PIX1": [1, 18, 25], "PIX2": [1, 3, 4], "LENGTH": [3, 10, 5], "AXIS": [2, 1, 1], "VALUE": [4, 16, 32],
              "CCDCHIP": [1, 1, 1]}
    cols = [fits.Column(name=k, format="I", array=v) for k, v in values.items()]
    table = fits.BinTableHDU.from_columns(cols, name="BPX")
    table.header["SIZAXIS1"], table.header["SIZAXIS2"] = SIZE, SIZE
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(tmp_path / "bpx.fits")
    run = _run(tmp_path)
    run.ctx.primary["BPIXTAB"] = str(tmp_path / "bpx.fits")
    DqiCorr().run(run)
    dq = run.ramp.dq[3]
    assert [int(dq[y, 0]) for y in range(4)] == [4, 4, 4, 0]         # border pixels included
    assert list(dq[2, 17:20]) == [16, 16, 16] and dq[3].max() == 0  # clipped at the edge; x=24 skipped
    assert np.array_equal(run.ramp.dq[0], dq)                        # every read


def test_oscntab_last_matching_row_wins_and_crrej_irramp_row(tmp_path: Path) -> None:
    fits.HDUList(ccd_table()).writeto(tmp_path / "ccd.fits")
    osc = overscan_table()
    data = osc[1].data
    extra = fits.BinTableHDU.from_columns(osc[1].columns, nrows=len(data) + 1, name="OSC")
    extra.data[-1] = data[0]
    extra.data["BIASSECTA1"][-1] = 3
    fits.HDUList([osc[0], extra]).writeto(tmp_path / "osc.fits")
    det = read_ir_detector(tmp_path / "ccd.fits", tmp_path / "osc.fits", ccdgain=2.5, chip=1, nx=1024, ny=1024)
    assert det.biassect[0] == (2, 4) and det.mean_gain == float(F32(F32(F32(F32(2.34) + F32(2.37)) + F32(2.31))
                                                                   + F32(2.38)) / F32(4))
    crr = crrej_table()
    crr[1].data["MEANEXP"][:] = 3600.0
    crr.writeto(tmp_path / "crr.fits")
    par = read_irramp_row(tmp_path / "crr.fits", nsamp=40, exptime=300.0)
    assert par.crsplit == 16 and par.thresh == 4.0 and par.badinpdq == 39
