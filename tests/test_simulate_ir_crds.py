"""IR references delivered into a simulator CRDS cache: crds certify, and best references for the
simulated IR raws are the delivered files (rules modelled on the real 2015 WFC3 IR rmaps)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.io import fits

from pipeline.science import refs
from pipeline.simulate.crdscache import build_reference_cache, mappings_dir, references_dir
from pipeline.simulate.ir import IRExposure, simulate_ramp
from pipeline.simulate.ircrds import deliver_ir_references
from pipeline.simulate.irmodel import detector_maps

MODES = [("SPARS25", "FULLIMAG"), ("RAPID", "SQ64SUB")]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("ircrds")
    build_reference_cache(root, ("wfc3",), size="subarray")
    return root, deliver_ir_references(root, modes=MODES, filters=["F160W", "F110W"])


def test_crds_certify_accepts_the_ir_delivery(cache: tuple[Path, str]) -> None:
    root, context = cache
    files = sorted(str(p) for p in references_dir(root).glob("*.fits"))
    files += sorted(str(p) for p in mappings_dir(root).glob("*map"))
    env = {"CRDS_PATH": str(root), "PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    proc = subprocess.run([sys.executable, "-m", "crds.certify", *files, "--comparison-context", context],
                          env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0 and re.search(r"\b0 errors", log), log[-3000:]


@pytest.mark.parametrize(("seq", "aperture", "filt"), [("SPARS25", "IR", "F160W"), ("RAPID", "IRSUB64", "F110W")])
def test_simulated_ir_raws_get_the_delivered_references(cache, tmp_path, monkeypatch, seq, aperture, filt) -> None:
    root, context = cache
    for key in ("CRDS_PATH", "CRDS_CONTEXT", "CRDS_MODE", "CRDS_SERVER_URL"):
        monkeypatch.delenv(key, raising=False)
    hdul, _ = simulate_ramp(detector_maps(), IRExposure("ibcrds01q", samp_seq=seq, nsamp=3, aperture=aperture,
                                                         filter=filt, nstars=0))
    raw = tmp_path / "ibcrds01q_raw.fits"
    hdul.writeto(raw)
    lookup = refs.load_context(root, context).lookup(refs.dataset_parameters(raw))
    assert not lookup.failures, lookup.failures
    by_name = {p.name: fits.getheader(p) for p in references_dir(root).glob("*i_*.fits")}
    for reftype in ("ccdtab", "oscntab", "bpixtab", "crrejtab", "imphttab", "nlinfile", "darkfile", "pfltfile"):
        name = lookup.refs[reftype]
        assert name in by_name and by_name[name]["DETECTOR"] == "IR", (reftype, name)
    dark = by_name[lookup.refs["darkfile"]]
    assert (dark["SAMP_SEQ"], dark["SUBTYPE"]) == (seq, "FULLIMAG" if aperture == "IR" else "SQ64SUB")
    assert by_name[lookup.refs["pfltfile"]]["FILTER"] == filt


def test_ir_redelivery_supersedes_each_mode(cache, tmp_path, monkeypatch) -> None:
    """``owl simulate refs --bump darkfile --detector IR``: a new dark per (SAMP_SEQ, SUBTYPE) in the cache,
    chosen for the same raw under the new context; an unknown type is refused."""
    from pipeline.simulate.ircrds import bump_ir_reference

    root, context = cache
    for key in ("CRDS_PATH", "CRDS_CONTEXT", "CRDS_MODE", "CRDS_SERVER_URL"):
        monkeypatch.delenv(key, raising=False)
    hdul, _ = simulate_ramp(detector_maps(), IRExposure("ibcrds02q", samp_seq="RAPID", nsamp=3, aperture="IRSUB64",
                                                         nstars=0))
    raw = tmp_path / "ibcrds02q_raw.fits"
    hdul.writeto(raw)
    before = refs.load_context(root, context).lookup(refs.dataset_parameters(raw)).refs
    new_context = bump_ir_reference(root, "darkfile")
    after = refs.load_context(root, new_context).lookup(refs.dataset_parameters(raw)).refs
    assert after["darkfile"] != before["darkfile"] and after["nlinfile"] == before["nlinfile"]
    new = fits.getheader(references_dir(root) / after["darkfile"])
    old = fits.getheader(references_dir(root) / before["darkfile"])
    assert (new["SAMP_SEQ"], new["SUBTYPE"]) == ("RAPID", "SQ64SUB") and new["USEAFTER"] != old["USEAFTER"]
    with pytest.raises(ValueError, match="known IR types"):
        bump_ir_reference(root, "biasfile")
