"""owl-rf as a stage: OSF moves, trailer lines and exit codes on a site whose cache is the real 2015 context."""

from __future__ import annotations

import shutil

import pytest
from astropy.io import fits

from pipeline.core.exitcodes import ExitCode
from pipeline.core.osf import Blackboard
from pipeline.core.stage import run_stage
from stages.rf import BestRefsStage
from tests.refs_support import REAL_CONTEXT, copy_raws, real_cache


@pytest.fixture
def rf_site(site, realdata, monkeypatch):
    monkeypatch.delenv("CRDS_PATH", raising=False)
    monkeypatch.delenv("CRDS_CONTEXT", raising=False)
    real_cache(site.root, realdata)  # the site's areas.crds
    return site


def trailer(site, dataset):
    return (site.areas.logs / f"{dataset}.trl").read_text()


def test_rf_assigns_references_for_an_association(rf_site, realdata, tmp_path):
    bb = Blackboard(rf_site.database_url)
    bb.create("j8bt09040")
    bb.create("j8bt09jcq", parent="j8bt09040")
    work = rf_site.areas.work / "j8bt09040"
    raw = copy_raws(realdata, tmp_path)[2]
    work.mkdir(parents=True)
    shutil.copyfile(raw, work / raw.name)
    assert run_stage(BestRefsStage, ["j8bt09040", "--site", str(rf_site.root)]) == ExitCode.SUCCESS
    header = fits.getheader(work / raw.name)
    assert header["CRDS_CTX"] == REAL_CONTEXT and header["CRREJTAB"] == "jref$n4e12510j_crr.fits"
    assert bb.get("j8bt09040").letter("RF") == "c" and bb.get("j8bt09jcq").letter("RF") == "c"
    text = trailer(rf_site, "j8bt09040")
    assert f"rf: CRDS context {REAL_CONTEXT} from cache {rf_site.areas.crds}" in text
    assert "j8bt09jcq_raw.fits: ACS references from hst_0349.pmap: " in text and "SHADFILE=N/A" in text


def test_rf_missing_reference_is_fatal_and_leaves_the_raw_alone(rf_site, realdata, tmp_path):
    work = rf_site.areas.work / "j8bt05njq"
    raw = copy_raws(realdata, tmp_path)[0]
    work.mkdir(parents=True)
    target = work / raw.name
    shutil.copyfile(raw, target)
    with fits.open(target, mode="update") as hdul:
        hdul[0].header["DATE-OBS"] = "1985-01-01"
    before = target.read_bytes()
    assert run_stage(BestRefsStage, ["j8bt05njq", "--site", str(rf_site.root)]) == ExitCode.MISSING_REFERENCE
    assert target.read_bytes() == before  # not rewritten, not quarantined
    assert Blackboard(rf_site.database_url).get("j8bt05njq").letter("RF") == "e"
    errors = [ln for ln in trailer(rf_site, "j8bt05njq").splitlines() if "-E-ERROR-" in ln]
    assert len(errors) == 1
    assert "BIASFILE: DATE-OBS/TIME-OBS='1985-01-01 " in errors[0] and "before the earliest USEAFTER" in errors[0]


def test_rf_without_server_config_is_a_config_error(rf_site, realdata, tmp_path):
    (rf_site.areas.crds / "config" / "hst" / "server_config").unlink()
    work = rf_site.areas.work / "j8bt05njq"
    work.mkdir(parents=True)
    shutil.copyfile(copy_raws(realdata, tmp_path)[0], work / "j8bt05njq_raw.fits")
    assert run_stage(BestRefsStage, ["j8bt05njq", "--site", str(rf_site.root)]) == ExitCode.CONFIG
    assert "is not configured for offline use: write" in trailer(rf_site, "j8bt05njq")


def test_rf_on_a_real_cos_association_updates_the_rawtag(rf_site, realdata):
    import gzip

    bb = Blackboard(rf_site.database_url)
    bb.create("ldfd01010")
    bb.create("ldfd01vnq", parent="ldfd01010")
    work = rf_site.areas.work / "ldfd01010"
    work.mkdir(parents=True)
    src = realdata / "cos_fuv_ldfd01010" / "raw" / "ldfd01vnq_rawtag_a.fits.gz"
    with gzip.open(src) as fin, open(work / "ldfd01vnq_rawtag_a.fits", "wb") as fout:
        shutil.copyfileobj(fin, fout)
    assert run_stage(BestRefsStage, ["ldfd01010", "--site", str(rf_site.root)]) == ExitCode.SUCCESS
    header = fits.getheader(work / "ldfd01vnq_rawtag_a.fits")
    assert header["CRDS_CTX"] == REAL_CONTEXT
    assert header["FLATFILE"] == "lref$xab1551cl_flat.fits"  # the 2015 rules, not the 2018 header's
    assert header["WCPTAB"] == "lref$u1t1616ql_wcp.fits" and header["HVTAB"] == "N/A"
