"""The built-in engine reads reference images as strictly as hstio: the layouts calwf3/calacs refuse
(SCI-only files, NEXTEND that promises fewer imsets than the chip needs, empty extensions without
NPIX1/NPIX2/PIXVALUE, missing ERR/DQ) are refused with one line naming the file and extension, and
``owl calibrate`` exits 21 on them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner

from pipeline.core.errors import MissingReference
from pipeline.core.exitcodes import ExitCode
from pipeline.science.calib.imageio import RefImage


def _plane(name: str, extver: int, chip: int, data: np.ndarray | None, **keys: object) -> fits.ImageHDU:
    hdu = fits.ImageHDU(data=data, name=name)
    hdu.header.update(EXTVER=extver, CCDCHIP=chip, LTV1=0.0, LTV2=0.0, **keys)
    return hdu


def _write(path: Path, hdus: list[fits.ImageHDU], nextend: int | None = None) -> Path:
    primary = fits.PrimaryHDU()
    primary.header["FILETYPE"] = "BIAS"
    primary.header["NEXTEND"] = len(hdus) if nextend is None else nextend
    fits.HDUList([primary, *hdus]).writeto(path, overwrite=True)
    return path


def _imset(extver: int, chip: int, *, err: bool = True, dq: bool = True) -> list[fits.ImageHDU]:
    out = [_plane("SCI", extver, chip, np.full((4, 6), chip, np.float32))]
    if err:
        out.append(_plane("ERR", extver, chip, None, NPIX1=6, NPIX2=4, PIXVALUE=0.5))
    if dq:
        out.append(_plane("DQ", extver, chip, None, NPIX1=6, NPIX2=4, PIXVALUE=0))
    return out


def test_a_real_layout_is_read_with_constant_planes_expanded(tmp_path: Path) -> None:
    path = _write(tmp_path / "good.fits", _imset(1, 2) + _imset(2, 1))
    ref = RefImage.open("BIASFILE", path)
    chip1 = ref.for_chip(1)
    assert chip1.extver == 2 and (chip1.ny, chip1.nx) == (4, 6)
    assert np.all(chip1.sci() == 1) and np.all(chip1.err() == np.float32(0.5)) and not chip1.dq().any()


@pytest.mark.parametrize(("hdus", "nextend", "message"), [
    # the simulator's old SATUFILE: SCI extensions only, NEXTEND=2 -> zero imsets for hstio
    (lambda: [_plane("SCI", 1, 2, np.ones((4, 6), np.float32)), _plane("SCI", 2, 1, np.ones((4, 6), np.float32))],
     2, "no reference data for chip 1"),
    # NEXTEND=3 (or absent) promises one imset: chip 1 in imset 2 is not looked at
    (lambda: _imset(1, 2) + _imset(2, 1), 3, "no reference data for chip 1"),
    # NEXTEND=6 but only SCI,1..2 (no ERR/DQ)
    (lambda: [_plane("SCI", 1, 2, np.ones((4, 6), np.float32)), _plane("SCI", 2, 1, np.ones((4, 6), np.float32))],
     6, "extension ERR,2 missing"),
    (lambda: _imset(1, 2) + _imset(2, 1, dq=False), 6, "extension DQ,2 missing"),
])
def test_layouts_hstio_refuses_are_refused(tmp_path: Path, hdus, nextend: int, message: str) -> None:
    path = _write(tmp_path / "bad.fits", hdus(), nextend)
    with pytest.raises(MissingReference) as err:
        RefImage.open("SATUFILE", path).for_chip(1)
    assert message in str(err.value)
    assert "SATUFILE bad.fits" in str(err.value) and err.value.code == ExitCode.MISSING_REFERENCE


@pytest.mark.parametrize("drop", ["NPIX1", "NPIX2", "PIXVALUE"])
def test_an_empty_plane_needs_npix_and_pixvalue(tmp_path: Path, drop: str) -> None:
    keys = {"NPIX1": 6, "NPIX2": 4, "PIXVALUE": 0.0}
    del keys[drop]
    hdus = [_plane("SCI", 1, 1, np.ones((4, 6), np.float32)), _plane("ERR", 1, 1, None, **keys),
            _plane("DQ", 1, 1, None, NPIX1=6, NPIX2=4, PIXVALUE=0)]
    path = _write(tmp_path / "noconst.fits", hdus)
    with pytest.raises(MissingReference, match=f"ERR,1 is empty \\(NAXIS=0\\) without {drop}"):
        RefImage.open("BIASFILE", path).for_chip(1)


def test_a_plane_of_another_size_is_refused(tmp_path: Path) -> None:
    hdus = [_plane("SCI", 1, 1, np.ones((4, 6), np.float32)), _plane("ERR", 1, 1, np.ones((4, 5), np.float32)),
            _plane("DQ", 1, 1, None, NPIX1=6, NPIX2=4, PIXVALUE=0)]
    with pytest.raises(MissingReference, match="ERR,1 is 5x4, SCI,1 6x4"):
        RefImage.open("BIASFILE", _write(tmp_path / "size.fits", hdus)).for_chip(1)


def test_sink_maps_need_only_their_sci_plane(tmp_path: Path) -> None:
    """calwf3/calacs read the SNKCFILE with getFloatHD(SCI): ERR/DQ are not opened."""
    path = _write(tmp_path / "snk.fits", [_plane("SCI", 1, 2, np.ones((4, 6), np.float32))], 3)
    ref = RefImage.open("SNKCFILE", path)
    assert ref.imset(1, planes=("SCI",)).sci().shape == (4, 6)
    with pytest.raises(MissingReference, match="ERR,1 missing"):
        ref.imset(1)


def test_owl_calibrate_exits_21_on_a_sci_only_satufile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end on the simulator's subarray site: replace its SATUFILE by the old SCI-only layout."""
    from pipeline.cli import main
    from tests.calib_simdata import build

    data = build(tmp_path / "sim", size="subarray", instruments=("wfc3",), associations=1)
    raw, refdir = data.raw(data.members()[0]), data.crds / "references" / "hst"
    sat = refdir / str(fits.getval(raw, "SATUFILE")).split("$")[-1]
    with fits.open(sat) as hdul:
        scis = [fits.ImageHDU(h.data, h.header) for h in hdul[1:] if h.header["EXTNAME"] == "SCI"]
        primary = hdul[0].header.copy()
    primary["NEXTEND"] = len(scis)
    fits.HDUList([fits.PrimaryHDU(header=primary), *scis]).writeto(sat, overwrite=True)
    monkeypatch.setenv("iref", f"{refdir}{os.sep}")
    result = CliRunner().invoke(main, ["calibrate", "--engine", "builtin", "--outdir", str(tmp_path / "out"),
                                       "-q", str(raw)])
    assert result.exit_code == ExitCode.MISSING_REFERENCE, result.output
    assert f"SATUFILE {sat.name}: no reference data for chip" in result.output
