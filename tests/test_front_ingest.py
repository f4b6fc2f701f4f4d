"""owl-ingest: received pods into the content-addressed archive, idempotently; rot is caught."""

from __future__ import annotations

import hashlib

from pipeline.archive.store import Archive
from pipeline.core.osf import Blackboard
from pipeline.core.stage import run_stage
from stages.dan_receipt import run as receive
from stages.ingest import Ingest
from tests.front_data import write_test_downlink


def _received(site) -> None:
    assert receive([str(write_test_downlink(site.areas.inbox))]) == 0


def test_ingest_archives_pods_once(site):
    _received(site)
    assert run_stage(Ingest, ["ib1f01010"]) == 0
    archive = Archive(site)
    for member in ("ib1f01a1q", "ib1f01a2q"):
        (item,) = archive.files(member, kind="pod")
        pod = site.areas.receipt / "pods" / f"{member}.pod"
        assert item.version == 1 and item.name == pod.name
        assert item.sha256 == hashlib.sha256(pod.read_bytes()).hexdigest()
        assert archive.blob_path(item.sha256).read_bytes() == pod.read_bytes()
        (version,) = archive.version_info(member)
        assert version.fields["association"] == "ib1f01010"
        assert version.fields["instrument"] == "WFC3" and version.fields["filters"] == "F606W"
        assert version.fields["program"] == "11665"
    assert archive.files("ib1f01010", kind="dan_asn")[0].name == "ib1f01010.json"
    assert run_stage(Ingest, ["ib1f01010", "--force"]) == 0  # a rerun adds no version
    assert archive.versions("ib1f01a1q") == [1]
    assert run_stage(Ingest, ["ib1f02b1q"]) == 0
    bb = Blackboard(site.database_url)
    assert {e.dataset: e.letter("IN") for e in bb.query()} == dict.fromkeys(
        ["ib1f01010", "ib1f01a1q", "ib1f01a2q", "ib1f02b1q"], "c")
    assert "archived ib1f01a1q.pod" in (site.areas.logs / "ib1f01010.trl").read_text()


def test_rotted_pod_is_quarantined_not_archived(site, capsys):
    _received(site)
    pod = site.areas.receipt / "pods" / "ib1f01a2q.pod"
    data = bytearray(pod.read_bytes())
    data[-5] ^= 0xFF
    pod.write_bytes(bytes(data))
    assert run_stage(Ingest, ["ib1f01010"]) == 20
    err = capsys.readouterr().err
    assert "ib1f01a2q.pod: CRC mismatch in packet" in err and "quarantined to" in err
    assert (site.areas.quarantine / "ib1f01a2q.pod").read_bytes() == bytes(data)
    assert "CRC mismatch" in (site.areas.quarantine / "ib1f01a2q.pod.reason").read_text()
    bb = Blackboard(site.database_url)
    assert bb.get("ib1f01010").letter("IN") == "e"
    assert bb.get("ib1f01a2q").letter("IN") == "e"
