"""Trailer lines in OPUS form, concurrent appends, and _trl.fits packaging."""

from __future__ import annotations

import multiprocessing as mp
import re
import time

from pipeline.core.trailer import Trailer, package_trailer, parse_line, read_trl_fits

LINE_RE = re.compile(r"^\d{13}-(I-INFO|W-WARN|E-ERROR)-")


def test_line_forms(tmp_path):
    t = Trailer(tmp_path / "x.trl")
    t.info("hello")
    t.warn("careful")
    t.error("broken\nsecond line")
    lines = t.lines()
    assert [LINE_RE.match(line).group(1) for line in lines] == ["I-INFO", "W-WARN", "E-ERROR"]
    assert lines[2].endswith("-E-ERROR-broken second line")
    assert parse_line(lines[1]).severity == "warn"
    # STScI's own form, with a blank after INFO, parses too.
    assert parse_line("2017181074130-I-INFO Partitioning from POD file").text == "Partitioning from POD file"


def _append(path, who, n):
    t = Trailer(path)
    for i in range(n):
        t.info(f"{who}:{i}:" + "x" * 300)


def test_concurrent_appenders_never_interleave(tmp_path):
    path = tmp_path / "c.trl"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append, args=(path, f"p{k}", 200)) for k in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    lines = Trailer(path).lines()
    assert len(lines) == 1200
    assert all(LINE_RE.match(line) and line.endswith("x" * 300) for line in lines)
    for k in range(6):
        seq = [int(line.split(":")[1]) for line in lines if f"-p{k}:" in line]
        assert seq == list(range(200))


def test_package_round_trip(tmp_path, realdata):
    t = Trailer(tmp_path / "j9cv58abq.trl")
    t.info("short")
    t.info("long " + "y" * 300)
    out = package_trailer(t.path, tmp_path / "j9cv58abq_trl.fits", dataset="j9cv58abq")
    rows = read_trl_fits(out)
    assert rows[0] == t.lines()[0]
    long_line = t.lines()[1]
    assert rows[1] == long_line[:132]
    assert rows[2:] == ["    " + long_line[132:260], "    " + long_line[260:]]
    # STScI's own _trl.fits reads with the same reader.
    stsci = read_trl_fits(realdata / "cos_fuv_ldfd01010/calibrated_stsci/ldfd01vnq_trl.fits.gz")
    assert stsci[0].startswith("2017181074130-I-INFO")


def test_packaged_bytes_are_astropys(tmp_path, monkeypatch):
    """The _trl.fits written in plain Python is, byte for byte, what astropy's TableHDU writes for
    the same rows, DATE, FILENAME and ROOTNAME: with and without a ROOTNAME, one row or many."""
    from astropy.io import fits

    monkeypatch.setattr("time.gmtime", lambda *_: time.struct_time((2026, 12, 4, 23, 59, 0, 4, 339, 0)))
    for dataset, lines in ((None, []), ("j9cv58abq", ["short", "it's " + "y" * 300, "\ttab", "é", "nul at the end\0"])):
        text = tmp_path / "t.trl"
        text.write_text("".join(line + "\n" for line in lines))
        ours = package_trailer(text, tmp_path / "ours_trl.fits", dataset=dataset)
        with fits.open(ours) as hdul:   # the rows (test_package_round_trip checks them), as astropy reads them
            rows = list(hdul[1].data["TEXT_FILE"])
        assert len(rows) == (1 if not lines else 7)
        primary = fits.PrimaryHDU()
        primary.header["DATE"] = ("2026-12-04", "Creation date")
        primary.header["FILENAME"] = ("ours_trl.fits", "Name of file")
        if dataset:
            primary.header["ROOTNAME"] = dataset
        table = fits.TableHDU.from_columns([fits.Column(name="TEXT_FILE", format="A132", array=rows)], name="trl")
        fits.HDUList([primary, table]).writeto(tmp_path / "astropy_trl.fits")
        assert ours.read_bytes() == (tmp_path / "astropy_trl.fits").read_bytes()
        (tmp_path / "astropy_trl.fits").unlink()
