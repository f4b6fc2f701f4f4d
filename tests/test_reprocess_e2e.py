"""On-The-Fly Reprocessing end to end, on the real stages: a dark delivered for one amplifier
configuration reprocesses exactly the exposures that used the dark it supersedes, and nothing else.

A simulated subarray downlink (a WFC3/UVIS dither pair, an ACS/WFC dither pair, a WFC3/UVIS
CR-SPLIT pair) is processed by the new_science stages (in process: quick), which archives every
exposure calibrated with hst_0001.pmap. A UVIS dark for CCDAMP ABCD (no exposure here reads out
that way) arrives as hst_0002, then one for CCDAMP C as hst_0003. The campaign then runs the
reprocess DAGs through the local executor, as an operator's ``owl reprocess`` does.
"""

from __future__ import annotations

import json

import pytest
from astropy.io import fits
from click.testing import CliRunner

from pipeline.archive.store import Archive
from pipeline.cli import main as owl
from pipeline.core.names import parse_dataset
from pipeline.core.osf import Blackboard
from pipeline.core.stage import run_stage
from pipeline.orchestration.controller import Controller
from pipeline.orchestration.workflow import load_workflow
from stages.ac import AfterCalibrationChecks
from stages.bc import BeforeCalibrationChecks
from stages.ca import Calibrate
from stages.cl import Cleanup
from stages.dan_receipt import run as receive
from stages.ingest import Ingest
from stages.ingest_pvw import IngestPreviews
from stages.ingest_sci import IngestScience
from stages.md import Drizzle
from stages.pvw import Previews
from stages.rf import BestRefsStage
from stages.twofits import TwoFits

STAGES = {"INGEST": Ingest, "2FITS": TwoFits, "RF": BestRefsStage, "BC": BeforeCalibrationChecks, "CA": Calibrate,
          "MD": Drizzle, "AC": AfterCalibrationChecks, "INGEST_SCI": IngestScience, "PVW": Previews,
          "INGEST_PVW": IngestPreviews, "CL": Cleanup}

pytestmark = pytest.mark.slow


def _owl(site, *args: str):
    return CliRunner().invoke(owl, [*args, "--site", str(site.root)])


def _process_live(site) -> list[str]:
    """What ``owl watch`` does for a downlink, stage by stage in this process; return the top datasets."""
    [dan] = site.areas.inbox.glob("*.dan.json")
    assert receive([str(dan), "--site", str(site.root)]) == 0
    bb = Blackboard(site.database_url)
    tops = [e.dataset for e in bb.query() if e.parent is None]
    workflow = load_workflow("new_science")
    for top in tops:
        for node in workflow.expand(top, bb.members(top)).nodes.values():
            assert run_stage(STAGES[node.stage.name], [node.dataset]) == 0, (node.name, top)
    return tops


def _raw_header(archive: Archive, dataset: str, tmp_path) -> fits.Header:
    (raw,) = archive.get(dataset, kind="raw", dest=tmp_path / dataset)
    return fits.getheader(raw)


def _uvis_darks(site, ccdamp: str) -> set[str]:
    """Dark reference files in the cache for UVIS and one amplifier configuration."""
    found = set()
    for path in (site.areas.crds / "references" / "hst").glob("*_drk.fits"):
        h = fits.getheader(path)
        if h.get("DETECTOR") == "UVIS" and h.get("CCDAMP") == ccdamp:
            found.add(path.name)
    return found


def test_dark_delivery_reprocesses_exactly_its_users(site, tmp_path, monkeypatch):
    monkeypatch.delenv("CRDS_PATH", raising=False)
    monkeypatch.delenv("CRDS_CONTEXT", raising=False)
    res = _owl(site, "simulate", "--size", "subarray", "--associations", "3", "--instruments", "wfc3,acs",
               "--seed", "11")
    assert res.exit_code == 0, res.output
    tops = _process_live(site)
    archive = Archive(site)
    bb = Blackboard(site.database_url)
    exposures = sorted(m for t in tops for m in (bb.members(t) or [t]))
    before = {d: archive.versions(d) for d in [*tops, *exposures]}
    headers = {d: _raw_header(archive, d, tmp_path / "before") for d in exposures}
    assert {h["CRDS_CTX"] for h in headers.values()} == {"hst_0001.pmap"}
    assert {h["INSTRUME"] for h in headers.values()} == {"WFC3", "ACS"}

    # a delivery no exposure here can use: nothing to reprocess
    assert _owl(site, "simulate", "refs", "--bump", "darkfile", "--detector", "UVIS", "--ccdamp", "ABCD").exit_code == 0
    res = _owl(site, "reprocess", "--new-context", "hst_0002.pmap", "--dry-run", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["affected"] == []

    # the C dark: its users are the exposures whose raw header names the C dark it supersedes
    old_c_darks = _uvis_darks(site, "C")
    assert _owl(site, "simulate", "refs", "--bump", "darkfile", "--detector", "UVIS", "--ccdamp", "C").exit_code == 0
    (new_dark,) = _uvis_darks(site, "C") - old_c_darks
    users = sorted(d for d, h in headers.items() if h["DARKFILE"].split("$")[-1] in old_c_darks)
    others = sorted(set(exposures) - set(users))
    assert users and others and all(headers[d]["INSTRUME"] == "WFC3" for d in users)

    res = _owl(site, "reprocess", "--new-context", "hst_0003.pmap", "--dry-run", "--json")
    listed = json.loads(res.output)
    assert sorted(a["dataset"] for a in listed["affected"]) == users
    for a in listed["affected"]:
        assert [(c["reftype"], c["old"], c["new"]) for c in a["changes"]] == \
            [("darkfile", headers[a["dataset"]]["DARKFILE"].split("$")[-1], new_dark)]
        assert a["old_context"] == "hst_0001.pmap"  # each exposure against the context it was processed with
    units = sorted({a["unit"] for a in listed["affected"]})

    res = _owl(site, "reprocess", "--new-context", "hst_0003.pmap", "--name", "dark-c", "--max-in-flight", "1",
               "--workers", "2")
    assert res.exit_code == 0, res.output
    assert f"campaign dark-c (hst_0003.pmap): {len(units)} selected ({len(users)} exposures), " \
           f"{len(units)} done, 0 failed" in res.output

    subs = Controller(site).submissions()
    campaign_subs = [s for s in subs if s.campaign == "dark-c"]
    assert sorted(s.dataset for s in campaign_subs) == units
    assert {(s.workflow, s.priority, s.state) for s in campaign_subs} == {("reprocess", site.priorities.reprocess,
                                                                           "done")}
    for d in users:  # new products: the new dark, the new context, a new version
        assert archive.versions(d)[-1] > before[d][-1]
        raw = _raw_header(archive, d, tmp_path / "after")
        assert raw["DARKFILE"] == f"iref${new_dark}" and raw["CRDS_CTX"] == "hst_0003.pmap"
        (flt,) = archive.get(d, kind="flt", dest=tmp_path / "flt" / d)
        assert fits.getval(flt, "DARKFILE") == f"iref${new_dark}" and fits.getval(flt, "CRDS_CTX") == "hst_0003.pmap"
        assert archive.metadata(d)["crds_context"] == "hst_0003.pmap"
    for unit in units:
        assert archive.versions(unit)[-1] > before[unit][-1]  # the drizzled product too
        assert all(c == "c" for c in bb.get(unit).status[2:])  # 2F..CL done again
    untouched = [d for d in [*tops, *exposures] if d not in users and d not in units]
    assert untouched and all(archive.versions(d) == before[d] for d in untouched)

    # the versions show what each was calibrated with
    text = _owl(site, "archive", "versions", users[0]).output
    assert "CRDS hst_0001.pmap" in text and "CRDS hst_0003.pmap" in text and "CAL_VER=" in text
    # a rerun continues the finished campaign: nothing submitted again
    res = _owl(site, "reprocess", "--new-context", "hst_0003.pmap", "--name", "dark-c", "--json")
    assert res.exit_code == 0 and json.loads(res.output)["counts"]["done"] == len(units)
    assert len(Controller(site).submissions()) == len(subs)
    assert parse_dataset(units[0]).is_association
