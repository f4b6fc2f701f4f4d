"""The standing engine comparison (``owl calibrate --engine compare``, ``owl check engine DIR``).

Where STScI's ``calwf3.e``/``calacs.e`` are on PATH the last tests run them for real on simulated
exposures and require bit-identical products. Elsewhere a **test double** stands in for hstcal: a
small script named ``calwf3.e`` that calibrates its input with the built-in engine (so the products
agree) and, when ``FAKE_HSTCAL_PERTURB`` is set, changes one SCI pixel by one float32 ulp, one DQ
bit and one switch in the primary header, so the comparison has something to find. It checks the
comparison's side, not hstcal's numerics.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.core.exitcodes import ExitCode
from pipeline.science.calib.compare import (
    compare_input,
    compare_products,
    inputs_in,
    keyword_differences,
    relative_difference,
)
from tests.calib_simdata import SimData, build

FAKE_HSTCAL = """#!{python}
# test double for calwf3.e/calacs.e: the built-in engine, optionally one pixel and one DQ bit off
import os, sys
from pathlib import Path
import numpy as np
from astropy.io import fits
from pipeline.science.calib.api import calibrate
product = calibrate([Path(sys.argv[1])], Path.cwd(), engine="builtin")[0]
if os.environ.get("FAKE_HSTCAL_PERTURB"):
    with fits.open(product, mode="update") as h:
        h["SCI", 1].data[3, 4] = np.nextafter(h["SCI", 1].data[3, 4], np.float32(np.inf))
        h["DQ", 1].data[5, 6] ^= 16
        h[0].header["FLATCORR"] = "SKIPPED"
"""


@pytest.fixture(scope="module")
def sim(module_tmp) -> SimData:
    return build(module_tmp("sim"), size="subarray", instruments=("wfc3",), associations=1)


@pytest.fixture
def fake_hstcal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sim: SimData) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("calwf3.e", "calacs.e"):
        exe = bindir / name
        exe.write_text(FAKE_HSTCAL.format(python=sys.executable))
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("iref", f"{sim.crds / 'references' / 'hst'}/")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    return bindir


def test_relative_difference_counts_pixels_and_treats_nan_as_equal() -> None:
    a = np.array([1.0, 2.0, np.nan, 0.0, 5.0], np.float32)
    b = np.array([1.0, 2.5, np.nan, 0.0, np.nan], np.float32)
    n, rel = relative_difference(a, b)
    assert n == 2 and rel == 1.0          # 2 vs 2.5 is 0.2; a number against NaN counts as 1
    assert relative_difference(a[:2], np.array([1.0, 2.5], np.float32)) == (1, pytest.approx(0.2))


def test_products_that_agree_and_one_that_differs(tmp_path: Path) -> None:
    sci = np.arange(12, dtype=np.float32).reshape(3, 4) + 1
    def product(path: Path, bump: bool) -> Path:
        s = sci.copy()
        dq = np.zeros((3, 4), np.int16)
        if bump:
            s[1, 1] = np.nextafter(s[1, 1], np.float32(np.inf))
            dq[2, 3] = 256
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(s, name="SCI"),
                      fits.ImageHDU(header=fits.Header([("EXTNAME", "ERR"), ("NPIX1", 4), ("NPIX2", 3),
                                                        ("PIXVALUE", 0.0)])),
                      fits.ImageHDU(dq, name="DQ")]).writeto(path)
        return path
    same = compare_products(product(tmp_path / "a_flt.fits", False), product(tmp_path / "b_flt.fits", False))
    assert [(d.extension, d.differing) for d in same] == [("PRIMARY", 0), ("DQ,1", 0), ("ERR,1", 0), ("SCI,1", 0)]
    assert all(d.within(0.0) and not d.keywords for d in same)
    diff = {d.extension: d for d in compare_products(tmp_path / "a_flt.fits", product(tmp_path / "c_flt.fits", True))}
    one_ulp_of_6 = float(np.spacing(np.float32(6))) / 6
    assert diff["SCI,1"].differing == 1 and diff["SCI,1"].max_rel == pytest.approx(one_ulp_of_6, rel=1e-6)
    assert diff["DQ,1"].dq_bits == 256 and not diff["DQ,1"].within(1.0)
    assert diff["SCI,1"].within(1e-6) and not diff["SCI,1"].within(0.0)


def _hstio_card(key: str, value: float) -> fits.Card:
    """A float keyword as hstio writes it (``%#14.7E``: 8 significant digits)."""
    return fits.Card.fromstring(f"{key:<8}= {value:#20.7E} / written by hstio")


def test_keywords_compare_at_the_precision_hstcal_writes() -> None:
    value = float(np.float32(-0.1042318344116211))          # what the built-in engine writes, exactly
    builtin = fits.Header([("BIASLEVA", value), ("NGOODPIX", 12), ("CRCORR", "PERFORM"), ("DATE", "2017-07-18"),
                           ("PHOTFLAM", float(np.float32(7.94e-20)))])
    hstcal = fits.Header([_hstio_card("BIASLEVA", value), ("NGOODPIX", 12), ("CRCORR", "PERFORM  "),
                          ("DATE", "2026-12-04"), ("ORIGIN", "HSTIO/CFITSIO March 2010")])
    assert hstcal.cards["BIASLEVA"].image.split("/")[0].strip().endswith("-1.0423183E-01")
    assert [k.keyword for k in keyword_differences(builtin, hstcal)] == ["PHOTFLAM"]   # only in one: rel 1
    hstcal.append(_hstio_card("PHOTFLAM", float(np.float32(7.94e-20))))
    hstcal["NGOODPIX"] = 13
    (diff,) = keyword_differences(builtin, hstcal)
    assert (diff.keyword, diff.rel) == ("NGOODPIX", pytest.approx(1 / 13))
    hstcal["NGOODPIX"], hstcal["CRCORR"] = 12, "COMPLETE"
    (diff,) = keyword_differences(builtin, hstcal)
    assert (diff.keyword, diff.rel) == ("CRCORR", 1.0) and "'PERFORM' vs 'COMPLETE'" in diff.line()


def test_a_header_difference_fails_the_extension(tmp_path: Path) -> None:
    def product(path: Path, goodmean: float) -> Path:
        sci = fits.ImageHDU(np.ones((3, 4), np.float32), name="SCI")
        sci.header["GOODMEAN"] = goodmean
        fits.HDUList([fits.PrimaryHDU(), sci]).writeto(path)
        return path
    diff = {d.extension: d for d in compare_products(product(tmp_path / "a_flt.fits", 1.0),
                                                     product(tmp_path / "b_flt.fits", 1.001))}
    assert diff["SCI,1"].differing == 0 and [k.keyword for k in diff["SCI,1"].keywords] == ["GOODMEAN"]
    assert not diff["SCI,1"].within(1e-6) and diff["SCI,1"].within(1e-2)
    assert "keywords differ: GOODMEAN 1.0 vs 1.001" in diff["SCI,1"].line()


def test_inputs_in_a_folder_are_associations_and_lone_raws(sim: SimData) -> None:
    found = inputs_in(sim.raws)
    assert [p.name for p in found] == [a.name for a in sim.associations()]  # both raws are members


def test_compare_against_the_hstcal_test_double(tmp_path: Path, fake_hstcal: Path, sim: SimData) -> None:
    raw = sim.raw(sim.members()[0])
    result = compare_input(raw, tmp_path / "work")
    assert result.ok(0.0), [d.line() for d in result.diffs]
    assert {d.extension for d in result.diffs} == {"PRIMARY", "SCI,1", "ERR,1", "DQ,1"}


def test_owl_calibrate_engine_compare_exits_22_beyond_tolerance(tmp_path: Path, fake_hstcal: Path,
                                                                 sim: SimData, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = sim.raw(sim.members()[0])
    runner = CliRunner()
    ok = runner.invoke(main, ["calibrate", "--engine", "compare", "--outdir", str(tmp_path / "a"), "-q", str(raw)])
    assert ok.exit_code == 0, ok.output
    assert "identical within tolerance" in ok.output
    monkeypatch.setenv("FAKE_HSTCAL_PERTURB", "1")
    bad = runner.invoke(main, ["calibrate", "--engine", "compare", "--outdir", str(tmp_path / "b"), "-q", str(raw)])
    assert bad.exit_code == ExitCode.CHECK_FAILED, bad.output
    assert "SCI,1          1 of" in bad.output and "dq bits 0x0010" in bad.output
    assert "PRIMARY header; keywords differ: FLATCORR 'COMPLETE' vs 'SKIPPED'" in bad.output
    loose = runner.invoke(main, ["check", "engine", str(sim.raws), "--workdir", str(tmp_path / "c"), "-q",
                                 "--tolerance", "1e-6"])
    assert loose.exit_code == ExitCode.CHECK_FAILED, loose.output  # the DQ bit still differs
    assert loose.output.count("DIFFERENT") == 1 and "! " in loose.output


# ------------------------------------------------------------------------- the real hstcal, if installed

needs_calwf3 = pytest.mark.skipif(shutil.which("calwf3.e") is None, reason="calwf3.e (hstcal) not on PATH")
needs_calacs = pytest.mark.skipif(shutil.which("calacs.e") is None, reason="calacs.e (hstcal) not on PATH")


@needs_calwf3
def test_real_calwf3_agrees_bit_for_bit_on_simulated_uvis_subarrays(tmp_path: Path) -> None:
    data = build(tmp_path / "sim", size="subarray", instruments=("wfc3",), associations=3)
    env = dict(os.environ, iref=f"{data.crds / 'references' / 'hst'}/")
    for item in inputs_in(data.raws):
        result = compare_input(item, tmp_path / "work" / item.name[:9], environ=env)
        assert result.ok(0.0), [d.line() for d in result.diffs if not d.within(0.0)]


@needs_calacs
def test_real_calacs_agrees_bit_for_bit_on_simulated_wfc_subarray_flts(tmp_path: Path) -> None:
    """The dithered pair, the CR-SPLIT pair (ACSREJ's ``_crj`` and the members' ``_flt``) and the
    singleton, to the bit."""
    data = build(tmp_path / "sim", size="subarray", instruments=("acs",), associations=3)
    env = dict(os.environ, jref=f"{data.crds / 'references' / 'hst'}/")
    for item in inputs_in(data.raws):
        result = compare_input(item, tmp_path / "work" / item.name[:9], environ=env)
        assert result.ok(0.0), [d.line() for d in result.diffs if not d.within(0.0)]
