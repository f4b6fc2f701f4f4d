"""SBC and HRC references delivered into a simulator CRDS cache: crds certify, offline best
references for simulated and real raws, and a calibration with what CRDS selected."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.io import fits
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.science.calib import builtin
from pipeline.science.checks.ac import check_product
from pipeline.science.checks.bc import check_raw
from pipeline.simulate import build_reference_cache, hrc, sbc
from pipeline.simulate.acscrds import deliver_sbc_hrc
from pipeline.simulate.crdscache import mappings_dir, references_dir
from tests.refs_support import BESTREFS, assert_certify_clean
from tests.refs_support import clean_crds_env as _env


@pytest.fixture(scope="module")
def cache(module_tmp) -> Path:
    root = module_tmp("crds")
    build_reference_cache(root, ("acs",), size="subarray")
    before = {p.name for p in references_dir(root).glob("*.fits")}
    assert deliver_sbc_hrc(root, sbc_filters=("F115LP", "F125LP"), hrc_filters=("F555W", "F330W")) == "hst_0002.pmap"
    (root / "new.json").write_text(json.dumps(sorted({p.name for p in references_dir(root).glob("*.fits")} - before)))
    return root


def test_certify_is_clean(cache: Path) -> None:
    new = [str(references_dir(cache) / n) for n in json.loads((cache / "new.json").read_text())]
    assert len(new) == 21 and all(re.match(r"^[0-9a-z]{8}j_[a-z]{3}\.fits$", Path(n).name) for n in new)
    maps = [str(p) for p in mappings_dir(cache).glob("*_0002.*")]
    maps.append(str(mappings_dir(cache) / "hst_acs_mlintab_0001.rmap"))
    assert_certify_clean(cache, new + maps, "hst_0002.pmap")


def test_bestrefs_and_calibration(cache: Path, tmp_path: Path, realdata: Path) -> None:
    sraw, hraw = tmp_path / "jsbc05abq_raw.fits", tmp_path / "jhrc05abq_raw.fits"
    craw = tmp_path / "jhrc05acq_raw.fits"
    sbc.write_raw(sraw, None)
    hrc.write_raw(hraw)
    hrc.write_raw(craw, coronagraph=True, filt="F330W")
    real = realdata / "acs_hrc_j8bt/raw/j8bt09jcq_raw.fits"
    proc = subprocess.run([sys.executable, "-c", BESTREFS, "hst_0002.pmap", str(sraw), str(hraw), str(real), str(craw)],
                          env=_env(cache), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    best = json.loads(proc.stdout.splitlines()[-1])
    have = {p.name for p in references_dir(cache).glob("*.fits")}
    for path, needed in ((sraw, ("bpixtab", "mlintab", "darkfile", "pfltfile", "imphttab")),
                         (hraw, ("ccdtab", "oscntab", "bpixtab", "biasfile", "darkfile", "pfltfile", "satufile",
                                 "imphttab")),
                         (real, ("ccdtab", "oscntab", "bpixtab", "biasfile", "darkfile", "pfltfile", "crrejtab")),
                         (craw, ("cfltfile", "spottab", "pfltfile"))):
        refs = best[str(path)]
        assert all(refs[k] in have for k in needed), (path.name, refs)
    for path in (sraw, hraw):
        with fits.open(path, mode="update") as h:
            for k, v in best[str(path)].items():
                if v in have:
                    h[0].header[k.upper()] = f"jref${v}"
            h[0].header["CRDS_CTX"] = "hst_0002.pmap"
        assert check_raw(path, cache) == []
        out = builtin.calibrate_exposure(path, tmp_path, environ={"jref": str(references_dir(cache)) + "/"})
        assert fits.getval(out, "PHOTFLAM", 1) > 0
        assert check_product(out, raw=path) == []


def test_cli_acs_modes_and_mlintab_bump(tmp_path: Path) -> None:
    root = tmp_path / "crds"
    runner = CliRunner()
    result = runner.invoke(main, ["simulate", "refs", "--crds-path", str(root), "--instruments", "acs", "--size",
                                  "subarray", "--acs-modes", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["context"] == "hst_0002.pmap"
    result = runner.invoke(main, ["simulate", "refs", "--crds-path", str(root), "--bump", "mlintab", "--detector",
                                  "SBC", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["context"] == "hst_0003.pmap"
    raw = tmp_path / "jsbc08abq_raw.fits"
    sbc.write_raw(raw, None)
    proc = subprocess.run([sys.executable, "-c", BESTREFS, "hst_0003.pmap", str(raw)], env=_env(root),
                          capture_output=True, text=True, timeout=300)
    newest = sorted(p.name for p in references_dir(root).glob("*_lin.fits"))
    assert len(newest) == 2
    assert json.loads(proc.stdout.splitlines()[-1])[str(raw)]["mlintab"] == newest[-1]


def test_simulate_sbc_association_as_fits(tmp_path: Path) -> None:
    out = tmp_path / "fits"
    result = CliRunner().invoke(main, ["simulate", "--size", "subarray", "--associations", "1", "--instruments",
                                       "acs", "--sbc", "1", "--fits", str(out), "--json"])
    assert result.exit_code == 0, result.output
    names = {Path(p).name for p in json.loads(result.stdout)["fits"]}
    assert {"jsbc01d1q_raw.fits", "jsbc01d2q_raw.fits", "jsbc01010_asn.fits"} <= names
    assert fits.getval(out / "jsbc01d1q_raw.fits", "ASN_ID") == "JSBC01010"
    assert (out / "truth" / "jsbc01d2q_truth.fits").is_file()
