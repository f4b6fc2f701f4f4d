"""Pod codec: round trips, the byte layout, and every structural fault the decoder must name."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from astropy.io import fits
from ccsdspy.utils import read_primary_headers

from pipeline.core.errors import BadInput
from pipeline.science.telemetry import decode_pod, encode_exposure, scan_pod
from pipeline.science.telemetry import layout as L
from pipeline.science.telemetry.dan import parse_dan, write_downlink
from tests.front_data import dither_pair, singleton, synthetic_raw


def _packet_bounds(data: bytes) -> list[tuple[int, int, int]]:
    t = scan_pod(data).packets
    return list(zip(t.starts.tolist(), t.lengths.tolist(), t.apids.tolist(), strict=True))


def _recrc(buf: bytearray, start: int, length: int) -> None:
    crc = L.crc16(bytes(buf[start : start + length - 2]))
    buf[start + length - 2 : start + length] = crc.to_bytes(2, "big")


@pytest.fixture(scope="module")
def raw() -> fits.HDUList:
    return synthetic_raw("ib1f01a1q", shape=(45, 3000))  # 10 rows per packet: 5 per chip


@pytest.fixture(scope="module")
def pod(raw) -> bytes:
    return encode_exposure(raw)


def test_round_trip_pixels_headers_and_engineering(raw, pod):
    decoded = decode_pod(pod)
    assert decoded.rootname == "ib1f01a1q"
    assert sorted(decoded.chips) == [1, 2]
    for chip, data in decoded.chips.items():
        assert data.pixels.dtype == np.uint16
        assert np.array_equal(data.pixels, raw["SCI", chip].data)
        assert data.header["CCDCHIP"] == raw["SCI", chip].header["CCDCHIP"]
        assert data.header["EXTNAME"] == "SCI" and "NAXIS1" not in data.header
        assert data.engineering["NSATPIX"] == 1
        assert data.engineering["PIXMAX"] == 65535
        assert data.engineering["NROWS"] == 45 and data.engineering["NCOLS"] == 3000
        assert len(data.words) == L.ENGINEERING_FIELDS.size // 2
    assert decoded.primary["FILTER"] == "F606W"
    assert "HISTORY" in decoded.primary
    # calibration switches are assigned on the ground, never flown
    assert "DARKCORR" not in decoded.primary and "FLATCORR" not in decoded.primary
    assert decoded.support["PROPOSID"] == 11665


@pytest.mark.parametrize("shape", [(1, 7), (15, 4206), (3, 20000)])
def test_round_trip_block_edges(shape):
    raw = synthetic_raw("ib1f01a1q", shape=shape, chips=1, seed=3)
    decoded = decode_pod(encode_exposure(raw))
    assert np.array_equal(decoded.chips[1].pixels, raw["SCI", 1].data)


def test_layout_read_back_by_ccsdspy(pod):
    """An independent reader sees valid CCSDS packets: known APIDs, continuous 14-bit counts."""
    assert pod[:6] == L.POD_MAGIC and len(pod[: L.POD_HEADER_SIZE]) == 64
    headers = read_primary_headers(io.BytesIO(pod[L.POD_HEADER_SIZE :]))
    apids = headers["CCSDS_APID"]
    assert set(apids.tolist()) == {int(a) for a in L.Apid}
    assert set(headers["CCSDS_VERSION_NUMBER"].tolist()) == {0}
    assert set(headers["CCSDS_SECONDARY_FLAG"].tolist()) == {1}
    for apid in L.Apid:
        seq = headers["CCSDS_SEQUENCE_COUNT"][apids == apid]
        assert seq.tolist() == list(range(len(seq)))
    rows = L.rows_per_packet(3000)
    assert int(np.count_nonzero(apids == L.Apid.SCIENCE)) == 2 * -(-45 // rows)


def _fault(pod: bytes, kind: str) -> bytes:
    buf = bytearray(pod)
    bounds = _packet_bounds(pod)
    sci = [b for b in bounds if b[2] == L.Apid.SCIENCE]
    start, length, _ = sci[1]
    if kind == "flip":
        buf[start + 40] ^= 0x10
    elif kind == "header":
        buf[12] ^= 0x01
    elif kind == "truncate-mid":
        del buf[start + length // 2 :]
    elif kind == "truncate-boundary":
        del buf[sci[-1][0] :]
    elif kind == "missing":
        del buf[start : start + length]
    elif kind == "apid":
        buf[start] = (buf[start] & 0xF8) | 0x01
        buf[start + 1] = 0xFF
        _recrc(buf, start, length)
    elif kind == "onboard-crc":
        buf[start + 30] ^= 0x01
        _recrc(buf, start, length)
    return bytes(buf)


@pytest.mark.parametrize(("kind", "expected"), [
    ("flip", r"CRC mismatch in packet #\d+ at byte \d+ \(science APID 0x102 seq 1\)"),
    ("header", r"pod header CRC mismatch"),
    ("truncate-mid", r"truncated pod: packet #\d+ at byte \d+ \(science APID 0x102 seq 1\) declares"),
    ("truncate-boundary", r"pod holds \d+ science packets, its header declares \d+"),
    ("missing", r"science APID 0x102 sequence count jumps from 1 to 2 \(1 packet\(s\) missing"),
    ("apid", r"unknown APID 0x1FF"),
    ("onboard-crc", r"chip 1: decoded pixels have CRC-32 0x[0-9A-F]{8}, the on-board snapshot says"),
])
def test_faults_are_named(pod, kind, expected):
    with pytest.raises(BadInput, match=expected) as info:
        decode_pod(_fault(pod, kind), "ib1f01a1q.pod")
    assert info.value.line().startswith("ib1f01a1q.pod: ")
    assert "\n" not in info.value.line()


def test_encoder_rejects_non_dn_pixels():
    raw = synthetic_raw("ib1f01a1q", chips=1)
    raw["SCI", 1].data = raw["SCI", 1].data.astype(np.float32) + 0.5
    with pytest.raises(ValueError, match="not 16-bit unsigned DN"):
        encode_exposure(raw)


def test_write_downlink_pods_then_dan(tmp_path):
    dan_path = write_downlink([dither_pair(), singleton()], tmp_path, "dl-unit")
    dan = parse_dan(dan_path.read_bytes(), dan_path.name)
    assert dan_path.name == "dl-unit.dan.json"
    assert [p.dataset for p in dan.pods] == ["ib1f01a1q", "ib1f01a2q", "ib1f02b1q"]
    assert [(a.name, a.type, a.members) for a in dan.associations] == [
        ("ib1f01010", "DITHER", ["ib1f01a1q", "ib1f01a2q"])]
    for entry in dan.pods:
        assert (tmp_path / entry.file).stat().st_size == entry.size
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda d: d["pods"][0].update(sha256="XYZ"), r"pods\.0\.sha256: String should match pattern"),
    (lambda d: d["pods"][0].update(file="../evil.pod"), r"pods\.0: pod file '\.\./evil\.pod' must be named"),
    (lambda d: d["associations"][0]["members"].append("ib1f01a9q"), r"member ib1f01a9q has no pod entry"),
    (lambda d: d["associations"][0].update(name="ib1f07010"), r"does not share program and visit"),
    (lambda d: d["pods"][0].update(instrument="acs"), r"pods\.0: instrument 'acs' does not match ib1f01a1q"),
    (lambda d: d.pop("downlink_id"), r"downlink_id: Field required"),
    (lambda d: d.update(extra=1), r"extra: Extra inputs are not permitted"),
])
def test_dan_schema_errors(tmp_path, edit, expected):
    tree = json.loads(write_downlink([dither_pair()], tmp_path, "dl-schema").read_text())
    edit(tree)
    with pytest.raises(BadInput, match=expected):
        parse_dan(json.dumps(tree), "dl-schema.dan.json")


def test_owl_pod_check(tmp_path, pod):
    from click.testing import CliRunner

    from pipeline.cli import main

    good, bad = tmp_path / "ib1f01a1q.pod", tmp_path / "ib1f01a2q.pod"
    good.write_bytes(pod)
    bad.write_bytes(_fault(pod, "flip"))
    result = CliRunner().invoke(main, ["pod", "check", str(good), str(bad)])
    assert result.exit_code == 20
    lines = result.output.splitlines()
    assert lines[0].endswith("ok: ib1f01a1q WFC3, 16 packets, chips 3000x45, 3000x45")
    assert "BAD: ib1f01a2q.pod: CRC mismatch in packet" in lines[1]
    result = CliRunner().invoke(main, ["pod", "check", "--json", str(good)])
    assert result.exit_code == 0 and '"NSATPIX": 1' in result.output
