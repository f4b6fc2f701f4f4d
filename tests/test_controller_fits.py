"""The recalibrate workflow's entry: raw FITS staged by the controller, ingested by owl-ingest-fits."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.archive.store import Archive
from pipeline.core.asntable import build_asn_table
from pipeline.core.exitcodes import ExitCode
from pipeline.orchestration.controller import Controller, ControllerError
from tests.front_data import synthetic_raw

ASN, MEMBERS = "ib1f01010", ("ib1f01a1q", "ib1f01a2q")


@pytest.fixture
def raws(tmp_path):
    folder = tmp_path / "raws"
    folder.mkdir()
    for i, m in enumerate(MEMBERS):
        synthetic_raw(m, seed=i, asn_id=ASN).writeto(folder / f"{m}_raw.fits")
    build_asn_table(ASN, list(MEMBERS), "DITHER").writeto(folder / f"{ASN}_asn.fits")
    return folder


def ingest(site, dataset: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stages.ingest_fits", dataset, "--site", str(site.root)],
                          capture_output=True, text=True)


def test_staged_fits_are_registered_archived_and_copied(site, raws):
    ctl = Controller(site)
    assert ctl.stage_fits(ASN, raws) == list(MEMBERS)
    assert ctl.bb.members(ASN) == list(MEMBERS)
    result = ingest(site, ASN)
    assert result.returncode == 0, result.stderr
    assert "".join(ctl.bb.get(d).letter("IN") for d in (ASN, *MEMBERS)) == "ccc"
    work = site.areas.work / ASN
    assert sorted(p.name for p in work.glob("*.fits")) == [f"{ASN}_asn.fits", *(f"{m}_raw.fits" for m in MEMBERS)]
    archive = Archive(site)
    assert [f.kind for f in archive.files(MEMBERS[0])] == ["raw"]
    assert ingest(site, ASN).returncode == ExitCode.CONFLICT  # complete: the wrapper refuses to redo it
    forced = subprocess.run([sys.executable, "-m", "stages.ingest_fits", ASN, "--site", str(site.root), "--force"],
                            capture_output=True, text=True)
    assert forced.returncode == 0 and archive.versions(MEMBERS[0]) == [1]  # identical file: no new version


def test_a_raw_that_is_not_the_exposure_it_claims_is_refused(site, raws):
    synthetic_raw("ib1f01a9q").writeto(raws / f"{MEMBERS[1]}_raw.fits", overwrite=True)
    Controller(site).stage_fits(ASN, raws)
    result = ingest(site, ASN)
    assert result.returncode == ExitCode.BAD_INPUT
    assert f"ROOTNAME ib1f01a9q is not {MEMBERS[1]}" in result.stderr
    assert list(site.areas.quarantine.glob(f"{MEMBERS[1]}_raw.fits"))  # the staged copy, not the user's file
    assert (raws / f"{MEMBERS[1]}_raw.fits").exists()


def test_missing_files_are_named_before_anything_is_registered(site, raws):
    (raws / f"{MEMBERS[0]}_raw.fits").unlink()
    ctl = Controller(site)
    with pytest.raises(ControllerError, match=f"missing from .*: {MEMBERS[0]}_raw.fits"):
        ctl.stage_fits(ASN, raws)
    assert ctl.bb.find(ASN) is None
