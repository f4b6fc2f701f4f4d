"""WFC3/IR through the telemetry front end: a MULTIACCUM ramp goes into a pod (every read a SCI
extension) and 2FITS gives back the raw the simulator writes with ``--fits``: the same imsets
SCI/ERR/DQ/SAMP/TIME newest first, the same pixels and header cards (DATE/OPUS_VER are stamped by
2FITS when it writes)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from pipeline.science.telemetry.decode import decode_pod
from pipeline.science.telemetry.encode import encode_exposure
from pipeline.science.telemetry.rawfits import raw_hdulist
from pipeline.simulate.ir import IRExposure, simulate_ramp
from pipeline.simulate.irdownlink import iter_ir_downlink, plan_ir
from pipeline.simulate.irheaders import ir_switches
from pipeline.simulate.irmodel import detector_maps
from tests.front_data import through_2fits

FILE_KEYWORDS = {"OPUS_VER", "DATE"}


def _cards(header: fits.Header, skip: set[str] = frozenset()) -> list[str]:
    return [c.image for c in header.cards if c.keyword not in skip]


def _assert_same_raw(got: fits.HDUList, sim: fits.HDUList) -> None:
    assert [(h.name, h.ver) for h in got] == [(h.name, h.ver) for h in sim]
    for hdu in sim[1:]:
        out = got[hdu.name, hdu.ver]
        if hdu.name == "SCI":
            assert out.data.dtype == np.uint16 and np.array_equal(out.data, hdu.data)
        else:
            assert out.header["NAXIS"] == 0
        assert _cards(out.header) == _cards(hdu.header)
    assert _cards(got[0].header, FILE_KEYWORDS) == _cards(sim[0].header, FILE_KEYWORDS)


def test_pod_round_trip_keeps_every_read(tmp_path) -> None:
    exp = IRExposure("ibirpd01q", samp_seq="RAPID", nsamp=5, aperture="IRSUB64", nstars=4, seed=3)
    sim, _ = simulate_ramp(detector_maps(), exp)
    decoded = decode_pod(encode_exposure(sim), "ibirpd01q.pod")
    assert sorted(decoded.chips) == [1, 2, 3, 4, 5]
    back = raw_hdulist(decoded, filename="ibirpd01q_raw.fits", switches=ir_switches(None), header_defaults={},
                       asn_keywords={"ASN_ID": "NONE", "ASN_TAB": "NONE"})
    _assert_same_raw(back, sim)
    h = back[0].header
    assert (h["NEXTEND"], h["NSAMP"], h["SAMP_SEQ"], h["DETECTOR"]) == (25, 5, "RAPID", "IR")
    assert h["CRCORR"] == "PERFORM" and h["ZSIGCORR"] == "PERFORM" and "NOISCORR" not in h
    times = [back["TIME", v].header["PIXVALUE"] for v in range(1, 6)]
    assert times == sorted(times, reverse=True) and times[-1] == 0.0
    assert [back["SAMP", v].header["PIXVALUE"] for v in range(1, 6)] == [4, 3, 2, 1, 0]
    assert back["TIME", 1].header["PIXVALUE"] == back["SCI", 1].header["SAMPTIME"]
    assert back["SAMP", 2].header["BUNIT"] == "UNITLESS" and back["TIME", 2].header["BUNIT"] == "SECONDS"


def test_read_without_samptime_is_refused() -> None:
    exp = IRExposure("ibirpd02q", samp_seq="RAPID", nsamp=3, aperture="IRSUB64", nstars=2, seed=5)
    sim, _ = simulate_ramp(detector_maps(), exp)
    del sim["SCI", 2].header["SAMPTIME"]
    decoded = decode_pod(encode_exposure(sim), "ibirpd02q.pod")
    with pytest.raises(Exception, match="SCI,2 of a MULTIACCUM exposure has no SAMPTIME"):
        raw_hdulist(decoded, filename="x_raw.fits", switches={}, header_defaults={}, asn_keywords={})


def test_ir_plan_names_and_dither() -> None:
    plans = plan_ir(7, "subarray", 4)
    assert [t for _, t, _ in plans] == ["DITHER", "SINGLETON", "REPEAT", "DITHER"]
    assert [e.visit.asn_memtype for e in plans[2][2]] == ["EXP-RPT", "EXP-RPT"]
    assert plans[2][2][1].visit.shift == (0.0, 0.0)
    name, _, exps = plans[0]
    assert name.endswith("010") and all(e.rootname[:6] == name[:6] for e in exps)
    assert exps[0].scene_seed == exps[1].scene_seed and exps[1].visit.shift != (0.0, 0.0)
    assert exps[0].visit.asn_memtype == "EXP-DTH" and plans[1][2][0].visit.asn_id is None


def test_ir_downlink_through_receipt_ingest_and_2fits(site, tmp_path) -> None:
    downlink = list(iter_ir_downlink(11, "subarray", 2))
    for asn, got_path, sim_path in through_2fits(site, downlink, tmp_path / "fits", "dl-ir"):
        with fits.open(got_path) as got, fits.open(sim_path) as sim:
            _assert_same_raw(got, sim)
            assert got[0].header["ASN_ID"] == (asn.name.upper() if asn.asn_type == "DITHER" else "NONE")
    with fits.open(site.areas.work / downlink[0].name / f"{downlink[0].name}_asn.fits") as table:
        assert [r[1].strip() for r in table["ASN"].data] == ["EXP-DTH", "EXP-DTH", "PROD-DTH"]
