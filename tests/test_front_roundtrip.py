"""Simulator -> pods -> dan_receipt -> INGEST -> 2FITS: raw files equal the simulator's, pixel for pixel.

The issue's acceptance check. Subarray exposures of both instruments, all three association kinds.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from pipeline.core.osf import Blackboard
from pipeline.core.stage import run_stage
from pipeline.science.telemetry.dan import write_downlink
from pipeline.science.telemetry.rawfits import calibration_switches
from pipeline.simulate import simulate_downlink
from stages.dan_receipt import run as receive
from stages.ingest import Ingest
from stages.twofits import TwoFits

#: Written by 2FITS itself when it writes the file (the simulator stamps its own values).
FILE_KEYWORDS = {"OPUS_VER", "DATE"}


@pytest.fixture(scope="module")
def downlink():
    return simulate_downlink(seed=5, size="subarray", n_associations=6, instruments=("wfc3", "acs"))


def _images(header: fits.Header, skip: set[str] = frozenset()) -> list[str]:
    return [c.image for c in header.cards if c.keyword not in skip]


def test_simulated_downlink_round_trip(site, downlink):
    assert {a.asn_type for a in downlink} == {"DITHER", "CR-SPLIT", "SINGLETON"}
    assert receive([str(write_downlink(downlink, site.areas.inbox, "dl-roundtrip"))]) == 0
    bb = Blackboard(site.database_url)
    for asn in downlink:
        assert run_stage(Ingest, [asn.name]) == 0
        assert run_stage(TwoFits, [asn.name]) == 0
        assert bb.get(asn.name).status[:3] == "ccc"
        work = site.areas.work / asn.name
        for member in asn.members:
            sim = member.raw
            with fits.open(work / f"{member.rootname}_raw.fits") as out:
                assert [(h.name, h.ver) for h in out] == [(h.name, h.ver) for h in sim]
                for hdu in sim[1:]:
                    if hdu.name == "SCI":
                        assert out[hdu.name, hdu.ver].data.dtype == np.uint16
                        assert np.array_equal(out[hdu.name, hdu.ver].data, hdu.data)
                    assert _images(out[hdu.name, hdu.ver].header) == _images(hdu.header)
                switches = calibration_switches(site.instruments[member.spec.instrument], member.spec.instrument,
                                                sim[0].header["DETECTOR"], asn.asn_type)
                theirs = {k for k in sim[0].header if k.endswith("CORR")}
                assert _images(out[0].header, FILE_KEYWORDS | theirs | set(switches)) == \
                    _images(sim[0].header, FILE_KEYWORDS | theirs | set(switches))
                assert {k: out[0].header[k] for k in switches} == switches
                assert all(sim[0].header[k] == v for k, v in switches.items() if k in sim[0].header)
            assert (work / f"{member.rootname}_spt.fits").exists()
        expected = asn.asn_table()
        if expected is None:
            assert not (work / f"{asn.name}_asn.fits").exists()
        else:
            with fits.open(work / f"{asn.name}_asn.fits") as got:
                assert got["ASN"].data.tolist() == expected["ASN"].data.tolist()
