"""Best references with crds, offline, on the real 2015 HST context and the real ACS/HRC raws."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner

from pipeline.core.errors import ConfigError, MissingReference
from pipeline.core.exitcodes import ExitCode
from pipeline.science import refs
from tests.refs_support import REAL_CONTEXT, copy_raws, manifest_bestrefs, real_cache, varied_params


@pytest.fixture(scope="module")
def cache(module_tmp, request):
    from tests.conftest import REALDATA

    if not REALDATA.is_dir():
        pytest.skip("real HST data not available")
    return real_cache(module_tmp("realcrds"), REALDATA)


@pytest.fixture(scope="module")
def context(cache):
    return refs.load_context(cache, REAL_CONTEXT)


@pytest.fixture(autouse=True)
def _no_crds_env(monkeypatch):
    for key in ("CRDS_PATH", "CRDS_CONTEXT", "CRDS_MODE", "CRDS_SERVER_URL", "jref"):
        monkeypatch.delenv(key, raising=False)


def test_real_raws_get_the_manifest_references(context, realdata, tmp_path):
    expected = manifest_bestrefs(realdata)
    assert len(expected) == 3
    for raw in copy_raws(realdata, tmp_path):
        header = fits.getheader(raw)
        lookup = context.lookup(refs.dataset_parameters(raw))
        assert lookup.instrument == "ACS" and not lookup.failures
        assigned = {t: f for t, f in lookup.refs.items() if f != refs.NA}
        manifest = expected[raw.name]
        assert set(assigned) == set(manifest), raw.name
        for reftype, name in manifest.items():
            if name == "NOT FOUND":
                # the MANIFEST matched on the primary header only; with the SCI keywords crds needs
                # (NAXIS1/2, LTV1/2) the lookup finds what the archive itself put in the raw header
                assert f"jref${assigned[reftype]}" == header[reftype.upper()], (raw.name, reftype)
            else:
                assert assigned[reftype] == name, (raw.name, reftype)
        assert lookup.refs["shadfile"] == refs.NA  # SHADCORR=OMIT: the type does not apply


def test_assign_writes_prefixed_keywords_atomically(context, realdata, tmp_path):
    raws = copy_raws(realdata, tmp_path)
    before = {p: (fits.getdata(p, 1, do_not_scale_image_data=True).copy(), p.stat().st_mode) for p in raws}
    results = refs.assign_bestrefs(raws, context)
    assert [r.path for r in results] == raws
    for raw in raws:
        hdr = fits.getheader(raw)
        assert hdr["CRDS_CTX"] == REAL_CONTEXT
        assert hdr["CRDS_VER"].startswith(refs.crds_version().split(",")[0])
        assert hdr["IMPHTTAB"] == "jref$w3m1716tj_imp.fits"  # added: absent from the 2002 header
        assert hdr["SHADFILE"] == "N/A" and hdr["ATODTAB"] == "N/A"
        assert hdr["BPIXTAB"] == "jref$m8r09169j_bpx.fits"
        data = fits.getdata(raw, 1, do_not_scale_image_data=True)
        assert np.array_equal(data, before[raw][0]) and raw.stat().st_mode == before[raw][1]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in raws)  # no temp left
    again = refs.assign_bestrefs(raws, context)
    assert all(not r.changed for r in again)  # a rerun converges


def test_failed_lookup_names_type_and_parameter_and_touches_nothing(context, realdata, tmp_path):
    raws = copy_raws(realdata, tmp_path)
    with fits.open(raws[1], mode="update") as hdul:
        hdul[0].header["CCDGAIN"] = 3
    snapshot = [p.read_bytes() for p in raws]
    with pytest.raises(MissingReference) as err:
        refs.assign_bestrefs(raws, context)
    line = err.value.line()
    assert err.value.code == ExitCode.MISSING_REFERENCE
    assert raws[1].name in line and "BIASFILE" in line and "DARKFILE" in line
    assert "CCDGAIN='3.0'" in line and raws[0].name not in line
    assert [p.read_bytes() for p in raws] == snapshot  # all or nothing


@pytest.mark.parametrize(("change", "reftype", "words"), [
    ({"DETECTOR": "XYZ"}, "ccdtab", "DETECTOR='XYZ' is named by no rule"),
    ({"DATE-OBS": "1980-01-01"}, "darkfile", "before the earliest USEAFTER"),
    ({"FILTER1": "F999W"}, "pfltfile", "FILTER1='F999W' is named by no rule"),
    ({"TIME-OBS": None}, "ccdtab", "TIME-OBS is missing from the header"),
])
def test_diagnosis_names_the_parameter(context, realdata, change, reftype, words):
    params = refs.dataset_parameters(realdata / "acs_hrc_j8bt" / "raw" / "j8bt05njq_raw.fits")
    for key, value in change.items():
        if value is None:
            del params[key]
        else:
            params[key] = value
    lookup = context.lookup(params)
    assert words in lookup.failures[reftype]
    with pytest.raises(MissingReference, match=reftype.upper()):
        refs.best_references(params, context)


def test_context_is_loaded_once_and_reused_without_the_disk(cache, context, realdata, tmp_path):
    assert refs.load_context(cache, REAL_CONTEXT) is context
    params = refs.dataset_parameters(realdata / "acs_hrc_j8bt" / "raw" / "j8bt09jcq_raw.fits")
    link = cache / "mappings" / "hst"
    target = link.readlink()
    link.unlink()  # the rules are in memory: nothing is re-read per dataset
    try:
        for _ in range(50):
            assert refs.best_references(params, context)["crrejtab"] == "n4e12510j_crr.fits"
    finally:
        link.symlink_to(target, target_is_directory=True)
    only = refs.best_references(params, context, reftypes=["DARKFILE"])
    assert only == {"darkfile": "n3o1059gj_drk.fits"}


def test_remembered_matching_gives_crds_own_answers(cache, context, realdata):
    """The memoised winnowing must not change a single answer, including the failures."""
    from crds.core import rmap, utils

    with refs._crds_pointed_at(cache):
        plain = rmap.load_mapping(REAL_CONTEXT)  # a private copy: crds's code path untouched
        plain.force_load()
    base = refs.dataset_parameters(realdata / "acs_hrc_j8bt" / "raw" / "j8bt05njq_raw.fits")
    variants = varied_params(base, 150)
    failed = 0
    for params in variants * 2:  # the second pass is served from the memo
        ours = context.lookup(params)
        theirs = plain.get_best_references(plain.minimize_header(utils.condition_header(params)))
        for reftype, value in theirs.items():
            if value.upper().startswith("NOT FOUND N/A"):
                assert ours.refs[reftype] == refs.NA
            elif value.upper().startswith("NOT FOUND"):
                assert reftype in ours.failures
                failed += 1
            else:
                assert ours.refs[reftype] == value
        assert set(ours.refs) | set(ours.failures) == set(theirs)
    assert failed > 0  # CCDGAIN=3 variants exercise the failure path


def test_context_resolution(cache, monkeypatch):
    assert refs.resolve_context(cache) == REAL_CONTEXT  # server_config's operational context
    assert refs.resolve_context(cache, "latest") == REAL_CONTEXT
    assert refs.resolve_context(cache, None, "hst_0348.pmap") == "hst_0348.pmap"
    monkeypatch.setenv("CRDS_CONTEXT", "hst_0300.pmap")
    assert refs.resolve_context(cache, None, "hst_0348.pmap") == "hst_0300.pmap"
    assert refs.resolve_context(cache, "hst_0349.pmap", "hst_0348.pmap") == "hst_0349.pmap"
    with pytest.raises(ConfigError, match="date-based"):
        refs.resolve_context(cache, "hst-2015-01-01T00:00:00")


def test_two_real_contexts_differ_in_the_expected_types(cache, context, realdata):
    old = refs.load_context(cache, "hst_0300.pmap")
    assert old.imap_name("ACS") != context.imap_name("ACS")
    changed = refs.changed_types(old, context)
    assert "biasfile" in changed["ACS"]
    params = refs.dataset_parameters(realdata / "acs_hrc_j8bt" / "raw" / "j8bt05njq_raw.fits")
    assert old.lookup(params, changed["ACS"]).refs.keys() <= set(changed["ACS"])


def test_cache_problems_are_config_errors(tmp_path, realdata, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="mappings/hst"):
        refs.load_context(empty)
    cache = real_cache(tmp_path / "a", realdata)
    (cache / "config" / "hst" / "server_config").unlink()
    with pytest.raises(ConfigError, match="server_config"):
        refs.load_context(cache)
    (cache / "config" / "hst" / "server_config").write_text("this is not a dict {")
    with pytest.raises(ConfigError, match="unreadable server_config"):  # crds raises SystemExit here
        refs.load_context(cache)
    refs.write_server_config(cache, REAL_CONTEXT)
    with pytest.raises(ConfigError, match=r"hst_9999\.pmap is not in the cache"):
        refs.load_context(cache, "hst_9999.pmap")
    monkeypatch.setenv("CRDS_MODE", "remote")
    with pytest.raises(ConfigError, match="CRDS_MODE=remote"):
        refs.load_context(cache)
    monkeypatch.setenv("CRDS_MODE", "local")
    assert refs.load_context(cache).name == REAL_CONTEXT
    monkeypatch.delenv("CRDS_MODE")
    with pytest.raises(ConfigError, match=r"the site's crds\.mode=remote"):
        refs.load_context(cache, site_mode="remote")
    assert "CRDS_PATH" not in os.environ  # crds was pointed at the cache only while loading


def test_cache_root_prefers_crds_path(site, monkeypatch, tmp_path):
    assert refs.cache_root(site) == site.areas.crds
    monkeypatch.setenv("CRDS_PATH", str(tmp_path))
    assert refs.cache_root(site) == tmp_path.resolve()
    monkeypatch.delenv("CRDS_PATH")
    with pytest.raises(ConfigError, match="CRDS_PATH"):
        refs.cache_root(None)


def test_locate_reference_follows_hstcal_then_the_cache(tmp_path):
    cache = tmp_path / "crds"
    flat = cache / "references" / "hst"
    (flat / "acs").mkdir(parents=True)
    (flat / "acs" / "x_bia.fits").write_bytes(b"")
    assert refs.locate_reference("jref$x_bia.fits", cache, {}) == flat / "acs" / "x_bia.fits"
    assert refs.locate_reference("jref$y_drk.fits", cache, {}) == flat / "y_drk.fits"
    assert refs.locate_reference("jref$y_drk.fits", cache, {"jref": "/refs/"}) == Path("/refs/y_drk.fits")
    assert refs.locate_reference("N/A", cache, {}) is None


def test_owl_bestrefs_cli(cache, realdata, tmp_path, monkeypatch):
    from pipeline.cli import main

    raws = copy_raws(realdata, tmp_path)
    monkeypatch.setenv("CRDS_PATH", str(cache))
    runner = CliRunner()
    shown = runner.invoke(main, ["bestrefs", "--json", str(raws[0])])
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    assert report["context"] == REAL_CONTEXT and not report["updated"]
    entry = report["files"][0]
    assert entry["references"]["BIASFILE"] == "jref$m4r1753rj_bia.fits"
    assert entry["changed"]["SHADFILE"] == {"old": "jref$kcb1734pj_shd.fits", "new": "N/A"}
    assert "CRDS_CTX" not in fits.getheader(raws[0])  # a report does not write
    updated = runner.invoke(main, ["bestrefs", "--update", "--context", REAL_CONTEXT, *map(str, raws)])
    assert updated.exit_code == 0, updated.output
    assert "(was jref$kcb1734pj_shd.fits)" in updated.output
    assert all(fits.getheader(p)["CRDS_CTX"] == REAL_CONTEXT for p in raws)
    with fits.open(raws[2], mode="update") as hdul:
        hdul[0].header["CCDAMP"] = "Q"
    failed = runner.invoke(main, ["bestrefs", str(raws[2])])
    assert failed.exit_code == ExitCode.MISSING_REFERENCE
    assert "BIASFILE  FAILED  CCDAMP='Q' is named by no rule" in failed.output


def test_interrupted_header_update_leaves_the_raw_intact(context, realdata, tmp_path, monkeypatch):
    raw = copy_raws(realdata, tmp_path)[0]
    before = raw.read_bytes()

    def dies_half_way(self, name, **kwargs):
        Path(name).write_bytes(before[: len(before) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fits.HDUList, "writeto", dies_half_way)
    with pytest.raises(OSError, match="No space left"):
        refs.assign_bestrefs([raw], context)
    assert raw.read_bytes() == before
    assert not [p.name for p in tmp_path.iterdir() if not p.name.endswith("_raw.fits")]  # temp file gone


def test_commands_do_not_import_crds_until_they_look_something_up():
    import subprocess
    import sys

    code = ("import sys, pipeline.cli.bestrefs, pipeline.cli.check, stages.rf, stages.bc, stages.ac; "
            "print(sorted(m for m in sys.modules if m == 'crds' or m.startswith('crds.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
