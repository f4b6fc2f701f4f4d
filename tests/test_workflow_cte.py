"""A site with the CTE branch on (``[calibration] pctecorr = ["UVIS"]``) end to end on the real
stages: 2FITS writes PCTECORR = PERFORM, the simulator's raws carry the trails, RF fills PCTETAB,
BIACFILE and DRKCFILE, CA writes ``_flc`` beside ``_flt``, MD ``_drc`` beside ``_drz``, INGEST_SCI
archives them, and a PCTETAB delivery selects every CTE-corrected exposure for reprocessing."""

from __future__ import annotations

import json

import pytest
from astropy.io import fits

import tests.test_reprocess_e2e as e2e
from pipeline.archive.store import Archive
from pipeline.core.names import parse_dataset
from pipeline.core.osf import Blackboard

pytestmark = [pytest.mark.slow, pytest.mark.long]  # whole-site runs of minutes: make test-long


def run_cte_site(site, monkeypatch, detector: str, *simulate: str) -> list[str]:
    """Turn the site's CTE branch on for ``detector``, simulate a downlink, process it live; the tops."""
    monkeypatch.delenv("CRDS_PATH", raising=False)
    monkeypatch.delenv("CRDS_CONTEXT", raising=False)
    config = site.root / "owl.toml"
    text = config.read_text()
    assert "pctecorr = []" in text
    config.write_text(text.replace("pctecorr = []", f'pctecorr = ["{detector}"]', 1))
    res = e2e._owl(site, "simulate", *simulate)
    assert res.exit_code == 0, res.output
    return e2e._process_live(site)


def site_exposures(site, tops: list[str]) -> tuple[Blackboard, Archive, list[str]]:
    """The site's blackboard, archive and the exposures (members of associations, singletons) of ``tops``."""
    bb = Blackboard(site.database_url)
    return bb, Archive(site), sorted(m for t in tops for m in (bb.members(t) or [t]))


def drc_beside_drz(bb: Blackboard, archive: Archive, tops: list[str]) -> int:
    """Every top complete, MD's ``_drc`` (from the flcs) archived beside the flts' ``_drz`` and a
    CR-SPLIT's ``_crc`` beside its ``_crj``; the number of CR-SPLIT stacks."""
    stacks = 0
    for top in tops:
        name = parse_dataset(top)
        family = {top, *bb.members(top), *([name.product(1).name] if name.is_association else [])}
        kinds = {f.kind for d in family for f in archive.files(d)}
        assert {"drc", "drz", "flc", "flt"} <= kinds, (top, kinds)
        if "crj" in kinds:
            assert "crc" in kinds, (top, kinds)
            stacks += 1
        entry = bb.find(top)
        assert entry is not None and set(entry.status) == {"c"}, entry.opus_name()
    return stacks


def test_a_cte_site_archives_flc_beside_flt_for_uvis_exposures(site, tmp_path, monkeypatch) -> None:
    tops = run_cte_site(site, monkeypatch, "UVIS", "--size", "subarray", "--associations", "2", "--instruments",
                        "wfc3", "--seed", "5")  # a dither pair and a CR-SPLIT pair
    bb, archive, exposures = site_exposures(site, tops)
    assert exposures
    pctetabs = {}
    for dataset in exposures:
        (raw,) = archive.get(dataset, kind="raw", dest=tmp_path / dataset)
        h = fits.getheader(raw)
        assert h["PCTECORR"] == "PERFORM" and h["PCTETAB"].startswith("iref$") and h["PCTETAB"].endswith("_cte.fits")
        assert h["BIACFILE"].endswith("_bic.fits") and h["DRKCFILE"].endswith("_dkc.fits")
        pctetabs[dataset] = h["PCTETAB"].split("$")[-1]
        (flc,) = archive.get(dataset, kind="flc", dest=tmp_path / f"{dataset}-flc")
        (flt,) = archive.get(dataset, kind="flt", dest=tmp_path / f"{dataset}-flt")
        with fits.open(flc) as c, fits.open(flt) as t:
            assert c[0].header["PCTECORR"] == "COMPLETE" and c[0].header["CTE_NAME"] == "owlsim pixelCTE"
            assert c[0].header["PCTERNOI"] > 0 and c[0].header["PCTEFRAC"] > 0
            assert (c["SCI", 1].data != t["SCI", 1].data).any()  # the trails are gone from the flc only
        assert archive.metadata(dataset)["software"]["CTE_VER"] == "2.0"  # catalogued from the _flc
    assert drc_beside_drz(bb, archive, tops) == 1

    # a new PCTETAB: every CTE-corrected exposure is affected, through that type alone
    assert e2e._owl(site, "simulate", "refs", "--bump", "pctetab").exit_code == 0
    res = e2e._owl(site, "reprocess", "--new-context", "hst_0002.pmap", "--dry-run", "--json")
    assert res.exit_code == 0, res.output
    affected = json.loads(res.output)["affected"]
    assert sorted(a["dataset"] for a in affected) == exposures
    for a in affected:
        assert [(c["reftype"], c["old"]) for c in a["changes"]] == [("pctetab", pctetabs[a["dataset"]])]
