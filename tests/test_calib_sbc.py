"""ACS/SBC in the built-in engine: one test per calacs quirk of Part A, values from the notes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.core.errors import BadInput, Unsupported
from pipeline.science.calib import builtin
from pipeline.science.calib.api import calibrate
from pipeline.science.calib.compare import compare_input
from pipeline.science.calib.steps.mama import disc_offsets, flag_local, global_linearity_ratio
from pipeline.simulate import acsrefs, sbc


@pytest.fixture(scope="module")
def refs(module_tmp) -> dict[str, Path]:
    return sbc.write_references(module_tmp("jref"))


def _run(tmp_path: Path, refs: dict[str, Path], *, raw_edit=None, **kw) -> fits.HDUList:  # type: ignore[no-untyped-def]
    raw = tmp_path / "jsbc01abq_raw.fits"
    sbc.write_raw(raw, refs, **kw)
    if raw_edit is not None:
        with fits.open(raw, mode="update") as h:
            raw_edit(h)
    env = {"jref": str(refs["MLINTAB"].parent) + "/"}
    out = builtin.calibrate_exposure(raw, tmp_path, environ=env)
    return fits.open(out)


def test_newton_is_exactly_three_steps() -> None:
    y, tau = 150000.0, 2.0e-6
    x = y
    for _ in range(3):
        e = np.exp(-tau * x)
        x = x + (y - x * e) / ((1 - tau * x) * e)
    assert global_linearity_ratio(y, tau) == x / y
    assert global_linearity_ratio(0.0, tau) == 1.0
    # three steps are not the converged root when tau*y is large: the quirk matters
    for _ in range(20):
        e = np.exp(-tau * x)
        x = x + (y - x * e) / ((1 - tau * x) * e)
    assert global_linearity_ratio(y, tau) != x / y


def test_local_disc_shapes() -> None:
    assert len(disc_offsets(np.float32(1.5))) == 9        # the 3x3 box
    assert sorted(disc_offsets(np.float32(1.0))) == [(-1, 0), (0, -1), (0, 0), (0, 1), (1, 0)]
    sci = np.zeros((5, 5), np.float32)
    sci[0, 0] = 11.0
    dq = np.zeros((5, 5), np.uint16)
    assert flag_local(sci, dq, 10.0, np.float32(1.0)) == 1
    assert dq[0, 0] == dq[0, 1] == dq[1, 0] == 256 and dq[1, 1] == 0   # clipped at the image edge


def test_base_product(tmp_path: Path, refs: dict[str, Path]) -> None:
    h = _run(tmp_path, refs)
    dq = h["DQ"].data
    assert h["SCI"].header["BUNIT"] == "ELECTRONS" and h["ERR"].header["BUNIT"] == "ELECTRONS"
    assert h["SCI"].header["GLOBLIM"] == "NOT-EXCEEDED"
    assert h["SCI"].header["MEANDARK"] == 0.0
    assert np.all(dq[300:303, 700] & 16)                 # the dark's DQ is OR-ed in
    assert np.count_nonzero(dq & 256) > 0                # the bright sources trip LFLGCORR
    assert np.all(dq[-1, :] & 4) and np.all(dq[39:89, 511] & 16)  # BPIXTAB runs along x and y
    for s in ("DQICORR", "GLINCORR", "LFLGCORR", "DARKCORR", "FLATCORR", "PHOTCORR"):
        assert h[0].header[s] == "COMPLETE"
    assert "PHOTFLAM" not in h[0].header                  # SCI header only for ACS
    assert h["SCI"].header["PHOTMODE"] == "ACS SBC F115LP MJD#56000.2500"


def test_dark_subtracts_nothing_even_with_darktime(tmp_path: Path, refs: dict[str, Path]) -> None:
    def darktime(h: fits.HDUList) -> None:
        h[0].header["DARKTIME"] = 500.0

    with_dark = _run(tmp_path, refs, raw_edit=darktime)
    (tmp_path / "b").mkdir()
    no_dark = _run(tmp_path / "b", refs, switches={"DARKCORR": "OMIT"})
    assert np.array_equal(with_dark["SCI"].data, no_dark["SCI"].data)
    assert np.array_equal(with_dark["ERR"].data, no_dark["ERR"].data)
    assert with_dark["SCI"].header["MEANDARK"] == 0.0
    assert np.all(with_dark["DQ"].data[300:303, 700] & 16) and not np.any(no_dark["DQ"].data[300:303, 700] & 16)


def test_err_init_on_negative_and_small_counts(tmp_path: Path, refs: dict[str, Path]) -> None:
    def plant(h: fits.HDUList) -> None:
        h[1].data[10, 10] = -3
        h[1].data[10, 11] = 4

    f = _run(tmp_path, refs, raw_edit=plant, switches={"FLATCORR": "OMIT", "GLINCORR": "OMIT"})
    assert f["ERR"].data[10, 10] == np.float32(np.sqrt(3.0))
    assert f["ERR"].data[10, 11] == np.float32(2.0)
    assert f["ERR"].data[f["SCI"].data == 0].min() == 1.0


def test_global_limit_exceeded_turns_correction_off(tmp_path: Path, refs: dict[str, Path]) -> None:
    def high(h: fits.HDUList) -> None:
        h[1].header["GLOBRATE"] = sbc.GLOBAL_LIMIT * 1.01

    f = _run(tmp_path, refs, raw_edit=high, switches={"FLATCORR": "OMIT"})
    raw = fits.getdata(tmp_path / "jsbc01abq_raw.fits", 1).astype(np.float32)
    assert f["SCI"].header["GLOBLIM"] == "EXCEEDED"
    assert np.array_equal(f["SCI"].data, raw)             # no linearity factor
    assert np.count_nonzero(f["DQ"].data & 256) > 0        # local flags still set


def test_no_bpixtab_row_sets_placeholder_at_1_1(tmp_path: Path, refs: dict[str, Path]) -> None:
    other = tmp_path / "other_bpx.fits"
    acsrefs.bpixtab("SBC", other.name, [(5, 5, 3, 1, 4)], (1024, 1024)).writeto(other)
    with fits.open(other, mode="update") as h:
        h[1].data["CCDCHIP"][:] = 2
    (tmp_path / "jref").mkdir()
    local = {k: Path(tmp_path / "jref" / p.name) for k, p in refs.items()}
    for k, p in refs.items():
        local[k].write_bytes(p.read_bytes())
    (tmp_path / "jref" / other.name).write_bytes(other.read_bytes())
    local["BPIXTAB"] = tmp_path / "jref" / other.name
    f = _run(tmp_path, local, switches={"FLATCORR": "OMIT"})
    dq = f["DQ"].data
    assert dq[1, 1] & 64 and not dq[0, 0] & 64 and not np.any(dq[4, 4:7] & 4)


def test_photflam_interpolation_from_the_notes(tmp_path: Path) -> None:
    table = acsrefs.imphttab("SBC", "t_imp.fits", {"acs,sbc,f115lp": (lambda t: 2.1e-17 + (t - 54000) * 1e-21,
                                                                    1406.0, 300.0)})
    path = tmp_path / "t_imp.fits"
    table.writeto(path)
    from pipeline.science.calib.tables import read_imphttab

    vals = read_imphttab(path, "acs,sbc,f115lp,mjd#55000.1235")
    assert np.float32(vals.values["PHOTFLAM"]) == np.float32(2.2000124e-17)


def test_bad_inputs(tmp_path: Path, refs: dict[str, Path]) -> None:
    def lflat(h: fits.HDUList) -> None:
        h[0].header["LFLTFILE"] = "jref$sbc_sim_pfl.fits"

    with pytest.raises(Unsupported, match="LFLTFILE"):
        _run(tmp_path, refs, raw_edit=lflat)

    def no_globrate(h: fits.HDUList) -> None:
        del h[1].header["GLOBRATE"]

    with pytest.raises(BadInput, match="GLOBRATE"):
        _run(tmp_path, refs, raw_edit=no_globrate)


def test_accuracy_against_truth(tmp_path: Path, refs: dict[str, Path]) -> None:
    truth = sbc.write_raw(tmp_path / "jsbc02abq_raw.fits", refs, exptime=1000.0, seed=5)
    out = builtin.calibrate_exposure(tmp_path / "jsbc02abq_raw.fits", tmp_path,
                                     environ={"jref": str(refs["MLINTAB"].parent) + "/"})
    flt = fits.getdata(out, 1).astype(np.float64)
    expected = truth.rate * 1000.0
    faint = (truth.rate > 0.05) & (truth.rate < 1.0)
    ratio = flt[faint].sum() / expected[faint].sum()
    assert abs(ratio - 1.0) < 0.01


def test_no_switch_at_perform_copies_the_raw(tmp_path: Path, refs: dict[str, Path]) -> None:
    """calacs ProcessMAMA: "No processing performed on image.", raw copied to _flt, exit 0."""
    raw = tmp_path / "jsbc01abq_raw.fits"
    sbc.write_raw(raw, refs, switches={s: "OMIT" for s in ("DQICORR", "GLINCORR", "LFLGCORR", "DARKCORR",
                                                            "FLATCORR", "PHOTCORR")})
    warnings: list[str] = []
    out = builtin.calibrate_exposure(raw, tmp_path, environ={}, log=lambda sev, text: warnings.append(sev))
    assert out.name == "jsbc01abq_flt.fits" and warnings == ["warn"]
    with fits.open(raw) as r, fits.open(out) as f:
        assert f[0].header["FILENAME"] == "jsbc01abq_flt.fits"
        assert [k for k in r[0].header if r[0].header[k] != f[0].header.get(k)] == ["FILENAME"]
        assert f["SCI"].data.dtype.kind == "i" and np.array_equal(f["SCI"].data, r["SCI"].data)
        assert f["ERR"].header["NAXIS"] == 0 and f["SCI"].header["BUNIT"] == "COUNTS"  # not relabelled


def _write_association(directory: Path, refs: dict[str, Path], asn_type: str) -> Path:
    assoc = sbc.association(5, 3, asn_type)
    for m in assoc.members:
        for key in ("BPIXTAB", "MLINTAB", "DARKFILE", "PFLTFILE", "IMPHTTAB"):
            m.raw[0].header[key] = f"jref${refs[key].name}"
        m.raw.writeto(directory / f"{m.rootname}_raw.fits")
    asn = directory / f"{assoc.name}_asn.fits"
    assoc.asn_table().writeto(asn)
    return asn


def test_repeat_association_is_summed_by_acssum(tmp_path: Path, refs: dict[str, Path]) -> None:
    """acssum.c: SCI summed, ERR in quadrature (float32 variances), DQ OR-ed; EXPTIME summed,
    NCOMBINE, RPTCORR = COMPLETE; statistics with the primary SDQFLAGS (absent: every bit)."""
    asn = _write_association(tmp_path, refs, "REPEAT")
    env = {"jref": str(refs["MLINTAB"].parent) + "/"}
    out = calibrate([asn], tmp_path / "out", engine="builtin", environ=env)
    assert sorted(p.name for p in out) == ["jsbc03011_sfl.fits", "jsbc03r1q_flt.fits", "jsbc03r2q_flt.fits"]
    d = tmp_path / "out"
    with fits.open(d / "jsbc03r1q_flt.fits") as a, fits.open(d / "jsbc03r2q_flt.fits") as b, \
            fits.open(d / "jsbc03011_sfl.fits") as s:
        assert a[0].header["RPTCORR"] == "PERFORM"          # the members keep PERFORM, as in calacs
        assert np.array_equal(s["SCI"].data, a["SCI"].data + b["SCI"].data)
        ea, eb = a["ERR"].data, b["ERR"].data
        assert np.array_equal(s["ERR"].data, np.sqrt(ea * ea + eb * eb).astype(np.float32))
        assert np.array_equal(s["DQ"].data, a["DQ"].data | b["DQ"].data)
        p = s[0].header
        assert (p["RPTCORR"], p["NCOMBINE"], p["EXPTIME"], p["ROOTNAME"], p["ASN_MTYP"]) == \
            ("COMPLETE", 2, 600.0, "JSBC03011", "PROD-RPT")
        assert p["EXPEND"] == b[0].header["EXPEND"] and s["SCI"].header["EXPNAME"] == "jsbc03011"
        good = (s["DQ"].data == 0) & (s["ERR"].data > 0)
        assert s["SCI"].header["NGOODPIX"] == np.count_nonzero(good)


def test_dither_association_is_not_summed(tmp_path: Path, refs: dict[str, Path]) -> None:
    asn = _write_association(tmp_path, refs, "DITHER")
    out = calibrate([asn], tmp_path / "out", engine="builtin", environ={"jref": str(refs["MLINTAB"].parent) + "/"})
    assert sorted(p.name for p in out) == ["jsbc03d1q_flt.fits", "jsbc03d2q_flt.fits"]


@pytest.mark.skipif(shutil.which("calacs.e") is None, reason="calacs.e (hstcal) not on PATH")
def test_real_calacs_agrees_bit_for_bit_on_an_sbc_repeat_association(tmp_path: Path, refs: dict[str, Path]) -> None:
    asn = _write_association(tmp_path, refs, "REPEAT")
    result = compare_input(asn, tmp_path / "work", environ=dict(os.environ, jref=str(refs["MLINTAB"].parent) + "/"))
    assert result.ok(0.0) and any(d.product.endswith("_sfl.fits") for d in result.diffs), \
        [d.line() for d in result.diffs]


def test_every_reference_dummy_writes_no_product(tmp_path: Path, refs: dict[str, Path]) -> None:
    """get2dflags.c counts no step when every PERFORM switch's reference has PEDIGREE = DUMMY: ACS2D
    returns NOTHING_TO_DO, calacs's main prints "CALACS did NOT process" and exits 0, no _flt."""
    jref = tmp_path / "jref"
    shutil.copytree(refs["MLINTAB"].parent, jref)
    for key in ("BPIXTAB", "MLINTAB", "DARKFILE", "PFLTFILE", "IMPHTTAB"):
        with fits.open(jref / refs[key].name, mode="update") as h:
            h[0].header["PEDIGREE"] = "DUMMY 01/03/2002"
    raw = tmp_path / "in" / "jsbc01abq_raw.fits"
    raw.parent.mkdir()
    sbc.write_raw(raw, refs)
    said: list[str] = []
    out = calibrate([raw], tmp_path / "out", engine="builtin", environ={"jref": f"{jref}/"},
                    echo=said.append)
    assert out == [] and list((tmp_path / "out").iterdir()) == []
    assert any("PEDIGREE = DUMMY" in line for line in said)
    with fits.open(jref / refs["IMPHTTAB"].name, mode="update") as h:   # one real step left: a product
        h[0].header["PEDIGREE"] = "INFLIGHT 01/03/2002"
    (flt,) = calibrate([raw], tmp_path / "out", engine="builtin", environ={"jref": f"{jref}/"})
    with fits.open(flt) as h, fits.open(raw) as r:  # calacs 10.5.0 on this case: the dummy steps SKIPPED
        assert h[0].header["PHOTCORR"] == "COMPLETE" and h["SCI"].header["PHOTFLAM"] > 0
        for s in ("DQICORR", "GLINCORR", "LFLGCORR", "DARKCORR", "FLATCORR"):
            assert h[0].header[s] == "SKIPPED", s
        assert not h["DQ"].data.any() and "GLOBLIM" not in h["SCI"].header
        assert np.array_equal(h["SCI"].data, r["SCI"].data.astype(np.float32))
