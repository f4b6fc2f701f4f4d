"""owl-bc and owl-ac as stages: every failure is its own trailer line, the column goes to e, exit 22."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.exitcodes import ExitCode
from pipeline.core.osf import Blackboard
from pipeline.core.stage import run_stage
from stages.ac import AfterCalibrationChecks
from stages.bc import BeforeCalibrationChecks
from tests import checks_support as cs

DATASET = cs.ROOT


@pytest.fixture
def work(site, monkeypatch):
    monkeypatch.delenv("CRDS_PATH", raising=False)
    monkeypatch.delenv("iref", raising=False)
    cs.reference_cache(site.root)  # the site's areas.crds
    path = site.areas.work / DATASET
    path.mkdir(parents=True)
    return path


def errors(site):
    text = (site.areas.logs / f"{DATASET}.trl").read_text().splitlines()
    return [line.split("-E-ERROR-", 1)[1] for line in text if "-E-ERROR-" in line]


def letter(site, column):
    return Blackboard(site.database_url).get(DATASET).letter(column)


def test_bc_passes_a_good_raw(site, work):
    cs.write_raw(work)
    assert run_stage(BeforeCalibrationChecks, [DATASET]) == ExitCode.SUCCESS
    assert letter(site, "BC") == "c"


def test_bc_reports_every_failure_on_its_own_line(site, work):
    cs.write_raw(work, primary={"CCDAMP": "CC", "BIASFILE": "iref$gone_bia.fits", "DARKCORR": "MAYBE"})
    assert run_stage(BeforeCalibrationChecks, [DATASET]) == ExitCode.CHECK_FAILED
    assert letter(site, "BC") == "e"
    lines = errors(site)
    raw = f"{DATASET}_raw.fits"
    assert f"bc: switch-values: {raw}: DARKCORR: 'MAYBE' is not one of PERFORM/OMIT/COMPLETE/SKIPPED" in lines
    assert f"bc: ccdamp: {raw}: CCDAMP: 'CC' is not a set of amplifiers from A-D" in lines
    assert any(ln.startswith(f"bc: references-present: {raw}: BIASFILE: iref$gone_bia.fits not found") for ln in lines)
    assert lines[-1].startswith("owl-bc: 3 check(s) failed")
    assert (work / raw).exists()  # a failed check is not bad input: nothing is quarantined


def test_ac_passes_good_products_and_uses_the_site_ceiling(site, work, monkeypatch):
    cs.write_raw(work)
    dq = np.zeros((cs.NY, cs.NX), np.int16)
    dq[: cs.NY // 2] = 16
    cs.write_flt(work, dq_data=dq)
    assert run_stage(AfterCalibrationChecks, [DATASET]) == ExitCode.CHECK_FAILED  # 50% > 25% default
    assert errors(site)[0].startswith(f"ac: flagged-fraction: {DATASET}_flt.fits: DQ,1: 50.0% of pixels")
    monkeypatch.setenv("OWL_CHECKS__MAX_FLAGGED_FRACTION", "0.6")
    assert run_stage(AfterCalibrationChecks, [DATASET, "--force"]) == ExitCode.SUCCESS
    assert letter(site, "AC") == "c"


def test_ac_missing_and_broken_products(site, work):
    cs.write_raw(work)
    assert run_stage(AfterCalibrationChecks, [DATASET]) == ExitCode.CHECK_FAILED
    assert errors(site)[0] == f"ac: products: {DATASET}_flt.fits: -: missing from {work}"
    sci = np.full((cs.NY, cs.NX), 5.0, np.float32)
    sci[0, 0] = np.nan
    cs.write_flt(work, sci_data=sci, primary={"FLATCORR": "PERFORM"})
    assert run_stage(AfterCalibrationChecks, [DATASET, "--force"]) == ExitCode.CHECK_FAILED
    lines = errors(site)
    assert f"ac: finite: {DATASET}_flt.fits: SCI,1: 1 NaN/Inf pixel(s)" in lines
    assert f"ac: switches-complete: {DATASET}_flt.fits: FLATCORR: still PERFORM: the step did not run" in lines


def test_owl_check_commands(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from pipeline.cli import main

    cache = cs.reference_cache(tmp_path)
    monkeypatch.setenv("CRDS_PATH", str(cache))
    monkeypatch.delenv("OWL_SITE", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    good = cs.write_raw(tmp_path)
    assert runner.invoke(main, ["check", "before", str(good)]).output == f"{good.name}: ok\n"
    bad = cs.write_raw(tmp_path, primary={"EXPTIME": -3.0})
    result = runner.invoke(main, ["check", "before", str(bad)])
    assert result.exit_code == ExitCode.CHECK_FAILED
    assert f"exptime: {bad.name}: EXPTIME: -3.0 s is negative" in result.output
    flt = cs.write_flt(tmp_path, primary={"PHOTCORR": "PERFORM"})
    report = runner.invoke(main, ["check", "after", "--json", str(flt)])
    assert report.exit_code == ExitCode.CHECK_FAILED
    assert '"rule": "switches-complete"' in report.output and '"keyword": "PHOTCORR"' in report.output


def test_ac_on_a_cr_split_association_needs_the_crj(site, work):
    from pipeline.core.asntable import build_asn_table

    asn, members = "ib3y01010", ("ib3y01c6q", "ib3y01c7q")
    bb = Blackboard(site.database_url)
    bb.create(asn)
    for m in members:
        bb.create(m, parent=asn)
    adir = site.areas.work / asn
    adir.mkdir()
    build_asn_table(asn, list(members), "CR-SPLIT").writeto(adir / f"{asn}_asn.fits")
    for m in members:
        cs.write_raw(adir, root=m)
        cs.write_flt(adir, filename=f"{m}_flt.fits", primary={"ROOTNAME": m})
    assert run_stage(AfterCalibrationChecks, [asn]) == ExitCode.CHECK_FAILED
    trl = (site.areas.logs / f"{asn}.trl").read_text()
    assert f"ac: products: ib3y01011_crj.fits: -: missing from {adir}" in trl
    cs.write_flt(adir, filename="ib3y01011_crj.fits", primary={"ROOTNAME": "ib3y01011", "CRCORR": "COMPLETE"})
    assert run_stage(AfterCalibrationChecks, [asn, "--force"]) == ExitCode.SUCCESS
    assert all(bb.get(n).letter("AC") == "c" for n in (asn, *members))
