"""owl-dan-receipt: registration, idempotence, and every kind of bad input (nothing is ever lost)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core.osf import Blackboard
from pipeline.science.telemetry import layout as L
from pipeline.science.telemetry.decode import scan_pod
from stages.dan_receipt import run
from tests.front_data import write_test_downlink

MEMBERS = ["ib1f01a1q", "ib1f01a2q"]
SINGLE = "ib1f02b1q"
ASN = "ib1f01010"


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


def _everything_kept(site, before: dict[str, str]) -> None:
    """Every input file still exists, byte for byte, in receipt or quarantine."""
    kept = [p for area in (site.areas.receipt, site.areas.quarantine) for p in area.rglob("*") if p.is_file()]
    found = {hashlib.sha256(p.read_bytes()).hexdigest() for p in kept}
    lost = [name for name, digest in before.items() if digest not in found]
    assert not lost, f"lost inputs: {lost}"
    assert not any(site.areas.inbox.iterdir()), "inbox not emptied"


def _letters(site) -> dict[str, str]:
    bb = Blackboard(site.database_url)
    return {e.dataset: e.letter("DR") for e in bb.query()}


def _reason(site, name: str) -> str:
    return (site.areas.quarantine / f"{name}.reason").read_text().strip()


def _trailer(site, dataset: str) -> str:
    return (site.areas.logs / f"{dataset}.trl").read_text()


@pytest.fixture
def downlink(site) -> tuple[Path, dict[str, str]]:
    dan = write_test_downlink(site.areas.inbox)
    return dan, _digests(site.areas.inbox)


def test_valid_downlink_registers_everything(site, downlink, capsys):
    dan, before = downlink
    assert run([str(dan)]) == 0
    assert "3 of 3 pods accepted; 4 datasets registered" in capsys.readouterr().out
    bb = Blackboard(site.database_url)
    rows = {e.dataset: e for e in bb.query()}
    assert sorted(rows) == sorted([ASN, *MEMBERS, SINGLE])
    assert all(e.letter("DR") == "c" and e.data_id == "wf3" for e in rows.values())
    assert bb.members(ASN) == MEMBERS
    assert rows[SINGLE].parent is None and rows[ASN].parent is None
    for name in [*MEMBERS, SINGLE]:
        assert (site.areas.receipt / "pods" / f"{name}.pod").exists()
        assert "-I-INFO-owl-dan-receipt: received" in _trailer(site, name)
    assert json.loads((site.areas.receipt / "associations" / f"{ASN}.json").read_text())["type"] == "DITHER"
    record = json.loads((site.areas.receipt / "dans" / "dltest-0001.receipt.json").read_text())
    assert [p["status"] for p in record["pods"]] == ["received"] * 3
    _everything_kept(site, before)


def test_same_dan_twice_registers_once(site, downlink, capsys):
    dan, before = downlink
    copies = {name: (site.areas.inbox / name).read_bytes() for name in before}
    assert run([str(dan)]) == 0
    for name, data in copies.items():  # the very same downlink delivered again
        (site.areas.inbox / name).write_bytes(data)
    capsys.readouterr()
    assert run([str(dan), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["duplicate"] is True and report["registered"] == []
    assert "already received" in report["summary"]
    assert sorted(report["already_registered"]) == sorted([*MEMBERS, SINGLE, ASN])
    bb = Blackboard(site.database_url)
    created = [h for h in bb.history() if h.message == "created"]
    assert len(created) == 4
    assert set(_letters(site).values()) == {"c"}
    assert "duplicate of downlink dltest-0001" in _reason(site, dan.name)
    assert "-W-WARN-owl-dan-receipt: duplicate of downlink" in _trailer(site, MEMBERS[0])
    assert run(["dltest-0001"]) == 0  # by id, after receipt: says so, moves nothing
    _everything_kept(site, before)


def _science_packet(pod: Path, index: int = 1) -> tuple[int, int]:
    t = scan_pod(pod).packets
    sci = t.select(L.Apid.SCIENCE)
    return int(t.starts[sci[index]]), int(t.lengths[sci[index]])


def _flip(pod: Path) -> None:
    buf = bytearray(pod.read_bytes())
    start, _ = _science_packet(pod, 0)
    buf[start + 25] ^= 0x40
    pod.write_bytes(bytes(buf))


def _truncate(pod: Path) -> None:
    start, length = _science_packet(pod, 0)
    pod.write_bytes(pod.read_bytes()[: start + length // 2])


def _drop_packet(pod: Path) -> None:
    data = pod.read_bytes()
    t = scan_pod(data).packets
    i = t.select(L.Apid.HEADER)[1]
    start, length = int(t.starts[i]), int(t.lengths[i])
    pod.write_bytes(data[:start] + data[start + length :])


def _unknown_apid(pod: Path) -> None:
    buf = bytearray(pod.read_bytes())
    start, length = _science_packet(pod, 0)
    buf[start : start + 2] = ((1 << 11) | 0x2AB).to_bytes(2, "big")
    buf[start + length - 2 : start + length] = L.crc16(bytes(buf[start : start + length - 2])).to_bytes(2, "big")
    pod.write_bytes(bytes(buf))


def _wrong_sha(dan: Path) -> None:
    tree = json.loads(dan.read_text())
    tree["pods"][1]["sha256"] = "0" * 64
    dan.write_text(json.dumps(tree))


@pytest.mark.parametrize(("damage", "reason"), [
    (_flip, r"ib1f01a2q\.pod: CRC mismatch in packet #\d+ at byte \d+ \(science APID 0x102 seq 0\)"),
    (_truncate, r"ib1f01a2q\.pod: truncated pod: packet #\d+ at byte \d+ \(science APID 0x102 seq 0\) "
                r"declares \d+ bytes but only \d+ remain"),
    (_drop_packet, r"ib1f01a2q\.pod: packet #\d+ at byte \d+: header APID 0x101 sequence count jumps "
                   r"from 1 to 2 \(1 packet\(s\) missing or out of order\)"),
    (_unknown_apid, r"ib1f01a2q\.pod: packet #\d+ at byte \d+: unknown APID 0x2AB"),
    (None, r"ib1f01a2q\.pod: sha256 mismatch: DAN says 0000000000000000\.\.\., file has [0-9a-f]{16}\.\.\."),
])
def test_bad_pod_is_quarantined_rest_registered(site, downlink, capsys, damage, reason):
    dan, _ = downlink
    bad = site.areas.inbox / "ib1f01a2q.pod"
    if damage is None:
        _wrong_sha(dan)
    else:
        damage(bad)
    before = _digests(site.areas.inbox)
    assert run([str(dan)]) == 20
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if "ib1f01a2q" in line]) == 1
    assert re.search(reason, err)
    assert re.search(reason, _reason(site, "ib1f01a2q.pod"))
    assert (site.areas.quarantine / "ib1f01a2q.pod").exists()
    assert _letters(site) == {ASN: "e", "ib1f01a1q": "c", "ib1f01a2q": "e", SINGLE: "c"}
    history = [h for h in Blackboard(site.database_url).history("ib1f01a2q") if h.column == "DR"]
    assert history[-1].new == "e" and history[-1].exit_code == 20 and re.search(reason, history[-1].message)
    assert re.search("-E-ERROR-owl-dan-receipt: " + reason, _trailer(site, "ib1f01a2q"))
    assert "failed members: ib1f01a2q" in _trailer(site, ASN)
    _everything_kept(site, before)


def test_dan_naming_a_missing_pod(site, downlink, capsys):
    dan, _ = downlink
    (site.areas.inbox / "ib1f01a1q.pod").unlink()  # never delivered
    before = _digests(site.areas.inbox)
    assert run([str(dan)]) == 20
    assert "ib1f01a1q.pod named by DAN dltest-0001 is missing from" in capsys.readouterr().err
    assert _letters(site) == {ASN: "e", "ib1f01a1q": "e", "ib1f01a2q": "c", SINGLE: "c"}
    assert "is missing from" in _trailer(site, "ib1f01a1q")
    _everything_kept(site, before)


def test_bad_dan_is_quarantined_and_nothing_registered(site, downlink, capsys):
    dan, _ = downlink
    tree = json.loads(dan.read_text())
    tree["associations"][0]["members"].append("ib1f01zzq")
    dan.write_text(json.dumps(tree))
    assert run([str(dan)]) == 20
    err = capsys.readouterr().err.strip()
    assert err == ("owl-dan-receipt: dltest-0001.dan.json: invalid DAN at (top level): association "
                   "ib1f01010 member ib1f01zzq has no pod entry")
    assert "invalid DAN" in _reason(site, dan.name)
    assert _letters(site) == {}
    assert "-E-ERROR-owl-dan-receipt: dltest-0001.dan.json: invalid DAN" in (
        site.areas.logs / "dan_receipt.log").read_text()


def test_conflicting_dan_reusing_an_id(site, downlink, capsys):
    dan, before = downlink
    assert run([str(dan)]) == 0
    again = write_test_downlink(site.areas.inbox)  # new pods, new DAN bytes, same downlink id
    before.update({f"again-{k}": v for k, v in _digests(site.areas.inbox).items()})
    assert run([str(again)]) == 20
    assert "downlink id dltest-0001 was already received with a different notice" in capsys.readouterr().err
    assert set(_letters(site).values()) == {"c"}
    _everything_kept(site, before)


def test_interrupted_receipt_resumes(site, downlink):
    dan, before = downlink
    (site.areas.receipt / "pods").mkdir(parents=True)
    shutil.move(site.areas.inbox / "ib1f01a1q.pod", site.areas.receipt / "pods" / "ib1f01a1q.pod")
    assert run([str(dan)]) == 0
    assert set(_letters(site).values()) == {"c"}
    _everything_kept(site, before)


def test_executable_help_and_exit_code(site, downlink):
    dan, _ = downlink
    out = subprocess.run([sys.executable, "-m", "stages.dan_receipt", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "DAN file (<downlink>.dan.json) or a downlink id" in out.stdout
    done = subprocess.run([sys.executable, "-m", "stages.dan_receipt", str(dan), "--site", str(site.root)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
