"""Reference-table readers on the real STScI tables (copied to tmp) and on tables in their format."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.core.errors import MissingReference
from pipeline.science.calib import tables as t
from pipeline.science.calib.geometry import find_overscan
from tests.calib_synth import UvisSet, write_ccdtab, write_imphttab, write_oscntab
from tests.conftest import real_file


def _copy(tmp_path: Path, rel: str) -> Path:
    dest = tmp_path / Path(rel).name
    shutil.copyfile(real_file(rel), dest)
    return dest


# ------------------------------------------------------------------------------------------ CRREJTAB

def test_real_wfc3_crrejtab_null_meanexp_reads_as_indef(tmp_path: Path) -> None:
    path = _copy(tmp_path, "reference_files/wfc3/n9i1435li_crr.fits")
    par = t.read_crrejtab(path, nimages=2, mean_exptime=350.0)
    # MEANEXP is null in every row; as INDEF it matches and the last CRSPLIT=2 row wins
    assert par.row == 2 and par.crsplit == 2
    assert par.sigmas == (6.5, 5.5, 4.5)
    assert (par.skysub, par.initgues, par.badinpdq, par.crmask) == ("mode", "minimum", 32575, True)
    assert par.radius == pytest.approx(2.1) and par.thresh == pytest.approx(0.5555)
    assert par.scalense == pytest.approx(3.0)


def test_real_acs_crrejtab_caps_crsplit_at_table_maximum(tmp_path: Path) -> None:
    path = _copy(tmp_path, "reference_files/acs/n4e12511j_crr.fits")
    par = t.read_crrejtab(path, nimages=12, mean_exptime=100.0)
    assert par.crsplit == 8 and par.row == 14 and par.scalense == pytest.approx(30.0) and par.badinpdq == 39
    other = t.read_crrejtab(_copy(tmp_path, "reference_files/acs/29p1548cj_crr.fits"), nimages=3, mean_exptime=1)
    assert other.sigmas == (5.0, 4.0, 3.0)


def test_parse_sigmas_rejects_garbage() -> None:
    assert t.parse_sigmas("6.5 5.5;4.5") == (6.5, 5.5, 4.5)
    with pytest.raises(ValueError):
        t.parse_sigmas("a,b")


# ------------------------------------------------------------------------------------------ BPIXTAB

def test_real_hrc_bpixtab_row_selection(tmp_path: Path) -> None:
    path = _copy(tmp_path, "acs_hrc_j8bt/reference/j4d1435jj_bpx.fits")
    with fits.open(path) as hdul:
        data = hdul[1].data
        n_d = int(np.sum((np.char.strip(data["CCDAMP"].astype(str)) == "D") & (data["CCDGAIN"] == 2)))
    runs = t.read_bpixtab(path, chip=1, ccdamp="D", ccdgain=2.0)
    assert runs.sizaxis == (1064, 1044)
    assert len(runs.x0) == n_d > 0  # CCDCHIP is -999 (any chip) in every row; gain 2 rows only
    assert runs.x0.min() >= 0 and set(np.unique(runs.axis)) <= {1, 2}
    assert len(t.read_bpixtab(path, chip=1, ccdamp="C", ccdgain=1.0).x0) == 0   # amp must match
    assert len(t.read_bpixtab(path, chip=1, ccdamp="D", ccdgain=3.0).x0) == 0   # gain must match


# ------------------------------------------------------------------------------------------ IMPHTTAB

def test_real_acs_imphttab_scalar_and_interpolated_rows(tmp_path: Path) -> None:
    path = _copy(tmp_path, "reference_files/acs/08b18470j_imp.fits")
    with fits.open(path) as hdul:
        d = hdul["PHOTFLAM"].data
        row = next(i for i, m in enumerate(d["OBSMODE"]) if m.strip().lower() == "acs,wfc1,f606w,mjd#")
        grid = np.asarray(d["PAR1VALUES"][row])[: d["NELEM1"][row]]
        vals = np.asarray(d["PHOTFLAM1"][row])
    at_node = t.read_imphttab(path, f"acs,wfc1,f606w,mjd#{grid[2]}")
    assert at_node.values["PHOTFLAM"] == pytest.approx(vals[2], rel=1e-12)
    mid = 0.25 * grid[2] + 0.75 * grid[3]
    between = t.read_imphttab(path, f"acs,wfc1,f606w,mjd#{mid}")
    assert between.values["PHOTFLAM"] == pytest.approx(0.25 * vals[2] + 0.75 * vals[3], rel=1e-12)
    assert set(between.values) == {"PHOTFLAM", "PHOTPLAM", "PHOTBW"} and between.photzpt == pytest.approx(-21.1)
    scalar = t.read_imphttab(path, "acs,wfc1,f660n")
    assert scalar.values["PHOTFLAM"] == pytest.approx(5.18200617225508e-18)
    # outside the MJD grid without EXTRAP -> -9999
    assert t.read_imphttab(path, f"acs,wfc1,f606w,mjd#{grid[-1] + 100}").values["PHOTFLAM"] == -9999.0
    with pytest.raises(MissingReference, match="no row for obsmode"):
        t.read_imphttab(path, "acs,wfc1,f999x")


def test_extrap_holds_the_end_values_of_the_mjd_grid(tmp_path: Path) -> None:
    path = tmp_path / "x_imp.fits"
    write_imphttab(path, flam={"uvis1": [1.0, 2.0, 4.0], "uvis2": [1.0, 1.0, 1.0]}, mjds=[55000, 56000, 57000],
                   extrap=True)
    assert t.read_imphttab(path, "wfc3,uvis1,f606w,mjd#58000").values["PHOTFLAM"] == pytest.approx(4.0)
    assert t.read_imphttab(path, "wfc3,uvis1,f606w,mjd#54000").values["PHOTFLAM"] == pytest.approx(1.0)
    assert t.read_imphttab(path, "wfc3,uvis1,f606w,mjd#56500").values["PHOTFLAM"] == pytest.approx(3.0)
    write_imphttab(path, flam={"uvis1": [1.0, 2.0, 4.0], "uvis2": [1.0, 1.0, 1.0]}, mjds=[55000, 56000, 57000])
    assert t.read_imphttab(path, "wfc3,uvis1,f606w,mjd#58000").values["PHOTFLAM"] == -9999.0


def test_nd_interpolation_first_parameter_varies_fastest() -> None:
    g1, g2 = np.array([0.0, 1.0, 2.0]), np.array([10.0, 20.0])
    f = lambda a, b: 3 * a + 0.5 * b  # noqa: E731 - bilinear function is reproduced exactly
    results = np.array([f(a, b) for b in g2 for a in g1])
    assert t.interpolate_nd([g1, g2], results, [1.3, 17.0]) == pytest.approx(f(1.3, 17.0))
    assert t.interpolate_nd([g1, g2], results, [2.0, 20.0]) == pytest.approx(f(2.0, 20.0))


def test_obsmode_matching_is_substring_per_token() -> None:
    assert t.obsmodes_match("wfc3,uvis1,f606w,mjd#", "wfc3,uvis1,f606w,mjd#")
    assert t.obsmodes_match("WFC3,UVIS1,F606W,MJD#", "wfc3,uvis1,f606w,mjd#")
    assert not t.obsmodes_match("wfc3,uvis1,f606w", "wfc3,uvis1,f606w,mjd#")
    assert t.split_obsmode("wfc3,uvis2,f814w,mjd#56789.1234") == ("wfc3,uvis2,f814w,mjd#", [("mjd#", 56789.1234)])


# ------------------------------------------------------------------------------------------ CCDTAB

def test_ccdtab_wildcards_and_mean_gain_over_all_four_columns(tmp_path: Path) -> None:
    s = UvisSet()
    wildcard = dict(CCDAMP="ANY", CCDCHIP=-999, CCDGAIN=-1.0, BINAXIS1=-1, BINAXIS2=-1,
                    **{f"CCDOFST{a}": -1 for a in "ABCD"}, CCDBIASA=1.0, CCDBIASB=2.0, CCDBIASC=3.0,
                    CCDBIASD=4.0, ATODGNA=1.0, ATODGNB=2.0, ATODGNC=3.0, ATODGND=6.0, READNSEA=3.0,
                    READNSEB=3.0, READNSEC=3.0, READNSED=3.0, AMPX=9999, AMPY=0, SATURATE=60000.0)
    path = tmp_path / "x_ccd.fits"
    write_ccdtab(path, s, extra_rows=[wildcard])
    row = t.read_ccdtab(path, ccdamp="C", chip=2, ccdgain=2.0, binaxis=(2, 2), ccdofst=[0, 0, 0, 0], dimx=400)
    assert row.row == 1
    assert row.atodgain == (0.0, 0.0, 3.0, 0.0) and row.ccdbias == (0.0, 0.0, 3.0, 0.0)
    assert row.mean_gain == pytest.approx(3.0)          # (1+2+3+6)/4: unused amps count
    assert row.ampx == 400                               # min(AMPX, nx)
    exact = t.read_ccdtab(tmp_path / "x_ccd.fits", ccdamp="ABCD", chip=1, ccdgain=1.5, binaxis=(1, 1),
                          ccdofst=[3, 3, 3, 3], dimx=4206)
    assert exact.row == 1  # the wildcard row comes first and matches everything
    path2 = tmp_path / "y_ccd.fits"
    write_ccdtab(path2, s)
    exact = t.read_ccdtab(path2, ccdamp="ABCD", chip=1, ccdgain=1.5, binaxis=(1, 1), ccdofst=[3, 3, 3, 3], dimx=4206)
    assert exact.row == 1 and exact.mean_gain == pytest.approx(np.float32(sum(s.gains) / 4), rel=1e-6)
    with pytest.raises(MissingReference, match="no row matches CCDCHIP 1, CCDAMP AB"):
        t.read_ccdtab(path2, ccdamp="AB", chip=1, ccdgain=1.5, binaxis=(1, 1), ccdofst=[3] * 4, dimx=10)


def test_ccdamp_is_case_sensitive(tmp_path: Path) -> None:
    path = tmp_path / "x_ccd.fits"
    write_ccdtab(path, UvisSet())
    with pytest.raises(MissingReference):
        t.read_ccdtab(path, ccdamp="abcd", chip=1, ccdgain=1.5, binaxis=(1, 1), ccdofst=[3] * 4, dimx=10)


# ------------------------------------------------------------------------------------------ OSCNTAB

def test_oscntab_full_frame_and_subarray_overscan(tmp_path: Path) -> None:
    s = UvisSet()
    path = tmp_path / "x_osc.fits"
    write_oscntab(path, s)
    row = t.read_oscntab(path, ccdamp="ABCD", chip=1, binaxis=(1, 1))
    assert row is not None and row.trimy == (s.geo.vrows, 0)
    full = find_overscan(row, nx=s.geo.nx, subarray=False, offsetx=5.0)
    assert full.trimx == [5, 5, 6, 6] and full.biassect["C"] == (row.biassect["C"][0] - 1, row.biassect["C"][1] - 1)
    # a subarray starting 2 columns into the prescan keeps those 2 prescan columns as its bias section
    sub = find_overscan(row, nx=30, subarray=True, offsetx=2.0)
    assert sub.overscan and sub.trimx[:2] == [2, 0] and sub.trimy == [0, 0] and sub.biassect["A"] == (0, 1)
    assert sub.vx == [0, 0, 0, 0] and sub.biassect["C"] == (0, 0)
    # a subarray in the middle of the chip has no overscan at all
    assert not find_overscan(row, nx=20, subarray=True, offsetx=-30.0).overscan
    with pytest.raises(MissingReference, match="no row matches"):
        t.read_oscntab(path, ccdamp="A", chip=1, binaxis=(1, 1))
