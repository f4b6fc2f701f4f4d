"""The content-addressed archive and its catalogue (pipeline.archive.store, ``owl archive``)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import threading

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner

from pipeline.archive.store import Archive, ArchiveFile, ArchiveVersion, NotArchived
from pipeline.cli import main as owl
from pipeline.core.errors import BadInput


def _fits(path, **cards):
    hdr = fits.Header()
    for k, v in {"INSTRUME": "WFC3", "DETECTOR": "UVIS", "TARGNAME": "NGC-6397", "RA_TARG": 265.175,
                 "DEC_TARG": -53.674, "FILTER": "F606W", "EXPTIME": 350.0, "DATE-OBS": "2024-03-01",
                 "TIME-OBS": "12:00:00", "PROPOSID": 17001, "ASN_ID": "IDN101010", "CCDAMP": "ABCD",
                 **cards}.items():
        hdr[k] = v
    fits.HDUList([fits.PrimaryHDU(header=hdr),
                  fits.ImageHDU(np.arange(64, dtype=np.float32).reshape(8, 8), name="SCI")]).writeto(path)
    return path


def _blobs(arch: Archive) -> list:
    return sorted(arch.blobs.glob("??/*"))


def _rows(arch: Archive) -> int:
    from sqlalchemy import func, select

    with arch.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(ArchiveVersion)).scalar() + \
            conn.execute(select(func.count()).select_from(ArchiveFile)).scalar()


def test_versions_get_and_dedup(site, tmp_path):
    arch = Archive(site)
    raw = _fits(tmp_path / "idn101a1q_raw.fits")
    flt = _fits(tmp_path / "idn101a1q_flt.fits", CAL_VER="3.7.1", CRDS_CTX="hst_1100.pmap", EXPTIME=351.0)
    assert arch.ingest("idn101a1q", [(raw, "raw"), (flt, "flt")]) == 1
    first = arch.version_info("idn101a1q")[0]
    assert first.fields["crds_context"] == "hst_1100.pmap"
    assert first.fields["software"] == {"CAL_VER": "3.7.1"}
    assert first.fields["exptime"] == 350.0  # the raw file describes the dataset first
    assert first.fields["association"] == "idn101010"

    with fits.open(flt, mode="update") as hdul:
        hdul[1].data[0, 0] = -1
    assert arch.ingest("idn101a1q", [(flt, "flt")], {"reason": "recalibrated"}) == 2
    versions = arch.version_info("idn101a1q")
    assert arch.versions("idn101a1q") == [1, 2]
    assert versions[1].extra == {"reason": "recalibrated"}
    assert versions[1].fields["filters"] == "F606W"
    assert len(_blobs(arch)) == 3  # raw, flt v1, flt v2

    served = {f.kind: f.version for f in arch.files("idn101a1q")}
    assert served == {"raw": 1, "flt": 2}  # newest of each kind
    out = arch.get("idn101a1q", kind="flt", dest=tmp_path / "out")
    assert [p.name for p in out] == ["idn101a1q_flt.fits"]
    assert fits.getdata(out[0], 1)[0, 0] == -1
    old = arch.get("idn101a1q", kind="flt", version=1, dest=tmp_path / "old")
    assert fits.getdata(old[0], 1)[0, 0] == 0

    assert arch.ingest("idn101a1q", [(flt, "flt")], {"reason": "rerun"}) == 2  # a rerun converges
    assert arch.ingest("idn101a1q", [(raw, "raw")]) == 3  # v1 also held a flt: new version, same blob
    assert arch.ingest("idn101a1q", [(raw, "raw")]) == 3
    assert len(_blobs(arch)) == 3
    assert arch.metadata("idn101a1q", 2)["reason"] == "recalibrated"
    assert arch.files("idn101a1q", kind="drz") == []
    with pytest.raises(NotArchived, match="kind drz"):
        arch.get("idn101a1q", kind="drz", dest=tmp_path)
    assert arch.verify().ok


def test_changed_between_copy_and_catalogue_leaves_nothing(site, tmp_path, monkeypatch):
    arch = Archive(site)
    good = _fits(tmp_path / "idn101a1q_raw.fits")
    victim = _fits(tmp_path / "idn101a1q_flt.fits")
    original = Archive._stage_file

    def stage_then_edit(self, path, kind):
        staged = original(self, path, kind)
        if path == victim:
            with open(victim, "ab") as fh:
                fh.write(b"\0" * 2880)
        return staged

    monkeypatch.setattr(Archive, "_stage_file", stage_then_edit)
    with pytest.raises(BadInput, match=r"idn101a1q_flt\.fits changed between copy and catalogue") as err:
        arch.ingest("idn101a1q", [(good, "raw"), (victim, "flt")])
    assert err.value.path == victim
    assert _rows(arch) == 0
    assert _blobs(arch) == []
    assert list(arch.tmp.iterdir()) == []


def test_failed_commit_removes_new_blobs_only(site, tmp_path, monkeypatch):
    arch = Archive(site)
    raw = _fits(tmp_path / "idn101a1q_raw.fits")
    arch.ingest("idn101a1q", [(raw, "raw")])
    before = _blobs(arch)
    flt = _fits(tmp_path / "idn101a1q_flt.fits", EXPTIME=1.0)

    def boom(*_args, **_kw):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Archive, "_commit", boom)
    with pytest.raises(RuntimeError):
        arch.ingest("idn101a1q", [(raw, "raw"), (flt, "flt")])
    assert _blobs(arch) == before  # the shared raw blob survives, the new flt blob is gone


def test_bad_inputs_are_refused(site, tmp_path):
    arch = Archive(site)
    broken = tmp_path / "idn101a1q_flt.fits"
    broken.write_bytes(b"SIMPLE  = this is not FITS")
    with pytest.raises(BadInput, match="not a readable FITS file"):
        arch.ingest("idn101a1q", [(broken, "flt")])
    with pytest.raises(BadInput, match="invalid file kind"):
        arch.ingest("idn101a1q", [(broken, "../x")])
    with pytest.raises(BadInput, match="does not exist"):
        arch.ingest("idn101a1q", [(tmp_path / "nope.fits", "flt")])
    assert _rows(arch) == 0


def test_non_fits_versions_keep_the_catalogue_fields(site, tmp_path):
    arch = Archive(site)
    arch.ingest("idn101a1q", [(_fits(tmp_path / "idn101a1q_raw.fits"), "raw")])
    jpg = tmp_path / "idn101a1q_flt.jpg"
    jpg.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert arch.ingest("idn101a1q", [(jpg, "flt_jpg")]) == 2
    latest = arch.version_info("idn101a1q")[-1]
    assert latest.fields["detector"] == "UVIS"
    # Selection reads the version holding the raw file, not the newer preview version.
    assert [(d, v, h["CCDAMP"]) for d, v, h in arch.headers()] == [("idn101a1q", 1, "ABCD")]


def test_query_filters(site, tmp_path, realdata):
    arch = Archive(site)
    raw = tmp_path / "j8bt05njq_raw.fits"
    shutil.copy(realdata / "acs_hrc_j8bt/raw/j8bt05njq_raw.fits", raw)
    x1dsum = tmp_path / "ldfd01010_x1dsum.fits.gz"
    shutil.copy(realdata / "cos_fuv_ldfd01010/calibrated_stsci/ldfd01010_x1dsum.fits.gz", x1dsum)
    arch.ingest("j8bt05njq", [(raw, "raw")])
    arch.ingest("ldfd01010", [(x1dsum, "x1dsum")])
    arch.ingest("idn101a1q", [(_fits(tmp_path / "idn101a1q_raw.fits"), "raw")])

    def names(**kw):
        return [e.dataset for e in arch.query(**kw)]

    assert names(instrument="acs") == ["j8bt05njq"]
    assert names(detector="FUV") == ["ldfd01010"]  # COS keeps EXPTIME/DATE-OBS in extension 1
    assert arch.query(dataset="ldfd01010")[0].exptime == pytest.approx(5055.712)
    assert names(filters="g140l") == ["ldfd01010"]
    assert names(target="ngc*") == ["idn101a1q", "j8bt05njq"]
    assert names(program="9019") == ["j8bt05njq"]
    assert names(date_from="2002-04-13", date_to="2002-04-13") == ["j8bt05njq"]
    assert names(ra=6.02, dec=-72.08, radius=0.1) == ["j8bt05njq"]
    assert names(ra=6.02, dec=-72.08, radius=0.001) == []
    assert names(header={"CCDAMP": "C", "INSTRUME": "ACS"}) == ["j8bt05njq"]
    assert names(header={"CCDGAIN": 2}) == ["j8bt05njq"]
    assert names(header={"CCDGAIN": 1}) == []
    assert names(kind="x1dsum") == ["ldfd01010"]
    assert names(association="j8bt05020") == ["j8bt05njq"]


def test_concurrent_ingests_get_distinct_versions(site, tmp_path):
    arch = Archive(site)
    paths = [_fits(tmp_path / f"idn101a1q_flt{i}.fits", EXPTIME=float(i)) for i in range(4)]
    results, errors = [], []

    def work(p):
        try:
            results.append(Archive(site).ingest("idn101a1q", [(p, "flt")]))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [1, 2, 3, 4]
    assert arch.verify().ok


def test_cli_verify_reports_damage(site, tmp_path):
    arch = Archive(site)
    arch.ingest("idn101a1q", [(_fits(tmp_path / "idn101a1q_raw.fits"), "raw"),
                              (_fits(tmp_path / "idn101a1q_flt.fits", EXPTIME=2.0), "flt")])
    runner = CliRunner()
    ok = runner.invoke(owl, ["archive", "verify", "--site", str(site.root)])
    assert ok.exit_code == 0, ok.output
    assert "0 mismatch(es), 0 missing" in ok.output

    flt_blob = arch.files("idn101a1q", kind="flt")[0].path
    os.chmod(flt_blob, 0o644)
    with open(flt_blob, "r+b") as fh:
        fh.seek(100)
        fh.write(b"X")
    arch.files("idn101a1q", kind="raw")[0].path.unlink()
    bad = runner.invoke(owl, ["archive", "verify", "--site", str(site.root), "--json"])
    assert bad.exit_code == 1
    report = json.loads(bad.output)
    assert len(report["mismatches"]) == 1 and "idn101a1q_flt.fits" in report["mismatches"][0]
    assert len(report["missing"]) == 1 and "idn101a1q_raw.fits" in report["missing"][0]

    got = runner.invoke(owl, ["archive", "get", "idn101a1q", "--kind", "flt", "--dest", str(tmp_path / "o"),
                              "--site", str(site.root)])
    assert got.exit_code != 0 and "damaged" in got.output
    assert not (tmp_path / "o" / "idn101a1q_flt.fits").exists()


def test_cli_query_versions_get(site, tmp_path):
    arch = Archive(site)
    raw = _fits(tmp_path / "idn101a1q_raw.fits")
    arch.ingest("idn101a1q", [(raw, "raw")])
    first = raw.read_bytes()
    fits.setval(raw, "PROCTIME", value=60400.5)  # reprocessed: new bytes
    arch.ingest("idn101a1q", [(raw, "raw")])
    runner = CliRunner()
    res = runner.invoke(owl, ["archive", "query", "--detector", "uvis", "--json", "--site", str(site.root)])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert [(r["dataset"], r["version"]) for r in rows] == [("idn101a1q", 2)]
    res = runner.invoke(owl, ["archive", "query", "--all-versions", "--header", "CCDAMP=ABCD",
                              "--site", str(site.root)])
    assert "2 file(s)" in res.output
    res = runner.invoke(owl, ["archive", "versions", "idn101a1q", "--site", str(site.root)])
    assert "idn101a1q version 2" in res.output
    res = runner.invoke(owl, ["archive", "get", "idn101a1q", "--version", "1", "--dest", str(tmp_path / "g"),
                              "--site", str(site.root)])
    assert res.exit_code == 0 and (tmp_path / "g" / "idn101a1q_raw.fits").read_bytes() == first
    res = runner.invoke(owl, ["archive", "get", "idn101a1q", "--version", "7", "--site", str(site.root)])
    assert res.exit_code == 2 and "no archived files of version 7" in res.output


def test_catalogue_on_postgresql(site, tmp_path, pg_database):
    """The same catalogue on a site database in PostgreSQL: JSON header selection, versions, verify."""
    from pipeline.core.config import Database

    arch = Archive(dataclasses.replace(site, database=Database(url=pg_database)))
    raw = _fits(tmp_path / "idn101a1q_raw.fits")
    assert arch.ingest("idn101a1q", [(raw, "raw")]) == 1
    fits.setval(raw, "PROCTIME", value=60400.5)
    assert arch.ingest("idn101a1q", [(raw, "raw")], {"campaign": "x"}) == 2
    assert [e.version for e in arch.query(header={"CCDAMP": "ABCD", "EXPTIME": 350})] == [2]
    assert arch.query(header={"CCDAMP": "A"}) == []
    assert arch.query(target="ngc-6*", filters="F606W")[0].dataset == "idn101a1q"
    assert arch.metadata("idn101a1q")["campaign"] == "x"
    assert [d for d, _v, _h in arch.headers()] == ["idn101a1q"]
    assert arch.verify().ok
