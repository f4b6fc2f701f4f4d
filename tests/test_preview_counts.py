"""The photon-counting preview stretch: single SBC events stay visible next to bright sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.science.countstretch import counts_stretch, is_sparse
from pipeline.science.preview import render_image
from pipeline.simulate import sbc


def test_sparse_detection_and_stretch() -> None:
    img = np.zeros((64, 64), np.float32)
    img[10, 10] = 1.0                   # one event
    img[40:43, 40:43] = 500.0           # a source
    good = np.ones(img.shape, bool)
    assert is_sparse(img.ravel()) and not is_sparse(np.full(100, 30.0))
    shown = counts_stretch(img, good)
    assert shown[41, 41] == 1.0 and shown[10, 10] > 0.05 and shown[30, 10] == 0.0


def test_sbc_flt_preview(tmp_path: Path) -> None:
    from pipeline.science.calib import builtin

    refs = sbc.write_references(tmp_path / "jref")
    sbc.write_raw(tmp_path / "jsbc06abq_raw.fits", refs)
    env = {"jref": str(tmp_path / "jref") + "/"}
    flt = builtin.calibrate_exposure(tmp_path / "jsbc06abq_raw.fits", tmp_path, environ=env)
    im = render_image(flt)
    assert np.median(im) == 0 and np.percentile(im, 99.9) > 150 and 0.001 < np.mean(im > 0) < 0.5
