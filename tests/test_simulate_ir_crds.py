"""IR references delivered into a simulator CRDS cache: crds certify, and best references for the
simulated IR raws are the delivered files (rules modelled on the real 2015 WFC3 IR rmaps)."""

from __future__ import annotations

from pathlib import Path

import pytest
from astropy.io import fits

from pipeline.science import refs
from pipeline.simulate.crdscache import mappings_dir, references_dir
from pipeline.simulate.ir import IRExposure, simulate_ramp
from pipeline.simulate.ircrds import deliver_ir_references
from pipeline.simulate.irmodel import detector_maps
from pipeline.simulate.prebuilt import build_or_link  # linked from the session's prebuilt cache
from tests.refs_support import assert_certify_clean

MODES = [("SPARS25", "FULLIMAG"), ("RAPID", "SQ64SUB")]


@pytest.fixture(scope="module")
def cache(module_tmp) -> tuple[Path, str]:
    root = module_tmp("ircrds")
    build_or_link(root, ("wfc3",), size="subarray")
    return root, deliver_ir_references(root, modes=MODES, filters=["F160W", "F110W"])


def test_crds_certify_accepts_the_ir_delivery(cache: tuple[Path, str]) -> None:
    root, context = cache
    files = sorted(str(p) for p in references_dir(root).glob("*.fits"))
    files += sorted(str(p) for p in mappings_dir(root).glob("*map"))
    assert_certify_clean(root, files, context)


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
    for reftype in ("ccdtab", "oscntab", "bpixtab", "crrejtab", "imphttab", "nlinfile", "darkfile", "pfltfile",
                    "idctab"):
        name = lookup.refs[reftype]
        assert name in by_name and by_name[name]["DETECTOR"] == "IR", (reftype, name)
    dark = by_name[lookup.refs["darkfile"]]
    assert (dark["SAMP_SEQ"], dark["SUBTYPE"]) == (seq, "FULLIMAG" if aperture == "IR" else "SQ64SUB")
    assert by_name[lookup.refs["pfltfile"]]["FILTER"] == filt


def test_idctab_rule_and_layout_read_by_stwcs(cache, monkeypatch) -> None:
    """IDCTAB follows the real hst_wfc3_idctab rule (DETECTOR, always relevant: UVIS raws keep a best
    reference after the IR delivery) and stwcs's own reader takes the rows (chip, filter, scale, terms)."""
    from stwcs.distortion.mutil import readIDCtab

    root, context = cache
    for key in ("CRDS_PATH", "CRDS_CONTEXT", "CRDS_MODE", "CRDS_SERVER_URL"):
        monkeypatch.delenv(key, raising=False)
    ctx = refs.load_context(root, context)
    header = {"INSTRUME": "WFC3", "DATE-OBS": "2011-02-19", "TIME-OBS": "10:00:00"}
    names = {}
    for det in ("IR", "UVIS"):
        lookup = ctx.lookup({**header, "DETECTOR": det}, reftypes=["idctab"])
        assert not lookup.failures, lookup.failures
        names[det] = lookup.refs["idctab"]
        assert fits.getheader(references_dir(root) / names[det])["DETECTOR"] == det
    fx, fy, refpix, order = readIDCtab(str(references_dir(root) / names["IR"]), chip=1, filter1="F160W",
                                       filter2="CLEAR")
    assert order == 4 and (refpix["XREF"], refpix["YREF"], refpix["PSCALE"]) == (507.0, 507.0, 0.12825)
    assert fx[1, 1] == pytest.approx(0.13541, abs=1e-5) and fy[1, 0] == pytest.approx(0.12095, abs=1e-5)
    assert 0 < abs(fx[2, 1]) < 1e-5  # a real order-4 solution, not a linear placeholder
    _, _, uvis, _ = readIDCtab(str(references_dir(root) / names["UVIS"]), chip=2, filter1="F606W", filter2="CLEAR")
    assert (uvis["V2REF"], uvis["V3REF"]) == (-27.4596, -33.2604)
    with pytest.raises(LookupError):
        readIDCtab(str(references_dir(root) / names["IR"]), chip=1, filter1="F606W", filter2="CLEAR")


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
