"""owl-2fits: pods -> _raw/_spt/_asn with exact pixels, ground-assigned switches and archive fallback."""

from __future__ import annotations

import shutil

import numpy as np
from astropy.io import fits

from pipeline.core.osf import Blackboard
from pipeline.core.stage import run_stage
from pipeline.science.telemetry.dan import write_downlink
from stages.dan_receipt import run as receive
from stages.ingest import Ingest
from stages.twofits import TwoFits
from tests.front_data import Association, Exposure, dither_pair, singleton, synthetic_raw


def _receive(site, associations) -> None:
    assert receive([str(write_downlink(associations, site.areas.inbox, "dl-2fits"))]) == 0


def test_dither_pair_to_fits(site):
    pair, single = dither_pair(), singleton()
    _receive(site, [pair, single])
    assert run_stage(TwoFits, ["ib1f01010"]) == 0
    work = site.areas.work / "ib1f01010"
    for exp in pair.members:
        with fits.open(work / f"{exp.rootname}_raw.fits") as raw:
            assert [(h.name, h.ver) for h in raw[1:]] == [(n, c) for c in (1, 2) for n in ("SCI", "ERR", "DQ")]
            h = raw[0].header
            assert h["FILENAME"] == f"{exp.rootname}_raw.fits" and h["NEXTEND"] == 6
            assert (h["DARKCORR"], h["FLATCORR"], h["CRCORR"]) == ("PERFORM", "PERFORM", "OMIT")
            assert (h["ASN_ID"], h["ASN_TAB"], h["ASN_MTYP"]) == ("IB1F01010", "ib1f01010_asn.fits", "EXP-DTH")
            assert h["FILTER"] == "F606W" and h["OBSTYPE"] == "IMAGING"
            for chip in (1, 2):
                assert raw["SCI", chip].header["BITPIX"] == 16
                assert np.array_equal(raw["SCI", chip].data, exp.raw["SCI", chip].data)
                assert raw["SCI", chip].header["CCDCHIP"] == 3 - chip
                err, dq = raw["ERR", chip].header, raw["DQ", chip].header
                assert err["NAXIS"] == 0 and (err["NPIX1"], err["NPIX2"], err["PIXVALUE"]) == (52, 37, 0.0)
                assert dq["NAXIS"] == 0 and dq["PIXVALUE"] == 0 and dq["LTV1"] == 25.0
        with fits.open(work / f"{exp.rootname}_spt.fits") as spt:
            assert spt[0].header["FILETYPE"] == "SPT" and spt[0].header["PROPOSID"] == 11665
            assert spt["UDL", 1].header["NSATPIX"] == 1 and spt["UDL", 1].data.size == 11
            # calwf3's mkspt.c copies NEXTEND/2 (UDL, SNAP1) pairs into a CR-SPLIT's combined spt
            assert [(h.name, h.ver) for h in spt[1:]] == [(n, c) for c in (1, 2) for n in ("UDL", "SNAP1")]
            assert spt[0].header["NEXTEND"] == 4 and spt["SNAP1", 2].data is None
    with fits.open(work / "ib1f01010_asn.fits") as asn:
        rows = [(n.strip(), t.strip(), bool(p)) for n, t, p in asn["ASN"].data]
    assert rows == [("IB1F01A1Q", "EXP-DTH", True), ("IB1F01A2Q", "EXP-DTH", True), ("IB1F01010", "PROD-DTH", True)]
    bb = Blackboard(site.database_url)
    assert [bb.get(d).letter("2F") for d in ("ib1f01010", "ib1f01a1q", "ib1f01a2q")] == ["c", "c", "c"]
    trailer = (site.areas.logs / "ib1f01010.trl").read_text()
    assert "wrote ib1f01010_asn.fits: DITHER association of 2 members" in trailer

    assert run_stage(TwoFits, ["ib1f02b1q"]) == 0
    with fits.open(site.areas.work / "ib1f02b1q" / "ib1f02b1q_raw.fits") as raw:
        assert (raw[0].header["ASN_ID"], raw[0].header["ASN_TAB"]) == ("NONE", "NONE")
    assert not (site.areas.work / "ib1f02b1q" / "ib1f02b1q_asn.fits").exists()


def test_cr_split_turns_crcorr_on(site):
    members = [Exposure(n, synthetic_raw(n, seed=i)) for i, n in enumerate(("ib1f03c1q", "ib1f03c2q"))]
    _receive(site, [Association("ib1f03010", "CR-SPLIT", members)])
    assert run_stage(TwoFits, ["ib1f03010"]) == 0
    header = fits.getheader(site.areas.work / "ib1f03010" / "ib1f03c1q_raw.fits")
    assert (header["CRCORR"], header["ASN_MTYP"]) == ("PERFORM", "EXP-CRJ")


def test_reads_archive_once_receipt_is_cleaned(site, tmp_path):
    pair = dither_pair()
    _receive(site, [pair])
    assert run_stage(Ingest, ["ib1f01010"]) == 0
    shutil.move(site.areas.receipt, tmp_path / "receipt-elsewhere")  # as a cleanup would
    assert run_stage(TwoFits, ["ib1f01010"]) == 0
    with fits.open(site.areas.work / "ib1f01010" / "ib1f01a2q_raw.fits") as raw:
        assert np.array_equal(raw["SCI", 2].data, pair.members[1].raw["SCI", 2].data)
    assert "from archived pod" in (site.areas.logs / "ib1f01010.trl").read_text()


def test_rotted_pod_fails_with_quarantine(site, capsys):
    _receive(site, [dither_pair()])
    pod = site.areas.receipt / "pods" / "ib1f01a1q.pod"
    data = bytearray(pod.read_bytes())
    data[-3] ^= 0x08
    pod.write_bytes(bytes(data))
    assert run_stage(TwoFits, ["ib1f01010"]) == 20
    assert "ib1f01a1q.pod: CRC mismatch in packet" in capsys.readouterr().err
    assert (site.areas.quarantine / "ib1f01a1q.pod").exists()
    assert Blackboard(site.database_url).get("ib1f01010").letter("2F") == "e"
    assert not (site.areas.work / "ib1f01010" / "ib1f01010_asn.fits").exists()


def test_acs_switches_from_config(site):
    exp = Exposure("j9cv58a1q", synthetic_raw("j9cv58a1q", instrument="ACS"))
    _receive(site, [Association("j9cv58a1q", "SINGLETON", [exp])])
    assert run_stage(TwoFits, ["j9cv58a1q"]) == 0
    header = fits.getheader(site.areas.work / "j9cv58a1q" / "j9cv58a1q_raw.fits")
    assert header["DETECTOR"] == "WFC" and header["PCTECORR"] == "OMIT" and header["INSTRUME"] == "ACS"
    assert Blackboard(site.database_url).get("j9cv58a1q").data_id == "acs"
