"""``owl simulate --recent N``: the last associations observed in the last weeks, so a demo archive
holds data still in their program's exclusive period next to public data (issue 16)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from astropy.io import fits
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.service.access import rights
from pipeline.simulate.associations import EPOCH_MJD, RECENT_DAYS, plan_downlink, recent_epoch

DAY = 86400.0
NOW = dt.datetime(2026, 3, 15, 12, tzinfo=dt.UTC).timestamp()


def test_recent_epoch_is_days_before_now():
    mjd_now = NOW / DAY + 40587
    assert mjd_now - RECENT_DAYS - 1 < recent_epoch(NOW) < mjd_now - RECENT_DAYS + 1


def test_plan_dates_only_the_last_associations_recently():
    plans = plan_downlink(4, "subarray", 4, ("wfc3", "acs"), recent=2, now=NOW)
    starts = [[m.expstart for m in p.members] for p in plans]
    assert all(s < max(EPOCH_MJD.values()) + 10 for s in starts[0] + starts[1])
    assert all(recent_epoch(NOW) <= s < recent_epoch(NOW) + 2 for s in starts[2] + starts[3])
    assert [p.name for p in plans] == [p.name for p in plan_downlink(4, "subarray", 4, ("wfc3", "acs"))]
    with pytest.raises(ValueError, match="recent=5"):
        plan_downlink(4, "subarray", 4, ("wfc3",), recent=5)


def test_cli_recent_association_is_exclusive(tmp_path):
    out = tmp_path / "raws"
    args = ["simulate", "--size", "subarray", "--associations", "3", "--seed", "7", "--instruments", "wfc3",
            "--recent", "1", "--fits", str(out), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    raws = [p for p in map(str, json.loads(result.stdout)["fits"]) if p.endswith("_raw.fits")]
    dates = {fits.getval(p, "ROOTNAME").lower(): (fits.getval(p, "DATE-OBS"), fits.getval(p, "PROPOSID"))
             for p in raws}
    today = dt.date.today()
    recent = {r for r, (d, _) in dates.items() if (today - dt.date.fromisoformat(d)).days <= RECENT_DAYS + 1}
    assert len(recent) == 1 and len(dates) == 5  # the singleton; the dithered and CR-SPLIT pairs before it
    for root, (date_obs, program) in dates.items():
        r = rights(None, str(program), date_obs)
        assert r.data_rights == ("proprietary" if root in recent else "public"), (root, date_obs, r)
