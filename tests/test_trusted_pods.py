"""Pod bytes already checked whole are not CRC-checked packet by packet again (INGEST, 2FITS).

Receipt checks every pod (structure, every packet CRC, the DAN's SHA-256) and records the hash beside
it; INGEST decodes it and archives it under its SHA-256. INGEST and 2FITS hash the pod they read (from
receipt, or 2FITS from the archive) and, when the hash is the recorded one, skip the packets' CRC-16s
(their slowest check). Bytes that differ from what was checked (a copy rotted since) still get every
check and are quarantined.
"""

from __future__ import annotations

import hashlib

import numpy as np
from astropy.io import fits

from pipeline.core.osf import Blackboard
from pipeline.core.stage import run_stage
from pipeline.science.telemetry import layout
from pipeline.science.telemetry.dan import write_downlink
from pipeline.science.telemetry.receipt import checked_sha256
from stages.dan_receipt import run as receive
from stages.ingest import Ingest
from stages.twofits import TwoFits
from tests.front_data import dither_pair
from tests.test_cli_startup import heavy_modules_after


def _crc_calls(monkeypatch) -> list[int]:
    """Count the CRC-16 computations (pod headers and packets) made from now on."""
    calls: list[int] = []
    real = layout.crc16

    def counting(data, value=0xFFFF):
        calls.append(len(data))
        return real(data, value)

    monkeypatch.setattr(layout, "crc16", counting)
    return calls


def test_ingested_pods_skip_the_packet_crcs(site, monkeypatch):
    pair = dither_pair()
    assert receive([str(write_downlink([pair], site.areas.inbox, "dl-trusted"))]) == 0
    assert run_stage(Ingest, ["ib1f01010"]) == 0
    calls = _crc_calls(monkeypatch)
    assert run_stage(TwoFits, ["ib1f01010"]) == 0
    assert calls == [layout.POD_HEADER_SIZE - 2] * len(pair.members)  # each pod's header CRC only
    with fits.open(site.areas.work / "ib1f01010" / "ib1f01a2q_raw.fits") as raw:
        assert np.array_equal(raw["SCI", 2].data, pair.members[1].raw["SCI", 2].data)


def test_without_a_record_of_the_check_every_packet_crc_is_checked(site, monkeypatch):
    pair = dither_pair()
    assert receive([str(write_downlink([pair], site.areas.inbox, "dl-trusted"))]) == 0
    for record in (site.areas.receipt / "pods").glob("*.sha256"):  # a site received before they were kept
        record.unlink()
    calls = _crc_calls(monkeypatch)
    assert run_stage(TwoFits, ["ib1f01010"]) == 0
    packets = [n for n in calls if n != layout.POD_HEADER_SIZE - 2]
    assert len(packets) > len(pair.members)  # every packet of every pod


def _rot_and_fail(site, capsys, stage) -> None:
    """Flip a bit in a received pod's last packet; ``stage`` must find the CRC mismatch and quarantine it."""
    pod = site.areas.receipt / "pods" / "ib1f01a1q.pod"
    data = bytearray(pod.read_bytes())
    data[-3] ^= 0x08
    pod.unlink()  # a fresh file: INGEST hard-linked the pod it archived, and that blob must stay intact
    pod.write_bytes(bytes(data))
    assert run_stage(stage, ["ib1f01010"]) == 20
    assert "ib1f01a1q.pod: CRC mismatch in packet" in capsys.readouterr().err
    assert (site.areas.quarantine / "ib1f01a1q.pod").exists()
    assert Blackboard(site.database_url).get("ib1f01010").letter(stage.column) == "e"


def test_pod_rotted_after_ingest_gets_every_check(site, capsys):
    assert receive([str(write_downlink([dither_pair()], site.areas.inbox, "dl-trusted"))]) == 0
    assert run_stage(Ingest, ["ib1f01010"]) == 0
    _rot_and_fail(site, capsys, TwoFits)


def test_ingest_skips_the_packet_crcs_receipt_checked(site, monkeypatch):
    pair = dither_pair()
    assert receive([str(write_downlink([pair], site.areas.inbox, "dl-trusted"))]) == 0
    pod = site.areas.receipt / "pods" / "ib1f01a1q.pod"
    assert checked_sha256(site, "ib1f01a1q") == hashlib.sha256(pod.read_bytes()).hexdigest()
    calls = _crc_calls(monkeypatch)
    assert run_stage(Ingest, ["ib1f01010"]) == 0
    assert calls == [layout.POD_HEADER_SIZE - 2] * len(pair.members)


def test_ingest_checks_every_crc_of_a_pod_rotted_in_receipt(site, capsys):
    assert receive([str(write_downlink([dither_pair()], site.areas.inbox, "dl-trusted"))]) == 0
    _rot_and_fail(site, capsys, Ingest)


def test_twofits_from_receipt_leaves_the_archive_closed(site):
    """With the pods and the association record in receipt, 2FITS needs no archive look-up, so a fresh
    process never imports SQLAlchemy (~0.35 CPU-s)."""
    assert receive([str(write_downlink([dither_pair()], site.areas.inbox, "dl-trusted"))]) == 0
    code = ("from pipeline.core.stage import run_stage\nfrom stages.twofits import TwoFits\n"
            f"assert run_stage(TwoFits, ['ib1f01010', '--site', {str(site.root)!r}]) == 0")
    assert heavy_modules_after(code, ("sqlalchemy",)) == []
    assert (site.areas.work / "ib1f01010" / "ib1f01010_asn.fits").is_file()
