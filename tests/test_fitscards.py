"""Plain-Python FITS header reading (pipeline.core.fitscards) against astropy, which it stands in for."""

from __future__ import annotations

import contextlib
import gzip
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.io import fits

from pipeline.archive.ingest import header_dict, read_fits_headers
from pipeline.core.fitscards import format_card, parse_value, read_cards

#: Value fields (columns 11-80) astropy reads; each must read the same here.
VALUES = ["'abc''d  '  / c", "               1.5D3", "'        '", "''", "+007", "1.", ".5e-2", "-0.0",
          "T", "   F / x", "1E400", "'a'/c", "'  lead'", "-12345678901234567890", "1.0E+00 / comment",
          "'O''Brien'", "                  42", "'a/b' / c/d", "'&'"]


def _astropy(path: Path) -> list[dict]:
    with fits.open(path, lazy_load_hdus=True, memmap=False) as hdul:
        out = [header_dict(hdul[0].header)]
        with contextlib.suppress(IndexError):
            out.append(header_dict(hdul[1].header))
    return out


def _write(path: Path, primary: list[str], extension: list[str] | None = None, data_bytes: int = 0) -> Path:
    def block(cards: list[str]) -> bytes:
        text = "".join(c.ljust(80) for c in cards) + "END".ljust(80)
        return text.ljust(-(-len(text) // 2880) * 2880).encode("ascii")

    raw = block(primary) + b"\0" * data_bytes
    if extension is not None:
        raw += block(extension) + (b"\0" * 2880 if extension[:5] == IMAGE[:5] else b"")   # IMAGE's 24 bytes, padded
    path.write_bytes(raw)
    return path


PRIMARY = ["SIMPLE  =                    T", "BITPIX  =                    8", "NAXIS   =                    0",
           "EXTEND  =                    T"]
IMAGE = ["XTENSION= 'IMAGE   '", "BITPIX  =                  -32", "NAXIS   =                    2",
         "NAXIS1  =                    3", "NAXIS2  =                    2", "PCOUNT  =                    0",
         "GCOUNT  =                    1"]


@pytest.mark.parametrize("field", VALUES)
def test_values_are_astropys(field):
    expected = fits.Card.fromstring(f"KEY     = {field}".ljust(80)).value
    got = parse_value(field)
    assert got == expected and type(got) is type(expected)
    if isinstance(expected, float):
        assert repr(got) == repr(expected)   # -0.0 and inf too


def test_real_files_read_as_astropy_reads_them(realdata):
    """Every real HST file (raws, STScI products, reference files, header samples) up to 2 MB: the
    same two headers as astropy's, or None (left to astropy) for the few with record-valued keywords."""
    files = sorted(p for p in realdata.rglob("*") if p.name.endswith((".fits", ".fits.gz")) and p.stat().st_size < 2e6)
    assert len(files) > 60
    read = 0
    for path in files:
        cards = read_cards(path)
        if cards is None:   # record-valued keywords (DP1.EXTVER...), or a primary without EXTEND = T
            assert (fits.getheader(path, 0).get("EXTEND") is not True
                    or "DP1" in str(fits.getheader(path, 1)) or "D2IM" in str(fits.getheader(path, 1))), path
            continue
        assert [header_dict(c) for c in cards] == _astropy(path), path
        read += 1
    assert read >= len(files) - 5


def test_long_strings_join_as_in_astropy(tmp_path):
    path = _write(tmp_path / "long.fits", [*PRIMARY, "RULEFILE= '/opt/some/where/long&'  / first part",
                                           "CONTINUE  'er/still&'", "CONTINUE  ' and the end  '  / tail",
                                           "AFTER   = 'x'"])
    (primary,) = read_cards(path)
    assert dict(primary)["RULEFILE"] == "/opt/some/where/longer/still and the end"
    assert [header_dict(primary)] == _astropy(path)


@pytest.mark.parametrize("field", ["'a'' / c'", "'O''/x'"])
def test_a_doubled_quote_before_a_slash_is_left_to_astropy(field):
    """astropy ends such a string at the pair's second quote (its pattern is lazy): not read here."""
    assert fits.Card.fromstring(f"KEY     = {field}".ljust(80)).value != field[1:-1].replace("''", "'")
    with pytest.raises(Exception, match="doubled quote"):
        parse_value(field)


@pytest.mark.parametrize("cards", [
    ["HIERARCH ESO DET CHIP = 1"],                       # HIERARCH
    ["UNDEF   =  / no value"],                           # undefined value
    ["CPLX    = (1.0, 2.0)"],                            # complex value
    ["DP1     = 'EXTVER: 1'"],                           # record-valued keyword
    ["BAD     = 'a' junk"],                              # unparsable
    ["lower   = 1"],                                     # not a FITS keyword
    ["NOEQUAL   1"],                                     # a value card without '= '
    ["HISTORY  a", "CONTINUE  'b'"],                     # CONTINUE after commentary
    ["GROUPS  =                    T"],                  # random groups
    ["LONG    = 'abc&'", "CONTINUE'def'"],               # CONTINUE without its blank columns
    ["END     =                    1"],                  # an END card with a value
])
def test_unusual_cards_are_left_to_astropy(tmp_path, cards):
    path = _write(tmp_path / "odd.fits", [*PRIMARY, *cards])
    assert read_cards(path) is None


def test_unusual_files_are_left_to_astropy(tmp_path):
    assert read_cards(_write(tmp_path / "image_first.fits", IMAGE)) is None            # no SIMPLE
    for simple, extend in (("F", "T"), ("1", "T"), ("T", "F"), ("T", None)):
        # astropy reads SIMPLE = F as one non-standard HDU, refuses SIMPLE = 1, and sets EXTEND = T
        # in a primary followed by an extension: left to it
        primary = [f"SIMPLE  = {simple:>20}", *PRIMARY[1:3], *([f"EXTEND  = {extend:>20}"] if extend else [])]
        assert read_cards(_write(tmp_path / "odd_primary.fits", primary, IMAGE)) is None
    huge = [*PRIMARY[:2], "NAXIS   = 1", "NAXIS1  = 99999999999999999", "EXTEND  = T"]
    assert read_cards(_write(tmp_path / "huge.fits", huge, IMAGE)) is None   # a data size no seek reaches
    good = _write(tmp_path / "good.fits", PRIMARY, IMAGE)
    (tmp_path / "short.fits").write_bytes(good.read_bytes()[:2880 + 800])              # header cut short
    assert read_cards(tmp_path / "short.fits") is None
    (tmp_path / "empty.fits").write_bytes(b"")
    assert read_cards(tmp_path / "empty.fits") is None
    (tmp_path / "binary.fits").write_bytes(bytes(range(256)) * 12)
    assert read_cards(tmp_path / "binary.fits") is None
    compressed = _write(tmp_path / "tiles.fits", PRIMARY, ["XTENSION= 'BINTABLE'", "BITPIX  = 8", "NAXIS   = 2",
                                                          "NAXIS1  = 8", "NAXIS2  = 1", "PCOUNT  = 0",
                                                          "GCOUNT  = 1", "TFIELDS = 0", "ZIMAGE  = T"])
    assert read_cards(compressed) is None
    with pytest.raises(OSError):
        read_cards(tmp_path / "missing.fits")


def test_data_is_skipped_to_the_next_header(tmp_path):
    """The first extension is found after the primary's data (padded to 2880), also through gzip."""
    primary = ["SIMPLE  =                    T", "BITPIX  =                   16", "NAXIS   =                    2",
               "NAXIS1  =                   10", "NAXIS2  =                  300", "EXTEND  =                    T"]
    path = _write(tmp_path / "data.fits", primary, [*IMAGE, "EXTNAME = 'SCI     '"], data_bytes=8640)
    cards = read_cards(path)
    assert dict(cards[1])["EXTNAME"] == "SCI" and [header_dict(c) for c in cards] == _astropy(path)
    zipped = tmp_path / "data.fits.gz"
    zipped.write_bytes(gzip.compress(path.read_bytes()))
    assert read_cards(zipped) == cards
    assert read_cards(path, hdus=1) == cards[:1]
    assert read_cards(_write(tmp_path / "alone.fits", PRIMARY)) == [[(k, v) for k, v in
                                                                     (("SIMPLE", True), ("BITPIX", 8),
                                                                      ("NAXIS", 0), ("EXTEND", True))]]


def test_archive_headers_fall_back_to_astropy(tmp_path):
    """A file with a card read only by astropy is archived with astropy's reading of it."""
    path = _write(tmp_path / "hier.fits", [*PRIMARY, "HIERARCH ESO DET CHIP = 1", "INSTRUME= 'WFC3    '"],
                  [*IMAGE, "CCDCHIP =                    2"])
    primary, science = read_fits_headers(path)
    assert primary["ESO DET CHIP"] == 1 and primary["INSTRUME"] == "WFC3" and science["CCDCHIP"] == 2
    assert read_fits_headers(tmp_path / "nothing.fits") is None
    (tmp_path / "text.fits").write_text("not FITS at all\n" * 300)
    assert read_fits_headers(tmp_path / "text.fits") is None


@pytest.mark.parametrize("card", [("SIMPLE", True, "conforms to FITS standard"), ("NAXIS2", 1234, "length"),
                                  ("EMPTY", "", ""), ("EMPTY", "", "a comment"),
                                  ("EXTNAME", "TRL", "extension name"), ("ROOTNAME", "j9cv58abq", ""),
                                  ("FILENAME", "a_much_longer_file_name_trl.fits", "Name of file"),
                                  ("QUOTE", "it's", ""), ("NEG", -5, "")])
def test_cards_are_written_as_astropy_writes_them(card):
    assert format_card(*card) == fits.Card(*card).image


def test_reals_are_not_formatted_here():
    with pytest.raises(TypeError):
        format_card("EXPTIME", 1.5)
    with pytest.raises(ValueError):
        format_card("LONG", "x" * 80)
    with pytest.raises(ValueError):   # astropy would shorten the comment
        format_card("KEY", "value", "c" * 60)


def test_archiving_imports_neither_numpy_nor_astropy(tmp_path):
    """read_fits_headers on a plain HST-like file keeps numpy and astropy out of the process: what
    INGEST_SCI and CL gain from this module."""
    path = _write(tmp_path / "plain.fits", [*PRIMARY, "INSTRUME= 'ACS     '"], [*IMAGE, "CCDCHIP =  1"])
    code = ("import sys; from pathlib import Path; from pipeline.archive.ingest import read_fits_headers; "
            f"assert read_fits_headers(Path({str(path)!r}))[0]['INSTRUME'] == 'ACS'; "
            "print(sorted(m for m in ('numpy', 'astropy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_damaged_gzip_is_not_fits(tmp_path):
    """A .fits.gz whose deflate stream is damaged: no headers (the archive then refuses the file as
    not readable FITS), not a zlib error out of the node."""
    good = _write(tmp_path / "good.fits", [*PRIMARY, "INSTRUME= 'ACS     '"], IMAGE)
    packed = bytearray(gzip.compress(good.read_bytes()))
    packed[30:60] = b"\xff" * 30
    (tmp_path / "bad.fits.gz").write_bytes(bytes(packed))
    assert read_cards(tmp_path / "bad.fits.gz") is None
    assert read_fits_headers(tmp_path / "bad.fits.gz") is None
