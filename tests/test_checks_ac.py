"""After-calibration checks: one crafted failure per rule on _flt files, and real STScI products."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from pipeline.science.checks import ac
from tests import checks_support as cs


def failures(path, **kwargs):
    return [(f.rule, f.keyword) for f in ac.check_product(path, **kwargs)]


def test_good_flt_passes(tmp_path):
    raw = cs.write_raw(tmp_path)
    assert failures(cs.write_flt(tmp_path), raw=raw) == []


def _nan_sci():
    sci = np.full((cs.NY, cs.NX), 10.0, np.float32)
    sci[3, 4] = np.nan
    sci[5, 6] = np.inf
    return sci


def _flagged_dq():
    dq = np.zeros((cs.NY, cs.NX), np.int16)
    dq[: cs.NY // 2] = 16  # hot: a serious flag in SDQFLAGS=31743
    dq[cs.NY // 2:, :4] = 1024  # sink pixel: not in SDQFLAGS=31743, must not count
    return dq


@pytest.mark.parametrize(("kwargs", "rule", "keyword"), [
    ({"primary": {"DARKCORR": "PERFORM"}}, "switches-complete", "DARKCORR"),
    ({"drop_extensions": ("DQ",)}, "extensions", "DQ"),
    ({"err_shape": (cs.NY, cs.NX - 1)}, "shapes", "ERR,1"),
    ({"sci_data": np.zeros((cs.NY, cs.NX))}, "shapes", "SCI,1"),  # float64
    ({"sci": {"BUNIT": "COUNTS"}}, "bunit", "SCI,1.BUNIT"),
    ({"sci_data": _nan_sci()}, "finite", "SCI,1"),
    ({"dq_data": _flagged_dq()}, "flagged-fraction", "DQ,1"),
    ({"sci": {"PHOTFLAM": -9999.0}}, "photometry", "SCI,1.PHOTFLAM"),
    ({"sci": {"PHOTMODE": None}}, "photometry", "SCI,1.PHOTMODE"),
    ({"primary": {"CAL_VER": None}}, "processing-record", "CAL_VER"),
])
def test_each_rule_reports_its_failure(tmp_path, kwargs, rule, keyword):
    path = cs.write_flt(tmp_path, **kwargs)
    found = failures(path)
    assert (rule, keyword) in found, found
    assert {r for r, _ in found} == {rule}, found
    line = next(f.line() for f in ac.check_product(path) if f.rule == rule)
    assert line.startswith(f"{rule}: {path.name}: {keyword}: ")


def test_full_frame_needs_both_chips_at_full_size(tmp_path):
    found = failures(cs.write_flt(tmp_path, primary={"SUBARRAY": False}))
    assert found == [("extensions", "SCI"), ("extensions", "ERR"), ("extensions", "DQ"), ("shapes", "SCI,1")]
    line = ac.check_product(tmp_path / f"{cs.ROOT}_flt.fits")[-1].line()
    assert line.endswith("SCI,1: 64x40, expected 4096x2051 (trimmed full frame)")


def test_raw_perform_must_become_complete(tmp_path):
    raw = cs.write_raw(tmp_path)
    flt = cs.write_flt(tmp_path, primary={"FLATCORR": "SKIPPED"}, sci={"BUNIT": "COUNTS"})
    assert failures(flt, raw=raw) == [("switches-complete", "FLATCORR")]
    assert failures(flt) == []  # without the raw, SKIPPED is not known to have been asked for


def test_flagged_fraction_ceiling_is_configurable(tmp_path):
    flt = cs.write_flt(tmp_path, dq_data=_flagged_dq())
    assert failures(flt, max_flagged_fraction=0.6) == []
    [line] = [f.line() for f in ac.check_product(flt, max_flagged_fraction=0.25)]
    assert "50.0% of pixels carry a serious flag (SDQFLAGS=31743)" in line
    assert "checks.max_flagged_fraction=25.0%" in line


def test_real_cos_products(tmp_path, realdata):
    src = realdata / "cos_fuv_ldfd01010" / "calibrated_stsci"
    for name in ("ldfd01vnq_x1d", "ldfd01010_x1dsum", "ldfd01vnq_flt_a"):
        with gzip.open(src / f"{name}.fits.gz") as fin, open(tmp_path / f"{name}.fits", "wb") as fout:
            shutil.copyfileobj(fin, fout)
    assert failures(tmp_path / "ldfd01vnq_x1d.fits") == []
    assert failures(tmp_path / "ldfd01010_x1dsum.fits") == []
    # the flt_a is an intermediate: the spectral steps run later, in the x1d
    assert {k for _, k in failures(tmp_path / "ldfd01vnq_flt_a.fits")} == {
        "HELCORR", "X1DCORR", "BACKCORR", "FLUXCORR", "TDSCORR"}


def test_real_wfc3_flc_sample_is_caught_as_cut_down(tmp_path, realdata):
    sample = realdata / "headers_only_samples" / "ib4606c5q_flc_10x10sample.fits"
    flc = tmp_path / "ib4606c5q_flc.fits"
    shutil.copyfile(sample, flc)
    found = failures(flc, max_flagged_fraction=1.0)
    assert found == [("shapes", "SCI,1"), ("shapes", "SCI,2")]  # 10x10 cut-outs of a full frame
