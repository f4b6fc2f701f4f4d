"""A simulated association from _flt to archived _drz, previews and _trl.fits; CL cleans up or keeps."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from pipeline.archive.store import Archive
from pipeline.cli import main as owl
from pipeline.core.fsutil import sha256_file
from pipeline.core.names import parse_dataset
from pipeline.core.osf import Blackboard
from pipeline.core.stage import run_stage
from pipeline.core.trailer import Trailer, read_trl_fits
from stages.cl import Cleanup
from stages.ingest_pvw import IngestPreviews
from stages.ingest_sci import IngestScience
from stages.md import Drizzle
from stages.pvw import Previews
from tests.products_data import Field, measured_offsets, star_field, write_flt

ASN = "idn101010"
MEMBERS = ("idn101a1q", "idn101a2q")
SHAPE = (128, 160)
#: Front stages and CA done, MD onward to run; AC belongs to another area and is marked not applicable.
START = "cccccc_n____"


def _association(site, sky: Field, status: str = START, seed: int = 0) -> None:
    bb = Blackboard(site.database_url)
    bb.create(ASN, status=status)
    work = site.work_dir(parse_dataset(ASN))
    for i, member in enumerate(MEMBERS):
        bb.create(member, parent=ASN, status=status)
        Trailer(site.trailer_path(parse_dataset(member))).info(f"owl-ca: {member} calibrated")  # as CA leaves it
        write_flt(work / f"{member}_flt.fits", sky, shape=SHAPE, asn_id=ASN, seed=seed + i,
                  dither=(0.0, 0.0) if i == 0 else (5.5, 3.5), cosmic_rays=10)


def _cli(site, *args) -> tuple[int, str]:
    res = CliRunner().invoke(owl, [*args, "--site", str(site.root)])
    return res.exit_code, res.output


def test_association_from_flt_to_archive(site, tmp_path):
    sky = star_field(Field(), 24, SHAPE, seed=5)
    _association(site, sky)
    for stage in (Drizzle, IngestScience, Previews, IngestPreviews, Cleanup):
        assert run_stage(stage, [ASN]) == 0, stage.name
    bb = Blackboard(site.database_url)
    assert {bb.get(d).status for d in (ASN, *MEMBERS)} == {"cccccccncccc"}
    assert not site.work_dir(parse_dataset(ASN)).exists()  # completed: work area removed

    arch = Archive(site)
    kinds = {d: sorted(f.kind for f in arch.files(d)) for d in (ASN, *MEMBERS)}
    assert kinds[ASN] == ["drz", "drz_jpg", "drz_thumb_jpg", "trl"]
    assert kinds[MEMBERS[0]] == ["flt", "flt_jpg", "flt_thumb_jpg", "trl"]
    drz_row = arch.query(dataset=ASN, kind="drz")[0]
    assert (drz_row.instrument, drz_row.detector, drz_row.filters, drz_row.association) == \
        ("WFC3", "UVIS", "F606W", ASN)
    assert drz_row.crds_context == "hst_0001.pmap" and "DRIZ_VER" in drz_row.software

    code, out = _cli(site, "archive", "get", ASN, "--kind", "drz", "--dest", str(tmp_path / "v1"))
    assert code == 0, out
    drz = tmp_path / "v1" / f"{ASN}_drz.fits"
    assert np.median(measured_offsets(drz, sky.stars)) < 0.5
    (trl,) = arch.get(ASN, kind="trl", dest=tmp_path / "trl")
    lines = read_trl_fits(trl)
    assert any("owl-md started" in ln for ln in lines) and any("wrote idn101010_drz.fits" in ln for ln in lines)

    code, out = _cli(site, "archive", "verify", "--json")
    assert code == 0 and json.loads(out)["checked"] == 12

    # reprocessing: new calibrated exposures, MD and INGEST_SCI again -> a new drz version is served
    _association(site, sky, seed=10)
    assert run_stage(Drizzle, [ASN, "--force"]) == 0
    assert run_stage(IngestScience, [ASN, "--force"]) == 0
    new_drz = site.work_dir(parse_dataset(ASN)) / f"{ASN}_drz.fits"
    code, out = _cli(site, "archive", "get", ASN, "--kind", "drz", "--dest", str(tmp_path / "v2"), "--json")
    (served,) = json.loads(out)
    assert served["sha256"] == sha256_file(new_drz) != sha256_file(drz)
    assert served["version"] == max(arch.versions(ASN))
    old = arch.get(ASN, kind="drz", version=drz_row.version, dest=tmp_path / "old")[0]
    assert sha256_file(old) == sha256_file(drz)  # older versions are kept


def test_failed_dataset_keeps_its_work_area(site, capsys):
    _association(site, Field(), status="ccccce_n____")
    assert run_stage(Cleanup, [ASN]) == 0
    work = site.work_dir(parse_dataset(ASN))
    assert work.is_dir() and (work / f"{MEMBERS[0]}_flt.fits").exists()
    err = capsys.readouterr().err
    assert f"work area kept for inspection at {work}" in err and f"{ASN} CA=e" in err
    assert Archive(site).files(ASN, kind="trl")[0].name == f"{ASN}_trl.fits"
