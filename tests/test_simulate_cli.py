"""``owl simulate`` and ``owl simulate refs`` from the command line."""

from __future__ import annotations

import json

from astropy.io import fits
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.science.telemetry.dan import read_dan


def test_fits_output(tmp_path):
    out = tmp_path / "raws"
    args = ["simulate", "--size", "subarray", "--associations", "3", "--seed", "5", "--instruments", "wfc3"]
    result = CliRunner().invoke(main, [*args, "--fits", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    names = sorted(p.name for p in out.glob("*.fits"))
    assert len([n for n in names if n.endswith("_asn.fits")]) == 2  # a dithered and a CR-SPLIT pair, a singleton
    assert len([n for n in names if n.endswith("_raw.fits")]) == 5
    assert sorted(p.rsplit("/", 1)[-1] for p in summary["fits"]) == names
    assert len(list((out / "truth").glob("*_truth.fits"))) == 5
    raw = next(out.glob("i*_raw.fits"))
    assert fits.getval(raw, "APERTURE") == "UVIS2-C512C-SUB"


def test_site_downlink_then_delivery(site):
    runner = CliRunner()
    result = runner.invoke(main, ["simulate", "--site", str(site.root), "--size", "subarray", "--associations", "2",
                                  "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["context"] == "hst_0001.pmap"
    dan = read_dan(summary["dan"])
    assert len(dan.pods) == 4 and len(dan.associations) == 2
    assert all((site.areas.inbox / p.file).is_file() for p in dan.pods)
    assert (site.areas.crds / "mappings" / "hst" / "hst_0001.pmap").is_file()

    result = runner.invoke(main, ["simulate", "refs", "--site", str(site.root), "--bump", "darkfile",
                                  "--detector", "UVIS", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["context"] == "hst_0002.pmap"

    # full-frame data cannot be calibrated by a subarray cache: one clear line, CONFIG exit code
    result = runner.invoke(main, ["simulate", "--site", str(site.root), "--size", "full", "--associations", "1"])
    assert result.exit_code == 3
    assert "cannot calibrate full" in result.output

    result = runner.invoke(main, ["simulate", "refs", "--site", str(site.root), "--ccdamp", "C"])
    assert result.exit_code == 2 and "only go with --bump" in result.output
