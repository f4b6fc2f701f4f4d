"""Image previews: sizes, chip layout, masking, stretch, and the all-NaN refusal (pipeline.science.preview, owl-pvw)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from pipeline.core.errors import BadInput
from pipeline.core.names import parse_dataset
from pipeline.core.osf import Blackboard
from pipeline.core.stage import run_stage
from pipeline.science import preview
from stages.pvw import Previews
from tests.products_data import CHIP_GAP, Field, star_field, write_flt

SHAPE = (120, 160)


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_real_acs_raw(tmp_path, realdata):
    raw = tmp_path / "j8bt05njq_raw.fits"
    shutil.copy(realdata / "acs_hrc_j8bt/raw/j8bt05njq_raw.fits", raw)
    full, thumb = preview.make_previews(raw, tmp_path / "out")
    assert (full.name, thumb.name) == ("j8bt05njq_raw.jpg", "j8bt05njq_raw_thumb.jpg")
    img, small = _pixels(full), _pixels(thumb)
    assert img.shape == (1044, 1062)
    assert max(small.shape) == 128
    # a crowded cluster field: dark sky, many bright stars, nothing saturates the whole frame
    assert 5 < np.median(img) < 80
    assert (img > 250).mean() < 0.05 and (img > 200).sum() > 1000


def test_chips_laid_out_as_on_the_sky(tmp_path):
    flt = write_flt(tmp_path / "idn101a1q_flt.fits", star_field(Field(), 10, SHAPE), shape=SHAPE)
    with fits.open(flt, mode="update") as hdul:
        hdul["SCI", 1].data[40:56, 64:80] += 3000.0  # a bright patch on the lower chip (extension 1, UVIS2)
        hdul["DQ", 2].data[8:24, 32:48] = 256  # a saturated block on the upper chip (JPEG-block aligned)
    full, _thumb = preview.make_previews(flt, tmp_path)
    img = _pixels(full).astype(int)
    ny = SHAPE[0]
    assert img.shape == (2 * ny + CHIP_GAP, SHAPE[1])
    top = img[:ny]
    assert img[128:144].max() <= 4  # JPEG blocks wholly inside the gap between chips: black
    # lower-chip rows 40..55 (y up) are picture rows 215..230: the patch sits low in the picture
    patch = slice(2 * ny + CHIP_GAP - 1 - 53, 2 * ny + CHIP_GAP - 1 - 41)
    assert img[patch, 66:78].min() > 200 and img[40:56, 66:78].mean() < 100
    # DQ rows 8..23 (y up) of the upper chip are picture rows 96..111 counted from the top
    assert top[96:112, 32:48].max() <= 4 and top[96:112, 56:72].max() > 20


def test_drizzled_zero_weight_is_black(tmp_path):
    sci = np.random.default_rng(1).normal(100, 5, (64, 80)).astype(np.float32)
    wht = np.ones_like(sci)
    wht[:, :20] = 0
    sci[:, :20] = 0.0
    drz = tmp_path / "idn101010_drz.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(sci, name="SCI"), fits.ImageHDU(wht, name="WHT")]).writeto(drz)
    img = _pixels(preview.make_previews(drz, tmp_path)[0]).astype(int)
    assert img[:, :16].max() <= 4 and img[:, 24:].mean() > 20


def test_stretch_is_robust():
    values = np.concatenate([np.random.default_rng(2).normal(50, 3, 100_000), [1e9, -1e9]])
    lo, hi = preview.robust_limits(values)
    assert 40 < lo < 50 and 50 < hi < 70  # one wild pixel does not set the scale
    out = preview.asinh_stretch(np.array([lo, hi, 1e9]), lo, hi)
    assert out.tolist() == [0.0, 1.0, 1.0]


def test_all_nan_image_refused(tmp_path):
    flt = write_flt(tmp_path / "idn101a1q_flt.fits", Field(), shape=SHAPE)
    with fits.open(flt, mode="update") as hdul:
        for ext in (1, 2):
            hdul["SCI", ext].data[:] = np.nan
    with pytest.raises(BadInput, match=r"idn101a1q_flt\.fits: no finite, unflagged pixel in 2 science array"):
        preview.make_previews(flt, tmp_path)
    assert not list(tmp_path.glob("*.jpg"))


def test_stage_all_nan_is_error_and_quarantined(site, capsys):
    name = "idn102b3q"
    Blackboard(site.database_url).create(name)
    work = site.work_dir(parse_dataset(name))
    flt = write_flt(work / f"{name}_flt.fits", Field(), shape=SHAPE)
    with fits.open(flt, mode="update") as hdul:
        hdul["SCI", 1].data[:] = np.nan
        hdul["SCI", 2].data[:] = np.inf
    assert run_stage(Previews, [name]) == 20
    err = capsys.readouterr().err
    assert f"{name}_flt.fits: no finite, unflagged pixel" in err and "quarantined to" in err
    assert Blackboard(site.database_url).get(name).letter("PV") == "e"
    assert (site.areas.quarantine / flt.name).exists()
    assert not list(work.glob("*.jpg"))
    assert "no finite, unflagged pixel" in site.trailer_path(parse_dataset(name)).read_text()
