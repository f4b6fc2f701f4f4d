"""The built-in engine end to end on small UVIS-format exposures: products, switches, keywords, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.core.asntable import build_asn_table
from pipeline.core.errors import BadInput, MissingReference, Unsupported
from pipeline.science.calib import calibrate
from pipeline.science.calib.steps.stats import image_stats
from tests.calib_synth import (
    UvisSet,
    write_bpixtab,
    write_ccdtab,
    write_imphttab,
    write_oscntab,
    write_raw,
    write_raw_reference,
    write_trimmed_reference,
)

SWITCHES = dict(DQICORR="PERFORM", BLEVCORR="PERFORM", BIASCORR="PERFORM", DARKCORR="PERFORM",
                FLATCORR="PERFORM", PHOTCORR="PERFORM", FLUXCORR="PERFORM", SHADCORR="OMIT", FLSHCORR="OMIT",
                CRCORR="OMIT", ATODCORR="OMIT", DRIZCORR="PERFORM")


def make_refs(d: Path, s: UvisSet, *, flat: float = 1.0, dark: float = 0.02) -> None:
    g = s.geo
    write_ccdtab(d / "t_ccd.fits", s)
    write_oscntab(d / "t_osc.fits", s)
    write_bpixtab(d / "t_bpx.fits", [(3, 4, 2, 1, 4, 1), (45, 10, 3, 2, 16, 2)], (2 * g.amp_width, g.rows))
    snk = {c: np.zeros((g.ny, g.nx)) for c in (1, 2)}
    write_raw_reference(d / "t_snk.fits", s, snk, filetype="SINK PIXELS")
    zero = {c: np.zeros((g.ny, g.nx)) for c in (1, 2)}
    write_raw_reference(d / "t_bia.fits", s, zero, filetype="BIAS", err=0.5, primary={"CCDAMP": "ABCD", "CCDGAIN": 1.5})
    write_trimmed_reference(d / "t_drk.fits", {c: np.full(g.trimmed, dark) for c in (1, 2)}, filetype="DARK", err=1e-3)
    write_trimmed_reference(d / "t_pfl.fits", {c: np.full(g.trimmed, flat) for c in (1, 2)},
                            filetype="PIXEL-TO-PIXEL FLAT", err=0.0, primary={"FILTER": s.filt})
    write_imphttab(d / "t_imp.fits", flam={"uvis1": [1e-19, 1.1e-19], "uvis2": [1.05e-19, 1.15e-19]},
                   mjds=[55000, 57000])
    s.refs = dict(CCDTAB="t_ccd.fits", OSCNTAB="t_osc.fits", BPIXTAB="t_bpx.fits", SNKCFILE="t_snk.fits",
                  BIASFILE="t_bia.fits", DARKFILE="t_drk.fits", PFLTFILE="t_pfl.fits", DFLTFILE="N/A",
                  LFLTFILE="N/A", IMPHTTAB="t_imp.fits", CRREJTAB="N/A")


def scene(s: UvisSet, rng: np.random.Generator, signal: float = 300.0) -> dict[int, np.ndarray]:
    g = s.geo
    out = {}
    for c in (1, 2):
        raw = 2500 + rng.normal(0, 2, (g.ny, g.nx))
        r0, r1 = g.trimy(c)
        raw[r0:g.ny - r1][:, g.science_cols()] += signal
        out[c] = raw
    return out


@pytest.fixture
def uvis(tmp_path: Path) -> tuple[UvisSet, Path, dict]:  # type: ignore[type-arg]
    s = UvisSet()
    make_refs(tmp_path, s)
    raw = tmp_path / "iabc01xyq_raw.fits"
    write_raw(raw, s, scene(s, np.random.default_rng(1)), switches=SWITCHES)
    return s, raw, {"iref": f"{tmp_path}/", "PATH": "/usr/bin:/bin"}


def test_flt_structure_switches_and_provenance(uvis: tuple, tmp_path: Path) -> None:  # type: ignore[type-arg]
    s, raw, env = uvis
    out = tmp_path / "out"
    lines: list[str] = []
    products = calibrate([raw], out, engine="auto", environ=env, echo=lines.append)
    assert products == [out / "iabc01xyq_flt.fits"]
    assert any("calibration engine builtin" in ln for ln in lines)
    with fits.open(products[0]) as h:
        p = h[0].header
        assert [x.name for x in h[1:]] == ["SCI", "ERR", "DQ"] * 2
        assert [x.header["EXTVER"] for x in h[1:]] == [1, 1, 1, 2, 2, 2]
        assert h["SCI", 1].data.shape == s.geo.trimmed and h["SCI", 1].data.dtype == np.dtype(">f4")
        assert h["DQ", 1].data.dtype == np.dtype(">i2")
        for sw in ("DQICORR", "BLEVCORR", "BIASCORR", "DARKCORR", "FLATCORR", "PHOTCORR", "FLUXCORR"):
            assert p[sw] == "COMPLETE", sw
        assert p["SHADCORR"] == "OMIT" and p["DRIZCORR"] == "PERFORM"
        assert p["CAL_ENG"] == "builtin" and p["CAL_VER"].startswith("owlpipe-calib")
        assert p["OPUS_VER"].startswith("OWLPIPE") and p["CSYS_VER"].startswith("owlpipe-")
        assert 60000 < p["PROCTIME"] < 80000
        sci2, sci1 = h["SCI", 1].header, h["SCI", 2].header
        assert sci2["CCDCHIP"] == 2 and sci2["BUNIT"] == "ELECTRONS" and sci2["LTV1"] == 0 and sci2["LTV2"] == 0
        assert sci1["LTV2"] == 0 and sci1["SIZAXIS1"] == 2 * s.geo.amp_width
        assert sci2["PHOTMODE"] == "WFC3 UVIS2 F606W MJD#56000.0000"
        assert p["PHOTFLAM"] == pytest.approx(np.float32(1.1e-19))           # chip 2's value, imset 1
        assert p["PHTRATIO"] == pytest.approx(np.float32(1.1e-19) / np.float32(1.05e-19), rel=1e-6)
        for key in ("NGOODPIX", "GOODMEAN", "SNRMEAN", "MEANBLEV", "MEANDARK", "PHOTFNU"):
            assert key in sci1 and key in sci2, key
        # as calwf3.e writes them, chip 2's statistics are from before FLUXCORR scaled it
        sdq = int(sci2.get("SDQFLAGS", p.get("SDQFLAGS", 65535)))
        scaled, _ = image_stats(h["SCI", 1].data, h["ERR", 1].data, h["DQ", 1].data.astype(np.uint16), sdq)
        assert scaled["GOODMEAN"] == pytest.approx(sci2["GOODMEAN"] * p["PHTRATIO"], rel=1e-6)
        assert scaled["GOODMEAN"] != pytest.approx(sci2["GOODMEAN"], rel=1e-3)
        # electrons: (signal - dark*t/gain) * mean_gain; chip 2 scaled by PHTRATIO
        mean_gain = np.float32(sum(s.gains) / 4)
        e1 = np.median(h["SCI", 2].data)
        assert e1 == pytest.approx((300 - 0.02 * 100 / 1.55) * mean_gain, rel=0.01)
        assert np.median(h["SCI", 1].data) == pytest.approx(e1 * p["PHTRATIO"], rel=0.01)
        # the BPIXTAB run on chip 1 and the column on chip 2
        assert h["DQ", 2].data[3, 2] & 4 and h["DQ", 2].data[3, 3] & 4
        assert list(np.nonzero(h["DQ", 1].data[:, 44] & 16)[0]) == [9, 10, 11]


def test_missing_reference_names_keyword_and_path(uvis: tuple, tmp_path: Path) -> None:  # type: ignore[type-arg]
    _, raw, env = uvis
    (tmp_path / "t_drk.fits").unlink()
    with pytest.raises(MissingReference) as err:
        calibrate([raw], tmp_path / "out", engine="builtin", environ=env)
    assert err.value.keyword == "DARKFILE" and "t_drk.fits" in err.value.line()


def test_iref_without_trailing_slash_is_a_missing_reference(uvis: tuple, tmp_path: Path) -> None:  # type: ignore[type-arg]
    _, raw, env = uvis
    with pytest.raises(MissingReference, match=r"CCDTAB .*t_ccd.fits.*trailing '/'"):
        calibrate([raw], tmp_path / "out", engine="builtin", environ={**env, "iref": str(tmp_path)})


def test_unsupported_detector_and_missing_hstcal(uvis: tuple, tmp_path: Path) -> None:  # type: ignore[type-arg]
    _, raw, env = uvis
    with fits.open(raw, mode="update") as h:
        h[0].header["DETECTOR"] = "IR"   # IR is calibrated now, but this file is not a MULTIACCUM ramp
    with pytest.raises(BadInput, match="NSAMP"):
        calibrate([raw], tmp_path / "out", engine="builtin", environ=env)
    with fits.open(raw, mode="update") as h:
        h[0].header["INSTRUME"], h[0].header["DETECTOR"] = "ACS", "PRISM"
    with pytest.raises(Unsupported, match="ACS/PRISM is not supported by the built-in engine"):
        calibrate([raw], tmp_path / "out", engine="builtin", environ=env)
    with fits.open(raw, mode="update") as h:
        h[0].header["INSTRUME"], h[0].header["DETECTOR"] = "WFC3", "UVIS"
    with pytest.raises(Unsupported, match="not on PATH"):
        calibrate([raw], tmp_path / "out", engine="hstcal", environ=env)


@pytest.mark.parametrize("switches,keyword", [({"PHOTCORR": "OMIT"}, "PHOTCORR"),
                                               ({"RPTCORR": "PERFORM", "CRCORR": "PERFORM"}, "RPTCORR")])
def test_switch_combinations_calwf3_refuses(uvis: tuple, tmp_path: Path, switches: dict,  # type: ignore[type-arg]
                                            keyword: str) -> None:
    """calwf3's GetCCDSws stops on FLUXCORR without PHOTCORR and on RPTCORR with CRCORR (HEADER_PROBLEM,
    checked against calwf3.e 3.7.3): so does the engine, naming the switch, before any product is written."""
    _, raw, env = uvis
    with fits.open(raw, mode="update") as h:
        h[0].header.update(switches)
    with pytest.raises(BadInput) as err:
        calibrate([raw], tmp_path / "out", engine="builtin", environ=env)
    assert err.value.keyword == keyword and not list((tmp_path / "out").glob("*.fits"))


def test_dummy_reference_skips_its_step(uvis: tuple, tmp_path: Path) -> None:  # type: ignore[type-arg]
    _, raw, env = uvis
    with fits.open(tmp_path / "t_drk.fits", mode="update") as h:
        h[0].header["PEDIGREE"] = "DUMMY"
    out = calibrate([raw], tmp_path / "out", engine="builtin", environ=env)[0]
    assert fits.getval(out, "DARKCORR") == "SKIPPED"
    assert "MEANDARK" not in fits.getheader(out, 1)


def test_cr_split_association_gives_crj_and_masked_flts(tmp_path: Path) -> None:
    s = UvisSet()
    make_refs(tmp_path, s)
    s.refs["CRREJTAB"] = "t_crr.fits"
    import shutil

    from tests.conftest import real_file

    shutil.copyfile(real_file("reference_files/wfc3/n9i1435li_crr.fits"), tmp_path / "t_crr.fits")
    rng = np.random.default_rng(7)
    sw = {**SWITCHES, "CRCORR": "PERFORM"}
    members = ["iabc01a1q", "iabc01a2q"]
    base = scene(s, rng, signal=200.0)
    for k, m in enumerate(members):
        sci = {c: base[c] + rng.normal(0, 1, base[c].shape) for c in (1, 2)}
        if k == 1:
            sci[1][20, 30] += 5000      # a cosmic ray on chip 1 of the second exposure
        write_raw(tmp_path / f"{m}_raw.fits", s, sci, switches=sw, rootname=m, extra={"EXPFLAG": "NORMAL"})
    build_asn_table("iabc01010", members, "CR-SPLIT").writeto(tmp_path / "iabc01010_asn.fits")
    out = tmp_path / "out"
    products = calibrate([tmp_path / "iabc01010_asn.fits"], out, engine="builtin",
                         environ={"iref": f"{tmp_path}/", "PATH": "/usr/bin"})
    names = sorted(p.name for p in products)
    assert names == ["iabc01011_crj.fits", "iabc01a1q_flt.fits", "iabc01a2q_flt.fits"]
    with fits.open(out / "iabc01011_crj.fits") as crj, fits.open(out / "iabc01a2q_flt.fits") as flt:
        assert crj[0].header["CRCORR"] == "COMPLETE" and crj["SCI", 1].header["NCOMBINE"] == 2
        assert (crj[0].header["ASN_MTYP"], crj["ERR", 2].header["EXPNAME"]) == ("PROD-CRJ", "iabc01011")
        assert crj[0].header["TEXPTIME"] == pytest.approx(2 * s.exptime) and crj[0].header["EXPTIME"] == 200
        # raw (row 20, col 30) of chip 1 -> trimmed (20 - TRIMY1, 30 - prescan)
        y, x = 20 - s.geo.vrows, 30 - s.geo.prescan
        assert flt["DQ", 2].data[y, x] & 8192                 # the CR is masked in its member
        assert not fits.getdata(out / "iabc01a1q_flt.fits", ("DQ", 2))[y, x] & 8192
        assert not crj["DQ", 2].data[y, x] & 8192              # one good input remains
        assert crj["SCI", 2].data[y, x] == pytest.approx(np.median(crj["SCI", 2].data), rel=0.05)
        assert flt[0].header["CRCORR"] == "PERFORM"   # calwf3 finishes CRCORR in the crj only
