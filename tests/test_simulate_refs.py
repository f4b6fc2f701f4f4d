"""Simulated reference files and CRDS cache: formats, crds certify, offline best references, deliveries,
and the promise that calibrating the data with these references gives back the simulated sky."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.science.calib.imageio import find_line
from pipeline.simulate import build_reference_cache, bump_reference, simulate_downlink, write_fits
from pipeline.simulate.crdscache import CacheError, mappings_dir, references_dir
from pipeline.simulate.detector import Detector
from tests.refs_support import BESTREFS, assert_certify_clean
from tests.refs_support import clean_crds_env as _clean_env

SEED = 11
CDBS_NAME = re.compile(r"^[0-9a-z]{8}[ij]_(ccd|osc|bpx|crr|imp|bia|drk|pfl|sat|snk|cte|bic|dkc|mdz)\.fits$")


@pytest.fixture(scope="module")
def cache(module_tmp) -> Path:
    root = module_tmp("crds")
    assert build_reference_cache(root, ("wfc3", "acs"), size="subarray") == "hst_0001.pmap"
    return root


@pytest.fixture(scope="module")
def raws(module_tmp):
    out = module_tmp("raw")
    downlink = simulate_downlink(SEED, "subarray", 6, ("wfc3", "acs"))
    write_fits(downlink, out)
    return out, downlink


def _bestrefs(cache: Path, context: str, paths: list[Path]) -> dict[str, dict[str, str]]:
    proc = subprocess.run([sys.executable, "-c", BESTREFS, context, *map(str, paths)], env=_clean_env(cache),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_reference_files_are_cdbs_named_with_selection_headers(cache):
    files = sorted(references_dir(cache).glob("*.fits"))
    # 23 + the UVIS CTE references (PCTETAB, BIACFILE, DRKCFILE) + an MDRIZTAB per detector (UVIS, IR, WFC, HRC,
    # SBC) + the ACS/WFC CTE references (PCTETAB, DRKCFILE)
    assert len(files) == 33
    for path in files:
        assert CDBS_NAME.match(path.name), path.name
        h = fits.getheader(path)
        for key in ("FILENAME", "FILETYPE", "INSTRUME", "DETECTOR", "USEAFTER", "PEDIGREE", "DESCRIP"):
            assert key in h, f"{path.name}: {key}"
        assert h["FILENAME"] == path.name
        assert h["NEXTEND"] == len(fits.open(path)) - 1
        assert path.name[8] == ("i" if h["INSTRUME"] == "WFC3" else "j")
        assert path.stat().st_mode & 0o044 == 0o044, "cache files must be readable by every stage"
    imp = next(p for p in files if p.name.endswith("i_imp.fits"))
    with fits.open(imp) as f:
        assert [h.name for h in f[1:]] == ["PHOTFLAM", "PHOTPLAM", "PHOTBW", "PHTFLAM1", "PHTFLAM2"]
        rows = f["PHOTFLAM"].data
        i = list(rows["OBSMODE"]).index("wfc3,uvis2,f606w,mjd#")
        assert rows["DATACOL"][i] == "PHOTFLAM1" and rows["PAR1NAMES"][i] == "MJD#"
        assert rows["NELEM1"][i] == len(rows["PAR1VALUES"][i]) == len(rows["PHOTFLAM1"][i]) > 2
    acs_imp = next(p for p in files if p.name.endswith("j_imp.fits"))
    assert len(fits.open(acs_imp)) == 4  # PHOTFLAM, PHOTPLAM, PHOTBW


def test_image_references_are_imsets_hstio_accepts_and_full_chip_where_real_ones_are(cache):
    """Every image is SCI/ERR/DQ imsets the strict reader (hstio's rules) accepts for each chip it
    holds; SATUFILE and SNKCFILE cover both whole raw chips even in a subarray cache, as real ones do,
    and DARKFILE and PFLTFILE both whole trimmed chips."""
    from pipeline.science.calib.imageio import RefImage

    raw_chip = {"WFC3": (2070, 4206), "ACS": (2068, 4144)}
    trimmed_chip = {"WFC3": (2051, 4096), "ACS": (2048, 4096)}
    for path in sorted(references_dir(cache).glob("*.fits")):
        h = fits.getheader(path)
        if path.name[-8:-5] not in ("bia", "drk", "pfl", "sat", "snk"):
            continue
        ref = RefImage.open(path.name[-8:-5].upper(), path)
        chips = [int(fits.getval(path, "CCDCHIP", ("SCI", n))) for n in range(1, h["NEXTEND"] // 3 + 1)]
        assert h["NEXTEND"] % 3 == 0 and chips, path.name
        for chip in chips:
            imset = ref.for_chip(chip)
            assert imset.err().shape == imset.dq().shape == imset.sci().shape
        if path.name[-8:-5] in ("drk", "pfl"):
            assert (imset.ny, imset.nx) == trimmed_chip[h["INSTRUME"]], path.name
        if path.name[-8:-5] in ("sat", "snk"):
            assert sorted(chips) == [1, 2], path.name
            assert (imset.ny, imset.nx) == raw_chip[h["INSTRUME"]], path.name
            assert h["SUBARRAY"] is False


def test_crds_certify_accepts_every_reference_and_mapping(cache):
    files = sorted(str(p) for p in references_dir(cache).glob("*.fits"))
    files += sorted(str(p) for p in mappings_dir(cache).glob("*map"))
    assert_certify_clean(cache, files, "hst_0001.pmap")


def test_every_simulated_raw_resolves_offline(cache, raws):
    out, _ = raws
    paths = sorted(out.glob("*_raw.fits"))
    results = _bestrefs(cache, "hst_0001.pmap", paths)
    available = {p.name for p in references_dir(cache).glob("*.fits")}
    for path in paths:
        refs = results[str(path)]
        instrument = fits.getval(path, "INSTRUME")
        required = {"ccdtab", "oscntab", "bpixtab", "biasfile", "darkfile", "pfltfile", "imphttab", "satufile"}
        required |= {"snkcfile"} if instrument == "WFC3" else set()
        for reftype in required:
            assert refs[reftype] in available, f"{path.name}: {reftype} -> {refs[reftype]}"
        assert refs["dfltfile"].startswith("NOT FOUND n/a") and refs["lfltfile"].startswith("NOT FOUND n/a")
        if fits.getval(path, "CRCORR") == "PERFORM":
            assert refs["crrejtab"] in available
        gain = fits.getval(path, "CCDGAIN")
        assert fits.getval(references_dir(cache) / refs["biasfile"], "CCDGAIN") == gain


def _mini_calibrate(raw: fits.HDUList, cache: Path, refs: dict[str, str], det: Detector) -> np.ndarray:
    """The calwf3/calacs arithmetic in a few lines (subarray: prescan bias level), in electrons."""
    h, sci = raw[0].header, raw["SCI", 1]
    data = sci.data.astype(np.float64)
    ltv1 = int(sci.header["LTV1"])
    amp = det.gain_mode(h["CCDGAIN"]).amps[h["CCDAMP"]]

    def ref(kind: str) -> np.ndarray:
        """The reference's SCI under the science array (full-chip darks and flats: cut at the LTV corner)."""
        with fits.open(references_dir(cache) / refs[kind]) as f:
            hdu = next(x for x in f[1:] if x.name == "SCI" and x.header.get("CCDCHIP", 1) == sci.header["CCDCHIP"])
            trimmed = kind != "biasfile"
            hdr = sci.header.copy()
            ny, nx = sci.data.shape[0], sci.data.shape[1] - (ltv1 if trimmed else 0)
            hdr["LTV1"] = sci.header["LTV1"] - (ltv1 if trimmed else 0)
            place = find_line(hdr, nx, hdu.header, hdu.data.shape[1])
            return hdu.data[place.y0:place.y0 + ny, place.x0:place.x0 + nx].astype(np.float64)

    rows = np.arange(data.shape[0])

    def overscan_line(image: np.ndarray) -> np.ndarray:
        level = image[:, 3:ltv1 - 2].mean(axis=1)
        return np.polyval(np.polyfit(rows, level, 1), rows)[:, None]

    if h["INSTRUME"] == "WFC3":  # BLEV, BIAS, DARK x EXPTIME / gain, FLAT with 1/mean_gain
        data = data - overscan_line(data) - ref("biasfile")
        data = data[:, ltv1:] - ref("darkfile") * h["EXPTIME"] / amp.gain
        return data * det.gain_mode(h["CCDGAIN"]).mean_gain / ref("pfltfile")
    data = (data - ref("biasfile")) * amp.gain  # ACS: BIAS, electrons, BLEV, DARK x DARKTIME, FLAT
    data = (data - overscan_line(data))[:, ltv1:]
    darktime = h["DARKTIME"] + det.ACS_DARK_OVERHEAD[0]
    return (data - ref("darkfile") * darktime) / ref("pfltfile")


def test_calibrating_with_the_references_recovers_the_truth(cache, raws):
    out, downlink = raws
    exposures = [m for asn in downlink for m in asn.members]
    results = _bestrefs(cache, "hst_0001.pmap", [out / f"{m.rootname}_raw.fits" for m in exposures])
    for m in exposures:
        det = Detector(m.spec.instrument)
        calibrated = _mini_calibrate(m.raw, cache, results[str(out / f"{m.rootname}_raw.fits")], det)
        truth = m.truth.chips[0]
        good = ~(truth.hot | truth.saturated | truth.cosmic | truth.bad | truth.sink)
        amp = det.gain_mode(m.spec.ccdgain).amps[m.spec.readout.ccdamp]
        variance = truth.scene + truth.dark + amp.read_noise ** 2 + amp.gain ** 2 / 12
        z = ((calibrated - truth.scene) / np.sqrt(variance))[good]
        assert abs(z.mean()) < 0.03, f"{m.rootname}: calibrated sky is biased ({z.mean():.3f} sigma)"
        assert 0.97 < z.std() < 1.05, f"{m.rootname}: noise {z.std():.3f} x expected"
        # the flagged pixels really are off: the masks are not decoration
        assert np.abs((calibrated - truth.scene)[truth.bad & ~truth.saturated]).mean() > 5


def _sha(paths):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_dark_delivery_new_context_only_for_the_bumped_mode(cache, raws):
    out, _ = raws
    before = _sha(mappings_dir(cache).glob("*"))
    old = _bestrefs(cache, "hst_0001.pmap", sorted(out.glob("*_raw.fits")))
    assert bump_reference(cache, "darkfile", detector="UVIS") == "hst_0002.pmap"
    after = _sha(mappings_dir(cache).glob("*"))
    assert all(after[name] == digest for name, digest in before.items()), "older mappings must stay untouched"
    assert sorted(set(after) - set(before)) == ["hst_0002.pmap", "hst_wfc3_0002.imap", "hst_wfc3_darkfile_0002.rmap"]
    assert "hst_0002.pmap" in (cache / "config" / "hst" / "server_config").read_text()
    new = _bestrefs(cache, "hst_0002.pmap", sorted(out.glob("*_raw.fits")))
    again_old = _bestrefs(cache, "hst_0001.pmap", sorted(out.glob("*_raw.fits")))
    assert again_old == old
    for path, refs in new.items():
        changed = {k for k in refs if refs[k] != old[path][k]}
        if fits.getval(path, "INSTRUME") == "WFC3":
            assert changed == {"darkfile"}
            dark = references_dir(cache) / refs["darkfile"]
            assert fits.getval(dark, "USEAFTER") == "May 15 2009 00:00:00"
            old_dark = references_dir(cache) / old[path]["darkfile"]
            assert np.array_equal(fits.getdata(dark, "SCI", 1), fits.getdata(old_dark, "SCI", 1))
            assert fits.getdata(dark, "ERR", 1).mean() < fits.getdata(old_dark, "ERR", 1).mean()
        else:
            assert changed == set()


def test_delivery_for_one_amplifier_configuration_opens_a_new_row(cache, raws):
    out, _ = raws
    context = bump_reference(cache, "darkfile", detector="UVIS", ccdamp="ABCD")
    rmap = (mappings_dir(cache) / "hst_wfc3_darkfile_0003.rmap").read_text()
    assert "('UVIS', 'ABCD', '1.0', '1.0', 'N/A', 'N/A', 'N/A')" in rmap
    assert "('UVIS', 'C', '1.0', '1.0', 'N/A', 'N/A', 'N/A')" in rmap
    subarray = sorted(out.glob("i*_raw.fits"))[:1]
    before = _bestrefs(cache, "hst_0002.pmap", subarray)
    after = _bestrefs(cache, context, subarray)
    assert before == after, "CCDAMP=C data keep their dark when an ABCD dark arrives"
    # a full-frame (ABCD) header now selects the new file
    full = out / "full_abcd_raw.fits"
    with fits.open(subarray[0]) as f:
        f[0].header["CCDAMP"] = "ABCD"
        f[0].header["SUBARRAY"] = False
        f.writeto(full)
    new_dark = _bestrefs(cache, context, [full])[str(full)]["darkfile"]
    assert fits.getval(references_dir(cache) / new_dark, "CCDAMP") == "ABCD"
    assert fits.getval(references_dir(cache) / new_dark, "USEAFTER") == "May 14 2009 00:00:00"


def test_cache_refuses_misuse(cache, tmp_path):
    with pytest.raises(CacheError, match="already holds a CRDS context"):
        build_reference_cache(cache, ("wfc3",), size="subarray")
    with pytest.raises(ValueError, match="not to the ccdtab table"):
        bump_reference(cache, "ccdtab", ccdamp="C")
    with pytest.raises(CacheError, match="not a simulator CRDS cache"):
        bump_reference(tmp_path, "darkfile")
