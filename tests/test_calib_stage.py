"""owl-ca: one node per member, and the association node that finishes a CR-SPLIT."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.core.asntable import build_asn_table
from pipeline.core.names import parse_dataset
from pipeline.core.osf import Blackboard
from pipeline.core.stage import run_stage
from stages.ca import Calibrate
from tests.calib_synth import UvisSet, write_raw
from tests.conftest import real_file
from tests.test_calib_engine import SWITCHES, make_refs, scene


def _setup(site, monkeypatch, *, crsplit: bool) -> tuple[Path, list[str], Blackboard]:  # type: ignore[no-untyped-def]
    refdir = site.areas.crds / "references" / "hst"
    refdir.mkdir(parents=True)
    s = UvisSet()
    make_refs(refdir, s)
    s.refs["CRREJTAB"] = "t_crr.fits"
    shutil.copyfile(real_file("reference_files/wfc3/n9i1435li_crr.fits"), refdir / "t_crr.fits")
    monkeypatch.delenv("iref", raising=False)  # references come from the site's CRDS cache
    asn = parse_dataset("iabc01010")
    work = site.work_dir(asn)
    work.mkdir(parents=True)
    members = ["iabc01a1q", "iabc01a2q"]
    rng = np.random.default_rng(11)
    sw = {**SWITCHES, "CRCORR": "PERFORM" if crsplit else "OMIT"}
    for m in members:
        write_raw(work / f"{m}_raw.fits", s, scene(s, rng), switches=sw, rootname=m, extra={"EXPFLAG": "NORMAL"})
    build_asn_table(asn.name, members, "CR-SPLIT" if crsplit else "DITHER").writeto(work / f"{asn.name}_asn.fits")
    bb = Blackboard(site.database_url)
    bb.create(asn)
    for m in members:
        bb.create(parse_dataset(m), parent=asn)
    return work, members, bb


def test_last_member_node_combines_a_cr_split(site, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    work, members, bb = _setup(site, monkeypatch, crsplit=True)
    assert run_stage(Calibrate, [members[0], "--site", str(site.root)]) == 0
    assert (work / f"{members[0]}_blv_tmp.fits").is_file() and not (work / f"{members[0]}_flt.fits").exists()
    assert not (work / "iabc01011_crj.fits").exists()
    assert run_stage(Calibrate, [members[1], "--site", str(site.root)]) == 0   # the last one combines
    crj = work / "iabc01011_crj.fits"
    assert crj.is_file() and fits.getval(crj, "NCOMBINE", ext=1) == 2
    for m in members:
        assert (work / f"{m}_flt.fits").is_file()
        assert fits.getval(work / f"{m}_flt.fits", "CAL_ENG") == "builtin"
        assert bb.get(m).letter("CA") == "c"
    assert bb.get("iabc01010").letter("CA") == "c"          # the association row aggregates
    trailer = site.trailer_path(parse_dataset("iabc01010")).read_text()
    assert "CRCORR: 2 images" in trailer and "wrote iabc01011_crj.fits" in trailer
    # a retried member redoes the combination (the intermediates stay until CL)
    before = crj.stat().st_mtime_ns
    assert run_stage(Calibrate, [members[0], "--site", str(site.root), "--force"]) == 0
    assert crj.stat().st_mtime_ns > before


def test_member_node_of_a_dither_writes_its_flt(site, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    work, members, _bb = _setup(site, monkeypatch, crsplit=False)
    assert run_stage(Calibrate, [members[0], "--site", str(site.root)]) == 0
    assert (work / f"{members[0]}_flt.fits").is_file() and not (work / f"{members[0]}_blv_tmp.fits").exists()


def test_missing_reference_fails_the_node_with_exit_21(site, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _work, members, bb = _setup(site, monkeypatch, crsplit=False)
    (site.areas.crds / "references" / "hst" / "t_bia.fits").unlink()
    assert run_stage(Calibrate, [members[0], "--site", str(site.root)]) == 21
    entry = bb.get(members[0])
    assert entry.letter("CA") == "e"
    trailer = site.trailer_path(parse_dataset(members[0])).read_text()
    assert "BIASFILE" in trailer and "t_bia.fits" in trailer


def test_owl_ca_freezes_the_heap_at_exit() -> None:
    """owl-ca, like ``owl calibrate``, skips the interpreter's last collection (pipeline.core.procexit)."""
    import subprocess
    import sys

    script = ("import atexit, gc; atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0)); "
              "from stages.ca import main; main(['--help'])")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "CONDOR_CONFIG": "/dev/null"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "frozen at exit: True"
