"""ACS/HRC and ACS/SBC through a site: ``owl simulate --hrc/--sbc`` put them in the downlink as pods,
2FITS gives back the HRC raw the simulator writes with ``--fits`` (1062x1044 with overscan), and
new_science runs an HRC CR-SPLIT pair and an SBC REPEAT pair (summed by ACSSUM into ``_sfl``) to the
archive with every column ``c``."""

from __future__ import annotations

from pathlib import Path

import pytest
from astropy.io import fits
from click.testing import CliRunner

from pipeline.archive.store import Archive
from pipeline.cli import main as owl
from pipeline.core.names import parse_dataset
from pipeline.core.osf import Blackboard
from pipeline.core.stage import run_stage
from pipeline.science.telemetry.dan import write_downlink
from pipeline.simulate import build_reference_cache, hrc, sbc
from pipeline.simulate.acscrds import deliver_sbc_hrc
from stages.ac import AfterCalibrationChecks
from stages.ca import Calibrate
from tests.front_data import through_2fits
from tests.test_front_ir import _assert_same_raw
from tests.test_reprocess_e2e import _process_live


def test_cli_adds_hrc_pairs_and_alternates_sbc_types(tmp_path: Path) -> None:
    out = tmp_path / "fits"
    res = CliRunner().invoke(owl, ["simulate", "--size", "subarray", "--associations", "1", "--instruments", "acs",
                                   "--sbc", "2", "--hrc", "1", "--fits", str(out), "--json"])
    assert res.exit_code == 0, res.output
    names = {p.name for p in out.glob("*.fits")}
    assert {"jsbc01d1q_raw.fits", "jsbc02r1q_raw.fits", "jsbc02r2q_raw.fits", "jhrc01c1q_raw.fits",
            "jhrc01c2q_raw.fits", "jhrc01010_asn.fits"} <= names
    assert fits.getval(out / "jsbc02r1q_raw.fits", "RPTCORR") == "PERFORM"
    h = fits.getheader(out / "jhrc01c2q_raw.fits")
    assert (h["ASN_ID"], h["ASN_MTYP"], h["CRSPLIT"], h["CRCORR"]) == ("JHRC01010", "EXP-CRJ", 2, "PERFORM")
    assert fits.getdata(out / "jhrc01c1q_raw.fits", 1).shape == (hrc.NY, hrc.NX)
    with fits.open(out / "jhrc01010_asn.fits") as table:
        assert [r[1].strip() for r in table["ASN"].data] == ["EXP-CRJ", "EXP-CRJ", "PROD-CRJ"]
    assert (out / "truth" / "jhrc01c1q_truth.fits").is_file()


def test_hrc_pods_give_back_the_fits_raws(site, tmp_path: Path) -> None:
    found = 0
    for _asn, got_path, sim_path in through_2fits(site, [hrc.association(4, 3)], tmp_path / "fits", "dl-hrc"):
        with fits.open(got_path) as got, fits.open(sim_path) as sim:
            _assert_same_raw(got, sim)
            assert got["SCI", 1].data.shape == (1044, 1062) and got[0].header["CRCORR"] == "PERFORM"
        found += 1
    assert found == 2


@pytest.mark.slow
@pytest.mark.long  # a whole site run of minutes: make test-long
def test_hrc_crsplit_and_sbc_repeat_through_new_science(site, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("CRDS_PATH", raising=False)
    monkeypatch.delenv("CRDS_CONTEXT", raising=False)
    build_reference_cache(site.areas.crds, ("acs",), size="subarray")
    deliver_sbc_hrc(site.areas.crds, sbc_filters=("F125LP",), hrc_filters=("F555W",))
    write_downlink([hrc.association(2, 1), sbc.association(3, 2, "REPEAT")], site.areas.inbox, "dl-acsmodes")
    tops = _process_live(site)
    bb = Blackboard(site.database_url)
    archive = Archive(site)
    assert sorted(tops) == ["jhrc01010", "jsbc02010"]
    for top in tops:
        for dataset in [top, *bb.members(top)]:
            assert set(bb.get(dataset).status) == {"c"}, (dataset, bb.get(dataset).status)
        assert [f.name for f in archive.files(top, kind="drz")] == [f"{top}_drz.fits"]
    assert [f.name for f in archive.files("jhrc01011", kind="crj")] == ["jhrc01011_crj.fits"]
    assert [f.name for f in archive.files("jsbc02011", kind="sfl")] == ["jsbc02011_sfl.fits"]
    (sfl,) = archive.get("jsbc02011", kind="sfl", dest=tmp_path / "sfl")
    h = fits.getheader(sfl)
    assert (h["RPTCORR"], h["NCOMBINE"], h["EXPTIME"]) == ("COMPLETE", 2, 600.0)
    (flt,) = archive.get("jhrc01c1q", kind="flt", dest=tmp_path / "flt")
    assert fits.getval(flt, "BLEVCORR") == "COMPLETE" and fits.getdata(flt, 1).shape == (1024, 1024)


def test_sbc_with_only_dummy_references_calibrates_to_nothing(site, monkeypatch) -> None:
    """calacs's NOTHING_TO_DO in a site: CA completes without a product (a warning in the trailer),
    AC fails on the missing ``_flt`` and names it."""
    monkeypatch.delenv("jref", raising=False)  # references come from the site's CRDS cache
    refs = sbc.write_references(site.areas.crds / "references" / "hst")
    for path in refs.values():
        with fits.open(path, mode="update") as h:
            h[0].header["PEDIGREE"] = "DUMMY 01/03/2002"
    dataset = parse_dataset("jsbc05abq")
    work = site.work_dir(dataset)
    work.mkdir(parents=True)
    sbc.write_raw(work / dataset.file("raw"), refs)
    bb = Blackboard(site.database_url)
    bb.create(dataset)
    assert run_stage(Calibrate, [dataset.name]) == 0
    assert bb.get(dataset.name).letter("CA") == "c" and not (work / dataset.file("flt")).exists()
    assert "PEDIGREE = DUMMY" in site.trailer_path(dataset).read_text()
    assert run_stage(AfterCalibrationChecks, [dataset.name]) != 0
    assert "jsbc05abq_flt.fits: -: missing" in site.trailer_path(dataset).read_text()
