"""owl-ingest-sci / owl-ingest-pvw: all or nothing, even when a file changes under the archive."""

from __future__ import annotations

from sqlalchemy import func, select

from pipeline.archive.ingest import ArchiveIngest
from pipeline.archive.store import Archive, ArchiveVersion
from pipeline.core.names import parse_dataset
from pipeline.core.osf import Blackboard
from pipeline.core.stage import run_stage
from stages.ingest_pvw import IngestPreviews
from stages.ingest_sci import IngestScience
from tests.products_data import Field, write_flt

ASN = "idn101010"
MEMBERS = ("idn101a1q", "idn101a2q")


def _work(site):
    bb = Blackboard(site.database_url)
    bb.create(ASN)
    work = site.work_dir(parse_dataset(ASN))
    for i, member in enumerate(MEMBERS):
        bb.create(member, parent=ASN)
        write_flt(work / f"{member}_flt.fits", Field(), shape=(32, 40), asn_id=ASN, seed=i)
    (work / f"{ASN}_drz.fits").write_bytes((work / f"{MEMBERS[0]}_flt.fits").read_bytes())
    (work / "idn101010_astrodrizzle.log").write_text("not a product")
    (work / f"{MEMBERS[0]}_blv_tmp.fits").write_bytes(b"scratch")
    return work


def test_ingest_sci_archives_each_dataset(site):
    _work(site)
    assert run_stage(IngestScience, [ASN]) == 0
    arch = Archive(site)
    assert [(f.dataset, f.kind) for f in arch.query()] == [(ASN, "drz"), (MEMBERS[0], "flt"), (MEMBERS[1], "flt")]
    assert arch.metadata(MEMBERS[1])["association"] == ASN
    assert run_stage(IngestScience, [ASN, "--force"]) == 0  # a rerun converges: no new versions
    assert arch.versions(MEMBERS[0]) == [1]


def test_file_changed_during_ingest_leaves_nothing(site, capsys, monkeypatch):
    work = _work(site)
    victim = work / f"{MEMBERS[1]}_flt.fits"
    original = ArchiveIngest._stage_file   # what the stage uses

    def stage_then_change(self, path, kind):
        staged = original(self, path, kind)
        if path == victim:
            with open(victim, "r+b") as fh:
                fh.seek(5000)
                fh.write(b"\x7f")
        return staged

    monkeypatch.setattr(ArchiveIngest, "_stage_file", stage_then_change)
    assert run_stage(IngestScience, [ASN]) == 20
    err = capsys.readouterr().err
    assert f"{victim.name} changed between copy and catalogue" in err and "nothing archived" in err
    assert Blackboard(site.database_url).get(ASN).letter("IS") == "e"
    arch = Archive(site)
    with arch.engine.connect() as conn:  # not even the datasets copied before the change
        assert conn.execute(select(func.count()).select_from(ArchiveVersion)).scalar() == 0
    assert list(arch.blobs.glob("??/*")) == [] and list(arch.tmp.iterdir()) == []
    assert (site.areas.quarantine / victim.name).exists()


def test_ingest_pvw_needs_previews(site, capsys):
    _work(site)
    assert run_stage(IngestPreviews, [ASN]) == 20
    assert "no preview in" in capsys.readouterr().err
