"""Before-calibration checks: one crafted failure per rule, all failures reported, real HRC raws."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from astropy.io import fits

from pipeline.core.errors import BadInput, CheckFailed
from pipeline.core.exitcodes import ExitCode
from pipeline.science import refs
from pipeline.science.checks import bc
from pipeline.science.checks.rules import raise_failures
from tests import checks_support as cs
from tests.refs_support import copy_raws, real_cache


@pytest.fixture
def cache(tmp_path):
    return cs.reference_cache(tmp_path)


def failures_of(tmp_path, cache, **kwargs):
    raw = cs.write_raw(tmp_path, **kwargs)
    return [(f.rule, f.keyword) for f in bc.check_raw(raw, cache, environ={})], raw


def test_good_raw_passes_every_rule(tmp_path, cache):
    assert failures_of(tmp_path, cache)[0] == []
    assert len(bc.RULES) == len({r.name for r in bc.RULES}) >= 10


@pytest.mark.parametrize(("kwargs", "rule", "keyword"), [
    ({"primary": {"INSTRUME": "FOO"}}, "instrument-known", "INSTRUME"),
    ({"primary": {"DETECTOR": "XYZ"}}, "detector-known", "DETECTOR"),
    ({"primary": {"ROOTNAME": "ib3y01zzq"}}, "rootname", "ROOTNAME"),
    ({"drop": ("FLASHSTA",)}, "required-keywords", "FLASHSTA"),
    ({"primary": {"SUBARRAY": "yes"}}, "required-keywords", "SUBARRAY"),
    ({"primary": {"DARKCORR": "MAYBE"}}, "switch-values", "DARKCORR"),
    ({"primary": {"CCDAMP": "CC"}}, "ccdamp", "CCDAMP"),
    ({"primary": {"EXPTIME": 500.0}}, "exptime", "EXPTIME"),
    ({"primary": {"NEXTEND": 6}}, "nextend", "NEXTEND"),
    ({"sci": {"CCDCHIP": None}}, "science-geometry", "SCI,1.CCDCHIP"),
    ({"primary": {"BIASFILE": "iref$nothere_bia.fits"}}, "references-present", "BIASFILE"),
    ({"drop": ("BPIXTAB",)}, "references-present", "BPIXTAB"),  # must exist even though N/A is fine
    ({"primary": {"SNKCFILE": "N/A"}}, "references-present", "SNKCFILE"),
    ({"primary": {"PFLTFILE": "N/A"}}, "references-present", "PFLTFILE"),  # all three flats N/A
    ({"primary": {"CCDGAIN": 2.0}}, "references-match", "BIASFILE"),
    ({"primary": {"FILTER": "F814W"}}, "references-match", "PFLTFILE"),
    ({"primary": {"DARKFILE": "iref$t4_bia.fits"}}, "references-match", "DARKFILE"),  # a bias as dark
])
def test_each_rule_reports_its_failure(tmp_path, cache, kwargs, rule, keyword):
    found, raw = failures_of(tmp_path, cache, **kwargs)
    assert (rule, keyword) in found, found
    assert len(found) == 1, found  # the crafted fault trips exactly its own rule
    line = bc.check_raw(raw, cache, environ={})[0].line()
    assert line.startswith(f"{rule}: {raw.name}: {keyword}: ")


def test_reference_file_checks_read_the_file(tmp_path, cache):
    refdir = cache / "references" / "hst"
    cs.write_reference(refdir / "t1_ccd.fits", "CCD PARAMETERS", True, PEDIGREE="DUMMY 01/01/2010")
    cs.write_reference(refdir / "t5_drk.fits", "DARK", False, DETECTOR="IR")
    found, _ = failures_of(tmp_path, cache)
    assert found == [("references-match", "CCDTAB"), ("references-match", "DARKFILE")]


def test_switch_off_means_reference_not_needed(tmp_path, cache):
    found, _ = failures_of(tmp_path, cache, primary={"BIASCORR": "OMIT", "BIASFILE": "N/A"})
    assert found == []
    found, _ = failures_of(tmp_path, cache, primary={"BIASCORR": "PERFORM", "BIASFILE": "N/A"})
    assert found == [("references-present", "BIASFILE")]


def test_hstcal_environment_prefix_is_honoured(tmp_path, cache):
    raw = cs.write_raw(tmp_path)
    refdir = str(cache / "references" / "hst")
    assert bc.check_raw(raw, cache, environ={"iref": refdir + "/"}) == []
    missing = bc.check_raw(raw, cache, environ={"iref": refdir})  # no trailing slash, as hstcal fails
    assert {f.keyword for f in missing} >= {"CCDTAB", "BIASFILE"}


def test_all_failures_reported_together(tmp_path, cache):
    raw = cs.write_raw(tmp_path, primary={"CCDAMP": "AE", "DARKCORR": "MAYBE", "EXPTIME": -1.0,
                                          "BIASFILE": "iref$gone_bia.fits"})
    failures = bc.check_raw(raw, cache, environ={})
    assert {f.rule for f in failures} == {"ccdamp", "switch-values", "exptime", "references-present"}
    with pytest.raises(CheckFailed) as err:
        raise_failures(failures)
    assert err.value.code == ExitCode.CHECK_FAILED and len(err.value.failures) == len(failures)


def test_real_hrc_raws_report_references_missing_from_the_cache(tmp_path, realdata):
    cache = real_cache(tmp_path, realdata)
    raws = copy_raws(realdata, tmp_path / "raws")
    refs.assign_bestrefs(raws, refs.load_context(cache))
    crr = raws[2]  # j8bt09jcq: CRSPLIT=2, CRREJTAB needed
    before = bc.check_raw(crr, cache, environ={})
    assert {f.rule for f in before} == {"references-present"}
    by_key = {f.keyword: f.line() for f in before}
    assert set(by_key) == {"CCDTAB", "BPIXTAB", "BIASFILE", "SATUFILE", "OSCNTAB", "DARKFILE", "PFLTFILE",
                           "IMPHTTAB", "CRREJTAB"}
    assert by_key["BIASFILE"] == (f"references-present: {crr.name}: BIASFILE: jref$m4m0925ij_bia.fits not "
                                  f"found (looked for {cache}/references/hst/m4m0925ij_bia.fits)")
    assert by_key["SATUFILE"].endswith("SATUFILE: missing, but BIASCORR=PERFORM needs it")
    shutil.copyfile(realdata / "acs_hrc_j8bt" / "reference" / "n4e12510j_crr.fits",
                    cache / "references" / "hst" / "n4e12510j_crr.fits")
    bpx = realdata / "acs_hrc_j8bt" / "reference" / "j4d1435jj_bpx.fits"
    shutil.copyfile(bpx, cache / "references" / "hst" / bpx.name)
    with fits.open(crr, mode="update") as hdul:
        hdul[0].header["BPIXTAB"] = f"jref${bpx.name}"  # a real HRC bad-pixel table: FILETYPE/DETECTOR match
    after = {f.keyword for f in bc.check_raw(crr, cache, environ={})}
    assert after == set(by_key) - {"CRREJTAB", "BPIXTAB"}


def test_headers_astropy_alone_reads_give_the_same_verdicts(tmp_path, cache):
    """A raw with a card only astropy reads (HIERARCH) is checked on astropy's headers, with the
    verdicts of the plain-Python reading: a clean raw passes, a wrong gain is reported the same way."""
    from pipeline.core.fitscards import read_cards

    for gain, expected in ((1.5, []), (2.0, [("references-match", "BIASFILE")])):
        raw = cs.write_raw(tmp_path, primary={"CCDGAIN": gain})
        plain = [(f.rule, f.keyword, f.line()) for f in bc.check_raw(raw, cache, environ={})]
        with fits.open(raw, mode="update") as hdul:
            hdul[0].header["HIERARCH OWL TEST CARD"] = 1
        assert read_cards(raw) is None
        unusual = [(f.rule, f.keyword, f.line()) for f in bc.check_raw(raw, cache, environ={})]
        assert unusual == plain and [f[:2] for f in plain] == expected


def test_checking_a_raw_imports_neither_numpy_nor_astropy(tmp_path, cache):
    """BC reads headers only: numpy and astropy stay out of its process (~0.13 s of a 0.2 s node)."""
    raw = cs.write_raw(tmp_path)
    code = ("import sys; from pathlib import Path; from pipeline.science.checks import bc; "
            f"assert bc.check_raw(Path({str(raw)!r}), Path({str(cache)!r}), environ={{}}) == []; "
            "print(sorted(m for m in ('numpy', 'astropy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_damaged_gzip_raw_is_bad_input(tmp_path, cache):
    import gzip

    raw = cs.write_raw(tmp_path)
    packed = bytearray(gzip.compress(raw.read_bytes()))
    packed[30:60] = b"\xff" * 30
    bad = tmp_path / f"{raw.name}.gz"
    bad.write_bytes(bytes(packed))
    with pytest.raises(BadInput, match="not a readable FITS file"):
        bc.check_raw(bad, cache, environ={})
