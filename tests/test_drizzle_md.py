"""owl-md: AstroDrizzle on copies, provenance, star positions, and refusal of bad or dropped inputs."""

from __future__ import annotations

import os

import numpy as np
import pytest
from astropy.io import fits

from pipeline.core.fsutil import sha256_file
from pipeline.core.names import parse_dataset
from pipeline.core.osf import Blackboard
from pipeline.core.stage import run_stage
from pipeline.science import drizzle
from stages.md import Drizzle
from tests.products_data import Field, measured_offsets, star_field, write_flt

ASN = "idn101010"
MEMBERS = ("idn101a1q", "idn101a2q")
SHAPE = (160, 200)


@pytest.fixture(scope="module")
def sky() -> Field:
    return star_field(Field(), 30, SHAPE, seed=3)


def _association(site, sky: Field, suffixes=("flt",), **overrides) -> list:
    bb = Blackboard(site.database_url)
    bb.create(ASN)
    work = site.work_dir(parse_dataset(ASN))
    paths = []
    for i, member in enumerate(MEMBERS):
        bb.create(member, parent=ASN)
        for suffix in suffixes:
            paths.append(write_flt(work / f"{member}_{suffix}.fits", sky, shape=SHAPE, asn_id=ASN, seed=i,
                                   dither=(0.0, 0.0) if i == 0 else (7.5, 4.5), cosmic_rays=15, **overrides))
    return paths


def test_association_drz_and_drc(site, sky):
    inputs = _association(site, sky, ("flt", "flc"))
    before = {p.name: sha256_file(p) for p in inputs}
    assert run_stage(Drizzle, [ASN]) == 0
    work = site.work_dir(parse_dataset(ASN))
    for suffix, kind in (("drz", "flt"), ("drc", "flc")):
        product = work / f"{ASN}_{suffix}.fits"
        with fits.open(product) as hdul:
            assert [h.name for h in hdul] == ["PRIMARY", "SCI", "WHT", "CTX", "HDRTAB"]
            h = hdul[0].header
            assert h["NDRZIN"] == 2
            assert [h["DRZIN001"], h["DRZIN002"]] == [f"{m}_{kind}.fits" for m in MEMBERS]
            assert h["DRZSH002"] == before[f"{MEMBERS[1]}_{kind}.fits"]
            assert h["CRDS_CTX"] == "hst_0001.pmap" and h["CAL_VER"] and h["DRIZ_VER"].startswith("drizzlepac")
            assert h["EXPTIME"] == pytest.approx(800.0)
        assert drizzle.drizzled_inputs(product) == {f"{m}_{kind}.fits" for m in MEMBERS}
        offsets = measured_offsets(product, sky.stars)
        assert len(offsets) >= 20
        assert np.median(offsets) < 0.5, offsets
    assert {p.name: sha256_file(p) for p in inputs} == before  # drizzlepac only touched copies
    assert sorted(p.name for p in work.iterdir() if p.name.startswith(".")) == []
    bb = Blackboard(site.database_url)
    assert {d: bb.get(d).letter("MD") for d in (ASN, *MEMBERS)} == dict.fromkeys((ASN, *MEMBERS), "c")
    trailer = site.trailer_path(parse_dataset(ASN)).read_text()
    assert f"wrote {ASN}_drz.fits from 2 input(s)" in trailer and "begin AstroDrizzle log" in trailer


def test_singleton(site, sky):
    name = "idn102b3q"
    Blackboard(site.database_url).create(name)
    write_flt(site.work_dir(parse_dataset(name)) / f"{name}_flt.fits", sky, shape=SHAPE)
    assert run_stage(Drizzle, [name]) == 0
    product = site.work_dir(parse_dataset(name)) / f"{name}_drz.fits"
    assert fits.getval(product, "NDRZIN") == 1
    assert np.median(measured_offsets(product, sky.stars)) < 0.5


def test_spectroscopic_instrument_has_no_drizzled_product(site):
    Blackboard(site.database_url).create("ldfd01010")
    assert run_stage(Drizzle, ["ldfd01010"]) == 0
    assert "MD does not apply to COS data" in site.trailer_path(parse_dataset("ldfd01010")).read_text()


def _failed(site, capsys, code=20) -> str:
    assert run_stage(Drizzle, [ASN]) == code
    err = capsys.readouterr().err
    bb = Blackboard(site.database_url)
    assert bb.get(ASN).letter("MD") == "e"
    work = site.work_dir(parse_dataset(ASN))
    assert not list(work.glob("*_dr[zc].fits")) and not list(work.glob(".md_*"))
    return err


def test_missing_input(site, sky, capsys):
    paths = _association(site, sky)
    paths[1].unlink()
    err = _failed(site, capsys)
    assert f"drizzle input(s) missing from {paths[1].parent}: {paths[1].name}" in err


def test_corrupt_input_is_quarantined(site, sky, capsys):
    paths = _association(site, sky)
    data = paths[0].read_bytes()
    paths[0].write_bytes(data[: len(data) // 2])
    err = _failed(site, capsys)
    assert f"{paths[0].name}: unreadable or corrupt FITS" in err
    assert (site.areas.quarantine / paths[0].name).exists() and not paths[0].exists()


def test_zero_exposure_refused_before_drizzling(site, sky, capsys):
    paths = _association(site, sky)
    fits.setval(paths[1], "EXPTIME", value=0.0)
    err = _failed(site, capsys)
    assert f"{paths[1].name}: EXPTIME = 0.0 (drizzlepac silently drops" in err


def test_silent_drop_detected(site, sky, capsys, monkeypatch):
    """Even an input the checks let through must not vanish: the product's D###DATA keywords are compared."""
    paths = _association(site, sky)
    fits.setval(paths[1], "EXPTIME", value=0.0)
    checked = drizzle.preflight

    def lenient(path):  # the checks see a good exposure time; drizzlepac sees the zero
        original = fits.getval(path, "EXPTIME")
        fits.setval(path, "EXPTIME", value=400.0)
        try:
            return checked(path)
        finally:
            fits.setval(path, "EXPTIME", value=original)

    monkeypatch.setattr(drizzle, "preflight", lenient)
    err = _failed(site, capsys)
    assert f"{ASN}_drz.fits: AstroDrizzle silently dropped {paths[1].name} of 2 input(s)" in err
    assert "zero exposure time" in err
    assert (site.areas.quarantine / paths[1].name).exists()


def test_provenance_rewrites_only_the_primary_header(tmp_path):
    """The recorded product is the new primary header, then the product's own bytes after its
    primary header, unchanged; the product AstroDrizzle wrote is left as it was."""
    product = tmp_path / "idn101010_drz.fits"
    sci = fits.ImageHDU(np.arange(12000, dtype=np.float32).reshape(100, 120), name="SCI")
    primary = fits.PrimaryHDU()
    for i in range(30):  # a nearly full first block
        primary.header.add_history(f"AstroDrizzle step {i}")
    fits.HDUList([primary, sci, fits.ImageHDU(np.ones((100, 120), np.float32), name="WHT")]).writeto(product)
    before = product.read_bytes()
    with fits.open(product) as hdul:
        rest = hdul.fileinfo(0)["datLoc"]
    inputs = [drizzle.DrizzleInput(tmp_path / f"{m}_flt.fits", m, "WFC3", "UVIS", "hst_0349.pmap", "ab" * 32)
              for m in MEMBERS]

    recorded = drizzle.add_provenance(product, inputs, "hst_0349.pmap")

    assert product.read_bytes() == before
    with fits.open(recorded) as hdul:
        hdul.verify("exception")
        h = hdul[0].header
        assert (h["NDRZIN"], h["DRZIN002"], h["DRZSH001"], h["CRDS_CTX"]) == (2, f"{MEMBERS[1]}_flt.fits", "ab" * 32,
                                                                           "hst_0349.pmap")
        assert h["DRIZCORR"] == "COMPLETE" and any("defaults (no MDRIZTAB)" in str(v) for v in h["HISTORY"])
        grown = hdul.fileinfo(0)["datLoc"]
        assert grown > rest  # the header needed more blocks: the case astropy's update mode writes twice
        assert np.array_equal(hdul["SCI"].data, sci.data)
    assert recorded.read_bytes()[grown:] == before[rest:]


@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_append_tail_copies_from_offset(tmp_path, monkeypatch, platform):
    """By the kernel on Linux, through a buffer elsewhere (macOS's sendfile sends only to sockets):
    the same bytes either way, after what ``out`` already holds."""
    from pipeline.core import fsutil

    monkeypatch.setattr(fsutil.sys, "platform", platform)
    data = os.urandom(3 * 2**20 + 123)
    (tmp_path / "src").write_bytes(data)
    with open(tmp_path / "src", "rb") as src, open(tmp_path / "out", "wb") as out:
        out.write(b"HEAD")
        fsutil.append_tail(out, src, 2880)
    assert (tmp_path / "out").read_bytes() == b"HEAD" + data[2880:]
