"""Spectrum previews: a labelled flux-versus-wavelength PNG per segment (real COS x1dsum, synthetic x1d)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from pipeline.core.errors import BadInput
from pipeline.science import preview


def test_real_cos_x1dsum(tmp_path, realdata):
    src = tmp_path / "ldfd01010_x1dsum.fits.gz"
    shutil.copy(realdata / "cos_fuv_ldfd01010/calibrated_stsci/ldfd01010_x1dsum.fits.gz", src)
    (png,) = preview.make_previews(src, tmp_path / "out")
    assert png.name == "ldfd01010_x1dsum_fuva.png"
    img = np.asarray(Image.open(png).convert("L"))
    assert img.shape == (400, 1000)
    assert (img < 100).mean() > 0.01  # a drawn spectrum, not an empty frame

    primary, (seg,) = preview.read_segments(src)
    assert primary["OPT_ELEM"] == "G140L"
    assert seg.name == "FUVA" and seg.good.sum() > 10_000
    fig = preview.plot_segment(seg, "t")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Wavelength (Å)"
    assert ax.get_ylabel().startswith("Flux (10⁻¹⁴ erg") and "Å⁻¹" in ax.get_ylabel()
    lo, hi = ax.get_xlim()
    assert 1100 < lo < 1150 and 2100 < hi < 2300  # G140L/1105 on segment A
    ylo, yhi = ax.get_ylim()
    assert ylo < 0.5 < yhi < 20  # continuum ~1e-14 visible; the geocoronal Lyman-alpha spike clipped


def _x1d(path, rows):
    n = 200
    cols = [
        fits.Column("SEGMENT", "4A", array=[r[0] for r in rows]),
        fits.Column("WAVELENGTH", f"{n}D", unit="angstrom", array=[np.linspace(r[1], r[1] + 100, n) for r in rows]),
        fits.Column("FLUX", f"{n}E", unit="erg /s /cm**2 /angstrom", array=[r[2] for r in rows]),
        fits.Column("DQ_WGT", f"{n}E", array=[np.ones(n) for _ in rows]),
    ]
    hdr = fits.Header({"TARGNAME": "STAR", "INSTRUME": "COS", "DETECTOR": "FUV", "OPT_ELEM": "G130M",
                       "CENWAVE": 1291})
    fits.HDUList([fits.PrimaryHDU(header=hdr), fits.BinTableHDU.from_columns(cols, name="SCI")]).writeto(path)
    return path


def test_one_png_per_segment(tmp_path):
    flux = np.full(200, 3e-15)
    path = _x1d(tmp_path / "la8n01qsq_x1d.fits", [("FUVA", 1300.0, flux), ("FUVB", 1150.0, flux * 2)])
    pngs = preview.make_previews(path, tmp_path)
    assert [p.name for p in pngs] == ["la8n01qsq_x1d_fuva.png", "la8n01qsq_x1d_fuvb.png"]


def test_segment_without_good_points_refused(tmp_path):
    path = _x1d(tmp_path / "la8n01qsq_x1d.fits", [("FUVA", 1300.0, np.full(200, np.nan))])
    with pytest.raises(BadInput, match="segment FUVA has no good flux point"):
        preview.make_previews(path, tmp_path)
