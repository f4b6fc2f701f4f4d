"""``owl simulate --instruments wfc3ir``: MULTIACCUM raws in the archive layout, their references,
and ``owl calibrate`` turning them into ``_ima``/``_flt``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.simulate.irmodel import sample_times


def test_sample_sequences_follow_the_instrument_timings() -> None:
    assert sample_times("SPARS25", 5) == [0.0, 2.932, 27.933, 52.933, 77.933]
    assert sample_times("RAPID", 4) == [0.0, 2.932, 5.865, 8.797]
    assert sample_times("SPARS25", 8)[5:] == [102.933, 127.934, 152.934]
    step = sample_times("STEP100", 14)             # the real STEP100 NSAMP=14 exposure time is 699.232 s
    assert step[4:7] == [11.729, 24.23, 49.23] and step[-1] == pytest.approx(699.232, abs=0.01)
    with pytest.raises(ValueError):
        sample_times("SPARS25", 17)


def test_simulate_fits_then_calibrate(tmp_path, monkeypatch) -> None:
    out = tmp_path / "raws"
    args = ["simulate", "--size", "subarray", "--associations", "2", "--seed", "3", "--instruments", "wfc3ir"]
    result = CliRunner().invoke(main, [*args, "--fits", str(out), "--json"])
    assert result.exit_code == 0, result.output
    raws = [p for p in json.loads(result.stdout)["fits"]]
    assert len(raws) == 2 and len(list((out / "truth").glob("*_truth.fits"))) == 2
    with fits.open(raws[0]) as h:
        p = h[0].header
        n = p["NSAMP"]
        assert p["DETECTOR"] == "IR" and p["NEXTEND"] == 5 * n and p["SUBARRAY"]
        assert [x.name for x in h[1:6]] == ["SCI", "ERR", "DQ", "SAMP", "TIME"]
        assert h["SCI", 1].header["SAMPTIME"] == sample_times(p["SAMP_SEQ"], n)[-1]
        assert h["SCI", n].header["SAMPTIME"] == 0.0 and h["TIME", 1].header["PIXVALUE"] > 0
        assert h["SCI", 1].header["BZERO"] == 32768 and h["SCI", 1].data.dtype == np.uint16
        size = h["SCI", 1].data.shape[0]
        assert h["SCI", 1].header["LTV1"] == -(512 - (size - 10) // 2 - 5)
        assert p["DARKFILE"].startswith("iref$") and (out / "iref" / p["DARKFILE"][5:]).is_file()
    monkeypatch.setenv("iref", str(out / "iref") + "/")
    cal = CliRunner().invoke(main, ["calibrate", *raws, "--engine", "builtin", "--outdir", str(tmp_path / "cal"), "-q"])
    assert cal.exit_code == 0, cal.output
    for raw in raws:
        root = raw.rsplit("/", 1)[-1][:9]
        assert (tmp_path / "cal" / f"{root}_ima.fits").is_file()
        assert fits.getval(tmp_path / "cal" / f"{root}_flt.fits", "BUNIT", ("SCI", 1)) == "ELECTRONS/S"


def test_default_mix_gives_every_third_association_to_wfc3ir(tmp_path) -> None:
    """No --instruments: WFC3/UVIS, ACS/WFC and WFC3/IR in turn, FITS only as with a site."""
    out = tmp_path / "raws"
    result = CliRunner().invoke(main, ["simulate", "--size", "subarray", "--associations", "3", "--seed", "3",
                                       "--fits", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["instruments"] == ["wfc3", "acs", "wfc3ir"]
    detectors = sorted(fits.getval(p, "DETECTOR") for p in summary["fits"] if p.endswith("_raw.fits"))
    assert detectors.count("IR") == 1 and {"UVIS", "WFC"} <= set(detectors)
    assert (out / "iref").is_dir()


def test_ir_with_a_site_goes_into_the_downlink(tmp_path) -> None:
    """With a site, IR ramps are pods in the inbox and the IR references join the site's CRDS cache."""
    site = tmp_path / "s"
    assert CliRunner().invoke(main, ["init", str(site)]).exit_code == 0
    result = CliRunner().invoke(main, ["simulate", "--instruments", "wfc3ir", "--size", "subarray", "--associations",
                                       "1", "--site", str(site), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    dan = json.loads(Path(summary["dan"]).read_text())
    assert [a["type"] for a in dan["associations"]] == ["DITHER"] and len(dan["pods"]) == 2
    assert all(p["instrument"] == "wfc3" and (site / "inbox" / p["file"]).is_file() for p in dan["pods"])
    assert list((site / "crds" / "mappings" / "hst").glob("hst_wfc3_nlinfile_*.rmap"))
