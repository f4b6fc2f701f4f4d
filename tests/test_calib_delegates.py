"""The hstcal and calcos delegates.

calwf3.e cannot be installed on this machine, so the hstcal tests put a *test double* on PATH: a
small shell script named ``calwf3.e`` that records the argv and environment it receives, writes a
trailer and a product the way calwf3 does, and exits with the code the test asks for. It checks the
delegate's side of the contract, not calwf3's numerics.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
from astropy.io import fits

from pipeline.core.errors import MissingReference, OwlError
from pipeline.science.calib import calibrate
from tests.conftest import real_file

FAKE_CALWF3 = """#!/bin/sh
# test double for calwf3.e: record what we were given, then behave like calwf3
{{ echo "argv=$*"; echo "iref=$iref"; echo "imclobber=$imclobber"; echo "cwd=$(pwd)"; }} > calwf3_called.txt
root=$(basename "$1" _raw.fits)
echo "CALBEG*** CALWF3 -- Version 3.7.3 (fake)" > "$root.tra"
echo "Trailer line from calwf3" >> "$root.tra"
if [ "{rc}" = "0" ]; then
  cp "$1" "${{root}}_flt.fits"
else
  echo "ERROR:    Can't find reference file iref\\$missing_ccd.fits" >> "$root.tra"
  echo "ERROR:    reference file missing"
fi
exit {rc}
"""


def _fake_calwf3(bindir: Path, rc: int) -> None:
    bindir.mkdir(exist_ok=True)
    exe = bindir / "calwf3.e"
    exe.write_text(FAKE_CALWF3.format(rc=rc))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _raw(path: Path) -> Path:
    hdr = fits.Header({"INSTRUME": "WFC3", "DETECTOR": "UVIS", "ROOTNAME": "IABC01XYQ"})
    fits.PrimaryHDU(header=hdr).writeto(path)
    return path


def test_hstcal_delegate_environment_argv_trailer_and_products(tmp_path: Path) -> None:
    _fake_calwf3(tmp_path / "bin", 0)
    raw = _raw(tmp_path / "iabc01xyq_raw.fits")
    out = tmp_path / "out"
    lines: list[str] = []
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "iref": "/refs/wfc3"}  # no trailing slash given
    products = calibrate([raw], out, engine="auto", environ=env, echo=lines.append)
    assert products == [out / "iabc01xyq_flt.fits"]
    called = (out / "calwf3_called.txt").read_text().splitlines()
    assert "argv=iabc01xyq_raw.fits" in called             # run on its copy in the output directory
    assert "iref=/refs/wfc3/" in called                     # trailing slash added
    assert "imclobber=yes" in called
    assert f"cwd={out}" in called
    assert any("Trailer line from calwf3" in ln for ln in lines)  # its .tra copied into our log
    assert any("calibration engine hstcal" in ln for ln in lines)
    hdr = fits.getheader(products[0])
    assert hdr["CAL_ENG"] == "hstcal" and "PROCTIME" in hdr


def test_hstcal_iref_from_site_cache(tmp_path: Path) -> None:
    from types import SimpleNamespace

    _fake_calwf3(tmp_path / "bin", 0)
    raw = _raw(tmp_path / "iabc01xyq_raw.fits")
    site = SimpleNamespace(areas=SimpleNamespace(crds=tmp_path / "crds"))
    calibrate([raw], tmp_path / "out", engine="hstcal", site=site, environ={"PATH": f"{tmp_path / 'bin'}:/bin"})
    called = (tmp_path / "out" / "calwf3_called.txt").read_text()
    assert f"iref={tmp_path}/crds/references/hst/" in called


@pytest.mark.parametrize(("rc", "error", "code"), [(115, MissingReference, 21), (2, OwlError, 20),
                                                   (7, OwlError, 40)])
def test_hstcal_exit_codes_are_mapped(tmp_path: Path, rc: int, error: type, code: int) -> None:
    _fake_calwf3(tmp_path / "bin", rc)
    raw = _raw(tmp_path / "iabc01xyq_raw.fits")
    with pytest.raises(error) as err:
        calibrate([raw], tmp_path / "out", engine="hstcal", environ={"PATH": f"{tmp_path / 'bin'}:/bin"})
    assert err.value.code == code
    assert f"exit {rc}" in err.value.line()


def test_hstcal_nothing_to_do_is_not_an_error(tmp_path: Path) -> None:
    _fake_calwf3(tmp_path / "bin", 116)
    raw = _raw(tmp_path / "iabc01xyq_raw.fits")
    lines: list[str] = []
    assert calibrate([raw], tmp_path / "out", engine="hstcal", environ={"PATH": f"{tmp_path / 'bin'}:/bin"},
                     echo=lines.append) == []
    assert any("nothing to do" in ln for ln in lines)


def test_cos_association_without_its_reference_tables_fails_clearly(tmp_path: Path) -> None:
    """The real COS association lacks 17 of its reference tables: one clear MissingReference, no traceback."""
    src = real_file("cos_fuv_ldfd01010")
    inp = tmp_path / "in"
    refs = tmp_path / "refs"
    inp.mkdir()
    refs.mkdir()
    for f in (src / "raw").glob("*.fits.gz"):
        shutil.copyfile(f, inp / f.name)
    for f in (src / "reference").glob("*.fits*"):
        shutil.copyfile(f, refs / f.name)
    with fits.open(inp / "ldfd01010_asn.fits.gz") as h:
        h.writeto(inp / "ldfd01010_asn.fits")
    with pytest.raises(MissingReference) as err:
        calibrate([inp / "ldfd01010_asn.fits"], tmp_path / "out", environ={"lref": f"{refs}/", "PATH": "/usr/bin"})
    msg = err.value.line()
    assert err.value.code == 21 and "reference file(s) missing" in msg
    assert err.value.keyword == "BPIXTAB" and "yae1249sl_bpix.fits" in msg
    # inputs were staged as copies with RANDSEED fixed, the originals untouched
    assert fits.getval(tmp_path / "out" / "ldfd01vnq_rawtag_a.fits", "RANDSEED") == 1
    assert fits.getval(inp / "ldfd01vnq_rawtag_a.fits.gz", "RANDSEED") == -1
