"""WFC3/IR end to end on the real stages: a downlink with a UVIS and an IR dither pair goes through
new_science (every column ``c``, an IR ``_drz`` in e-/s, catalogue fields from the IR headers), and
an IR NLINFILE delivery (``owl simulate refs --bump nlinfile --detector IR``) selects exactly the IR
exposures for reprocessing."""

from __future__ import annotations

import json

import pytest
from astropy.io import fits
from click.testing import CliRunner

from pipeline.archive.store import Archive
from pipeline.cli import main as owl
from pipeline.core.osf import Blackboard
from pipeline.simulate.crdscache import latest_context
from tests.test_reprocess_e2e import _process_live

pytestmark = [pytest.mark.slow, pytest.mark.long]  # whole-site runs of minutes: make test-long


def _owl(site, *args: str):
    return CliRunner().invoke(owl, [*args, "--site", str(site.root)])


def test_ir_downlink_new_science_and_nlinfile_reprocessing(site, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("CRDS_PATH", raising=False)
    monkeypatch.delenv("CRDS_CONTEXT", raising=False)
    res = _owl(site, "simulate", "--size", "subarray", "--associations", "2", "--instruments", "wfc3,wfc3ir",
               "--seed", "3")
    assert res.exit_code == 0, res.output
    context = latest_context(site.areas.crds)
    tops = _process_live(site)
    bb = Blackboard(site.database_url)
    archive = Archive(site)
    ir = {}
    for top in tops:
        assert set(bb.get(top).status) == {"c"}, (top, bb.get(top).status)
        for member in bb.members(top) or [top]:
            assert set(bb.get(member).status) == {"c"}
            meta = archive.metadata(member)
            if meta["detector"] == "IR":
                ir[member] = (top, meta)
    (ir_top,) = {top for top, _ in ir.values()}
    assert len(ir) == 2
    for member, (_, meta) in ir.items():
        (raw,) = archive.get(member, kind="raw", dest=tmp_path / member)
        h = fits.getheader(raw)
        assert (meta["instrument"], meta["filters"], meta["exptime"]) == ("WFC3", h["FILTER"], h["EXPTIME"])
        assert meta["crds_context"] == context and h["NEXTEND"] == 5 * h["NSAMP"]
        (flt,) = archive.get(member, kind="flt", dest=tmp_path / member)
        assert fits.getval(flt, "BUNIT", ext=1) == "ELECTRONS/S" and fits.getval(flt, "CRCORR") == "COMPLETE"
    (drz,) = archive.get(ir_top, kind="drz", dest=tmp_path / ir_top)
    with fits.open(drz) as d:
        assert d["SCI"].header["BUNIT"] == "ELECTRONS/S"
        assert {d[0].header["D001DATA"].split("[")[0], d[0].header["D002DATA"].split("[")[0]} == \
            {f"{m}_flt.fits" for m in ir}

    res = _owl(site, "simulate", "refs", "--bump", "nlinfile", "--detector", "IR")
    assert res.exit_code == 0, res.output
    new = res.output.split("new context ")[1].split()[0]
    res = _owl(site, "reprocess", "--new-context", new, "--dry-run", "--json")
    assert res.exit_code == 0, res.output
    affected = json.loads(res.output)["affected"]
    assert sorted(a["dataset"] for a in affected) == sorted(ir)
    assert {c["reftype"] for a in affected for c in a["changes"]} == {"nlinfile"}
    assert _owl(site, "simulate", "refs", "--bump", "nlinfile", "--detector", "IR", "--ccdamp", "C").exit_code != 0


def test_ir_repeat_association_sums_in_the_workflow(site, monkeypatch) -> None:
    """A REPEAT pair of IR ramps through new_science: the last member's CA writes the ``_crj`` (RPTCORR),
    AC accepts it and INGEST_SCI archives it under the product's name."""
    from pipeline.science.telemetry.dan import write_downlink
    from pipeline.simulate.crdscache import build_reference_cache
    from pipeline.simulate.irdownlink import ensure_ir_references, iter_ir_downlink

    monkeypatch.delenv("CRDS_PATH", raising=False)
    monkeypatch.delenv("CRDS_CONTEXT", raising=False)
    build_reference_cache(site.areas.crds, ("wfc3",), size="subarray")
    ensure_ir_references(site.areas.crds, "subarray")
    repeat = list(iter_ir_downlink(4, "subarray", 3))[2]
    assert repeat.asn_type == "REPEAT"
    write_downlink([repeat], site.areas.inbox, "dl-ir-repeat")
    (top,) = _process_live(site)
    bb = Blackboard(site.database_url)
    assert set(bb.get(top).status) == {"c"}
    product = f"{top[:8]}1"
    archive = Archive(site)
    assert [f.name for f in archive.files(product, kind="crj")] == [f"{product}_crj.fits"]
    assert [f.name for f in archive.files(top, kind="drz")] == [f"{top}_drz.fits"]
    trailer = (site.areas.logs / f"{top}.trl").read_text()
    assert f"RPTCORR: 2 images summed into {product}_crj.fits" in trailer
